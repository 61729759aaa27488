# Session 15, device call 2 (session 14's call 1 (a), never run): is a Pallas launch inside XLA's
# command buffers (CUDA graphs)? In session 4's chains a U = 1 Pallas tile took 7.3 us of wall
# time for a 1.6 us kernel, while XLA's direct tile paid ~3 us per launch (jax issue 27988:
# Pallas calls were left out of command buffers by default). The same chains (U = 1, 2) under
# the default XLA_FLAGS and with CUSTOM_CALL named in --xla_gpu_enable_command_buffer.
# Prediction if Pallas is left out by default: the Pallas tile faster (<= 4 us) with CUSTOM_CALL.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s15c2
source experiments/device_calls/gpu_common.sh
tiles() {  # NAME FLAGS
  XLA_FLAGS="$2" run_logged 80 python3 experiments/tile_kernels_gpu.py --levels=0,1 \
    --repeats=20 --out=$D/tiles_$1.json
}
tiles default ""
tiles cmd_custom "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN"
finish
