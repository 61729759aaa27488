# Session 11, device call 1: the data-carrying synchronisation (LayerConfig.sync="data": every
# phase writes its own PENDING-filled buffer and consumers poll the values with volatile loads; no
# fence, atomic arrival or separate poll) against the barrier, side by side, every variant checked
# against XLA at HIGHEST. Prediction: 0.5-1 us of the ~1.1-1.3 us per phase the barriers cost, i.e.
# bfloat16 B = 1 (two per SM) 0.31-0.32 -> 0.25-0.28; float32 B = 8 0.52 -> 0.46-0.49.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s11c1
source experiments/device_calls/gpu_common.sh
run_logged 230 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=215 \
  --variants=persistent:sm2,persistent:sm2+data,persistent:data --out=$D/dense_b1_data.json
run_logged 150 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_persistent,xla_unroll --phase2= --python_chain= --check_variants --budget_s=140 \
  --variants=persistent:data --out=$D/dense_b8_data.json
finish
