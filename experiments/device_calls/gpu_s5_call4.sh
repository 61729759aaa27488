# Session 5, device call 4 (1 x H200): call 3 found the batch-blocked dot kernels exact but 13x
# slower than XLA at B = 8 (7.7 vs 0.61 ms/token; 8 warps 4.7): Triton's exact-float32 (FMA) dot
# holds each thread's whole K extent of both operands in registers, 128 columns per chunk at the
# time. Now: FMA dot with 32-column chunks (the new default) and 16 / 64, and the TF32x3
# tensor-core dot (~float32 accuracy) at 128 / 64 columns and 8 warps, each checked against XLA
# at HIGHEST before it is timed. B = 8, float32.
D=/tmp/res_s5c4
source experiments/device_calls/gpu_common.sh
run_logged 300 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_unroll,xla_unroll --phase2= --python_chain= --check_variants \
  --variants=tf32x3,tf32x3+warps8,tf32x3+chunk64,chunk64,chunk16,rowwise+batch_block1 \
  --budget_s=270 --out=$D/dense_b8_variants.json
finish
