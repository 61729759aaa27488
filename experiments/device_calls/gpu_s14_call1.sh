# Session 14, device call 1 (session 13's call 3, which found no device, plus (c)).
# (a) Is a Pallas launch inside XLA's command buffers (CUDA graphs)? In session 4's chains a U = 1
#     Pallas tile took 7.3 us of wall time for a 1.6 us kernel, while XLA's direct tile paid ~3 us
#     per launch (jax issue 27988: Pallas calls were left out of command buffers by default). The
#     same chains (U = 1, 2) under XLA_FLAGS: default; CUSTOM_CALL named explicitly; command buffers
#     off. (Trimmed in session 14 to fit the device time left: default and CUSTOM_CALL only.) Prediction if Pallas is left out: the Pallas tile unchanged with
#     buffers off while XLA's slows down, and faster (<= 4 us) when CUSTOM_CALL captures it.
# (b) session 12 adopted sync="data_l1" at B = 2 from H100 timings only: B = 2 default (sm2,
#     data_l1) vs the barrier (sm2) on this card, checked against XLA at HIGHEST.
# (c) the baselines' steps at B = 1 and 8 (experiments/baselines_gpu.py): lazy's read in the
#     engine's XLA form, two other layouts and a Pallas kernel that loads each filter tile once
#     for every batch row; eager's write in XLA and as the kernel. Prediction: at B = 8 XLA's
#     forms fetch the filter per row (lazy 2.2-2.5 TB/s by the least-bytes count, eager
#     similar); the kernels 3.5+ TB/s; at B = 1 all ~4 TB/s.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s14c1
source experiments/device_calls/gpu_common.sh
tiles() {  # NAME FLAGS
  XLA_FLAGS="$2" run_logged 75 python3 experiments/tile_kernels_gpu.py --levels=0,1 \
    --repeats=20 --out=$D/tiles_$1.json
}
run_logged 200 python3 experiments/baselines_gpu.py --out=$D/baselines.json --splits=8,32 --repeats=5
tiles default ""
tiles cmd_custom "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN"
# (b) dropped for lack of device time (failed starts cost it).
finish
