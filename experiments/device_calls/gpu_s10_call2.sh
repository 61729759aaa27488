# Session 10, device call 2: more weight requests in flight per SM for the persistent kernel (call
# 1: the B = 8 kernel moves ~9 GB/s per SM without barriers; latency-bound, not DRAM-bound).
# (a) B = 8, float32, tile order: prefetch only the first 1 / 2 column chunks of each weight tile
#     before the wait (the full prefetch spills 308 bytes and lost: 0.61 vs 0.51; ptxas: 40 / 64
#     bytes). Prediction: 0.52 -> 0.48-0.50 (the first chunk's HBM latency hidden by the wait).
# (b) sm2: two 4-warp programs per SM with half the rows each (216 programs, all resident: 255
#     registers x 128 threads x 2 = the register file); two instruction streams per SM hide each
#     other's latency, at the price of 4-warp layouts (ptxas: 1240 shuffles per layer vs 300, 88
#     bytes of spills). Prediction: 0.52 -> 0.42-0.50 if latency-bound. Last, because if the
#     programs were not all resident the kernel would spin (the timeout ends it).
# (c) sm2 at B = 1, bfloat16 (#4: 0.33 vs <= 2x floor ~0.22).
# Everything checked against XLA at HIGHEST before it is timed.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s10c2
source experiments/device_calls/gpu_common.sh
run_logged 170 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll,fused_persistent --phase2= --python_chain= --check_variants --budget_s=155 \
  --variants=persistent:order_tile+pchunks1,persistent:order_tile+pchunks2,persistent:sm2 \
  --out=$D/dense_b8_inflight.json
run_logged 80 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=70 \
  --variants=persistent:sm2 --out=$D/dense_b1_sm2.json
finish
