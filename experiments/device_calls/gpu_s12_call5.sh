# Session 12, device call 5: data_l1 at B = 4. bfloat16 B = 4 runs XLA's GEMMs today (the
# persistent batch order lost there, 0.646 vs 0.619 on an H200); data_l1 took 8-12% off B = 2.
# float32 B = 4 (tile order) for completeness (B = 8's tile order lost with data_l1).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s12c5
source experiments/device_calls/gpu_common.sh
run_logged 150 python3 experiments/dense_gpu.py --batches=4 --dtypes=bfloat16 \
  --phase1=fused_persistent,xla_unroll --phase2= --python_chain= --check_variants --budget_s=140 \
  --variants=persistent:data_l1,persistent:sm2+data_l1 --out=$D/dense_b4_bf16.json
run_logged 110 python3 experiments/dense_gpu.py --batches=4 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=100 \
  --variants=persistent:data_l1 --out=$D/dense_b4_f32.json
finish
