# Session 10, device call 4: two programs per SM (the new default for bfloat16 B = 1, 2 and
# float32 B = 2, adopted from call 3 on an H100) on an H200, side by side with one program per SM,
# every case checked against XLA at HIGHEST. Prediction: the same 5-8% as on the H100 (same SMs).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s10c4
source experiments/device_calls/gpu_common.sh
run_logged 190 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=175 \
  --variants=persistent:sm2 --out=$D/dense_b12_sm2_h200.json
finish
