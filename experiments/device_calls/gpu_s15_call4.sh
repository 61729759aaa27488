# Session 15, device call 4: call 3 on an H100 (no H200 came), at L = 2^15 (2^16 at B = 8 does
# not fit its memory with flash).
# The lazy and eager buffers are now (M, L, B, D) (time major, the batch inside; call 1 on an
# H100: lazy's XLA read at B = 8 1.7x faster in that layout than in the old (M, B, L, D)).
# (1) baselines_gpu: the engine's new layout against the old at B = 8 and 1, lazy and eager
#     (eager's new layout was not timed in call 1). Prediction: lazy as call 1's sbd; eager at
#     B = 8 between XLA's old form (16.7 ms at W = 32768 on the H100) and the kernel (13.9).
# (2) end to end at B = 8, L = 2^15, lazy then flash in one process with the engine's defaults
#     (session 9's call 3: lazy 8.908 vs flash 0.540 ms/token = 16.5x on an H200).
#     Prediction: lazy ~5.2-5.8 ms/token, the ratio ~10x.
# (3) the Pallas tiles against XLA's direct tiles by marginal wall time (chains of 16 vs 64
#     tiles): the ~4.5 us a tile of a 16-tile chain pays beyond its kernel (call 2) should be
#     mostly the executable's fixed cost spread over 16 tiles. Prediction: marginal Pallas
#     ~2-2.5 us vs XLA direct ~4.5-5.5 at U = 1, 2: >= 1.5x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s15c4
source experiments/device_calls/gpu_common.sh
run_logged 75 python3 experiments/baselines_gpu.py --out=$D/baselines.json --splits=32 \
  --repeats=5 --cases=8:32768,1:65536 \
  --forms=lazy:xla_sbd,lazy:xla_bsd,eager:xla_sbd,eager:xla_bsd,eager:pallas
one e2e e2e_b8 260 ", methods=('lazy', 'flash'), lengths=(2**15,), full_budget_s=40, budget_s=230"
run_logged 90 python3 experiments/tile_kernels_gpu.py --levels=0,1,2,3,4,5 --count=16 \
  --long_count=64 --repeats=15 --out=$D/tiles_marginal.json
finish
