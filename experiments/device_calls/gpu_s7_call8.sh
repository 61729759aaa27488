# Session 7, device call 8: prepared in session 7, run in session 8 as its call 1 (results/raw/session8/call1).
# (a) The persistent kernel with early arrival (LayerConfig.arrive_early): each program announces
#     its arrival at a phase's barrier before it issues its next weight-tile prefetch, then
#     waits. Today the arrival's acquire-release atomic comes after the prefetch, and a release
#     waits for the program's outstanding loads, so every barrier waits ~1 tile load (41-83 KB
#     per program) longer than the products need. Prediction: up to ~1 us per phase, 72 phases:
#     bfloat16 0.34 -> ~0.27-0.30 ms, float32 0.36 -> ~0.29-0.32 ms on an H200 (nobarrier, wrong
#     results, bounds it from below); and the "tile" order (see (b)) at B = 1, 2. Checked
#     against XLA at HIGHEST, B = 1 and 2.
# (b) The dense path at B = 8 (#3's 20x needs ~0.41 ms; XLA 0.62, persistent 1.17 on an H200):
#     the "tile" order (all batch rows of a program as one (8, chunk) activation tile, loaded
#     once instead of once per weight row: per up phase 27 KB of L1 traffic instead of ~1.8 MB,
#     and no per-row round trips; products as (8, rows, chunk) broadcasts), with 64-column
#     chunks too, and the per-layer kernels in tile order (the "chunk" order spills at B = 8:
#     NOTES, static pre-check); timed without the check
#     (its B = 8 check compiles for ~190 s): check the winner before adopting it. Prediction for
#     persistent + tile: ~0.45-0.6 ms if the layout conversions of the broadcasts stay on chip.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c8
source experiments/device_calls/gpu_common.sh
run_logged 300 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=280 \
  --variants=persistent:arrive_early,persistent:nobarrier,persistent:order_tile \
  --out=$D/dense_arrive_early.json
run_logged 270 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=250 \
  --variants=persistent:order_tile,persistent:order_tile+chunk64,order_tile \
  --out=$D/dense_b8_orders.json
finish
