# Session 9, device call 2.
# (a) LayerConfig.prefetch_ahead: each program loads the NEXT phase's weight tiles before it waits
#     at this phase's barrier (the tiles stream during a whole phase, not one barrier wait), in
#     their dtype. Call 1 (B = 1): without barriers the prefetch is worth 0.036 ms (bfloat16
#     0.254 -> 0.218) and with them 0.030 (0.357 -> 0.327): each phase still pays most of a
#     weight tile's latency. ptxas: 254 registers, no spills, both dtypes.
#     Prediction: bfloat16 B = 1 0.327 -> ~0.27-0.30 ms, float32 0.337 -> ~0.30; nobarrier+ahead
#     bounds it (bfloat16 ~0.15-0.18). Checked against XLA at HIGHEST, B = 1, 2.
# (b) The tile order without prefetch at B = 8 won call 1 (0.511 ms vs XLA 0.621, float32): check
#     it (float32, against XLA at HIGHEST) before the engine adopts it for batches; time it without
#     barriers (bound) and at B = 4 (is it the right order from 4 rows on?), and bfloat16 B = 8.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s9c2
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=185 \
  --variants=persistent:ahead,persistent:ahead+nobarrier \
  --out=$D/dense_ahead.json
run_logged 200 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll --phase2= --python_chain= --check_variants --budget_s=185 \
  --variants=persistent:order_tile+noprefetch,persistent:order_tile+noprefetch+nobarrier \
  --out=$D/dense_b8_tile_check.json
run_logged 90 python3 experiments/dense_gpu.py --batches=4 --dtypes=float32,bfloat16 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=80 \
  --variants=persistent:order_tile+noprefetch,persistent:batch_block8 \
  --out=$D/dense_b4_tile.json
run_logged 60 python3 experiments/dense_gpu.py --batches=8 --dtypes=bfloat16 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=50 \
  --variants=persistent:order_tile+noprefetch --out=$D/dense_b8_bf16_tile.json
finish
