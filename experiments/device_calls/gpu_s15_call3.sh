# Session 15, device call 3 (H200: B = 8 at L = 2^16 does not fit an H100's memory with flash).
# The lazy and eager buffers are now (M, L, B, D) (time major, the batch inside; call 1 on an
# H100: lazy's XLA read at B = 8 1.7x faster in that layout than in the old (M, B, L, D)).
# (1) baselines_gpu: the engine's new layout against the old at B = 8 and 1, lazy and eager
#     (eager's new layout was not timed in call 1). Prediction: lazy as call 1's sbd; eager at
#     B = 8 between XLA's old form (16.7 ms at W = 32768 on the H100) and the kernel (13.9).
# (2) end to end at B = 8, L = 2^16, lazy then flash in one process with the engine's defaults
#     (session 9's call 3: lazy 8.908 vs flash 0.540 ms/token = 16.5x on an H200).
#     Prediction: lazy ~5.2-5.8 ms/token, the ratio ~10x.
# Never ran in session 15 (no H200 came). Call 4 ran its H100 form at 2^15 and its end to end
# wrote nothing in a 260 s slot (lazy's first B = 8 compile plus its keys): 420 s here, and the
# tiles part dropped (call 4 ran it; see NOTES).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s15c3
source experiments/device_calls/gpu_common.sh
run_logged 75 python3 experiments/baselines_gpu.py --out=$D/baselines.json --splits=32 \
  --repeats=5 --cases=8:32768,1:65536 \
  --forms=lazy:xla_sbd,lazy:xla_bsd,eager:xla_sbd,eager:xla_bsd,eager:pallas
one e2e e2e_b8 420 ", methods=('lazy', 'flash'), lengths=(2**16,), full_budget_s=60, budget_s=380"
finish
