# Session 12, device call 2 (same warm H100 as call 1): does data_l1's float32 B = 1 gain
# (0.374 -> 0.356 in call 1) repeat, and how does it do at B = 2 (both dtypes, where two programs
# per SM are the default) and bfloat16 B = 1 against the paired default? Checked as before.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s12c2
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=float32,bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=190 \
  --variants=persistent:data_l1,persistent:sm2,persistent:sm2+data_l1 \
  --out=$D/dense_b12_data_l1.json
finish
