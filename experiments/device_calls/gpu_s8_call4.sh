# Session 8, device call 4 (calls 1-3 ran session 7's prepared gpu_s7_call8 / 6 / 7.sh): where the
# persistent kernel's time goes at B = 8 in the "tile" order (0.735 ms vs XLA unrolled 0.627 in
# call 1; #3's 20x needs ~0.41). Timing only (the tile order was checked at B = 1, 2 in call 1;
# its B = 8 check compiles for ~190 s). Predictions: nobarrier bounds the barriers' share (B = 1:
# 0.11 of 0.33 ms; at B = 8 each phase's products take longer, so a smaller share: ~0.55-0.6);
# warps4 / warps16 and rows_half move the layout-conversion cost (shared-memory round trips of
# the (8, rows, chunk) broadcasts) up or down by ~10-20%; noprefetch costs ~5-10% as at B = 1.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s8c4
source experiments/device_calls/gpu_common.sh
run_logged 330 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=310 \
  --variants=persistent:order_tile,persistent:order_tile+nobarrier,persistent:nobarrier,persistent:order_tile+warps4,persistent:order_tile+warps16,persistent:order_tile+rows_half,persistent:order_tile+noprefetch \
  --out=$D/dense_b8_tile_where.json
finish
