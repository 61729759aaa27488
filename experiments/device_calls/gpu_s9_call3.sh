# Session 9, device call 3.
# (a) End to end at B = 8, L = 2^16 (#3's 20x), lazy then flash in one process, with the engine's
#     new default dense path at B = 8 (float32: the persistent kernel in the tile order without the
#     prefetch, 0.511-0.523 ms/token in calls 1-2 vs XLA 0.62-0.67). Session 4 (XLA dense path):
#     lazy 9.041* vs flash 0.620 ms/token = 14.6x. Prediction: flash ~0.55-0.57 -> ~16x (lazy gets
#     the same dense path: ~0.1 ms less).
# (b) The default path at B = 4, 8 (timed, the engine's own config: for_batch picks the tile
#     order), and with 16 warps.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s9c3
source experiments/device_calls/gpu_common.sh
one e2e e2e_b8 430 ", methods=('lazy', 'flash'), lengths=(2**10, 2**16), full_budget_s=100, budget_s=400"
run_logged 100 python3 experiments/dense_gpu.py --batches=8,4 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=90 \
  --variants=persistent:warps16 --out=$D/dense_b8_default.json
finish
