# Prepared in session 8, NOT RUN (no device time was left): the tile order with tiles loaded in
# their broadcast shapes (session 8's rewrite: (rows_b, 1, chunk) activations and (1, rows, chunk)
# weights by integer-vector indices). Static counts (experiments/NOTES.md, session 8): the
# persistent kernel at B = 8, float32: 154 block barriers per layer instead of 310, 300 shuffles
# instead of 1588, but 308 bytes of spills; 64-column chunks 120 bytes; bfloat16 spills 1.9 KB.
# Prediction: B = 8 float32 0.72 -> ~0.55-0.65 ms/token (the 2-D form without grid barriers was
# 0.63; the block barriers and shuffles were most of a phase); noprefetch frees the prefetched
# tiles' registers (~84 per thread in mix) and may win now. XLA unrolled (0.62) side by side.
# (a) timed at B = 8; (b) checked against XLA at HIGHEST at B = 2 (its B = 8 check compiles for
# ~190 s: check the B = 8 winner in a later call before adopting it).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s9c1
source experiments/gpu_common.sh
run_logged 330 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=310 \
  --variants=persistent:order_tile,persistent:order_tile+noprefetch,persistent:order_tile+chunk64,persistent:order_tile+chunk64+noprefetch,order_tile,persistent:order_tile+nobarrier \
  --out=$D/dense_b8_tile3d.json
run_logged 200 python3 experiments/dense_gpu.py --batches=2 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=180 \
  --variants=persistent:order_tile --out=$D/dense_b2_tile3d_check.json
finish
