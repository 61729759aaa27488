# Session 9, device call 1 (prepared in session 8, trimmed in session 9).
# (a) The tile order with tiles loaded in their broadcast shapes (session 8's rewrite:
#     (rows_b, 1, chunk) activations and (1, rows, chunk) weights by integer-vector indices).
#     Static counts (NOTES, session 8): persistent kernel at B = 8, float32: 154 block barriers per
#     layer instead of 310, 300 shuffles instead of 1588, but 308 bytes of spills.
#     Prediction: B = 8 float32 0.72 -> ~0.55-0.65 ms/token; noprefetch may win now (frees the
#     prefetched tiles' registers). XLA unrolled (0.62) side by side. Timed only: the B = 8 check
#     compiles for ~190 s; a winner gets checked in a later call before it is adopted.
# (b) Where the bfloat16 B = 1 persistent kernel's time goes without barriers: nobarrier (0.222 in
#     session 8) vs nobarrier+noprefetch. If the weight prefetch matters a lot without barriers
#     (each phase pays its weight-load latency), prefetching one phase further ahead is the next
#     step for #4's bfloat16 <= 2x floor. float32 too (its nobarrier was only 10% above bfloat16's
#     with twice the bytes: latency, not bandwidth).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s9c1
source experiments/device_calls/gpu_common.sh
run_logged 250 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=235 \
  --variants=persistent:order_tile,persistent:order_tile+noprefetch,persistent:order_tile+chunk64+noprefetch,persistent:order_tile+nobarrier \
  --out=$D/dense_b8_tile3d.json
run_logged 100 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=90 \
  --variants=persistent:nobarrier,persistent:nobarrier+noprefetch,persistent:noprefetch \
  --out=$D/dense_b1_prefetch.json
finish
