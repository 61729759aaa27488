# Session 6, device call 3 (1 x H100): the two-phase persistent token kernel (out_proj and fc2 as
# split-K products summed by integer-digit atomics, ops/pallas_token) against the four-phase one.
# dense_gpu B = 1, bfloat16 and float32: persistent (4 phases) and variants phases2,
# phases2+noprefetch, phases2+warps4, phases2+nobarrier (timing only), each checked against XLA
# at HIGHEST; then B = 8 float32 phases2 (checked) if the budget allows.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s6c3
source experiments/device_calls/gpu_common.sh
run_logged 300 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=270 \
  --variants=persistent:phases2,persistent:phases2+noprefetch,persistent:phases2+warps4,persistent:phases2+nobarrier \
  --out=$D/dense_phases2.json
run_logged 200 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1= --phase2= --python_chain= --check_variants --budget_s=180 \
  --variants=persistent:phases2 --out=$D/dense_phases2_b8.json
finish
