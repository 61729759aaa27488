# Session 12, device call 1: session 11's data-carrying synchronisation, never measured (no
# machine then), and its compact-poll form, against the barrier, side by side, every variant
# checked against XLA at HIGHEST. sync="data": every phase writes its own PENDING-filled buffer,
# consumers poll the values they use with volatile loads (L2). sync="data_l1": poll one compact
# tile per read with volatile loads, then read the replicated product tiles through L1.
# Prediction: 0.5-1 us of the ~1.1-1.3 us per phase the barriers cost, i.e. bfloat16 B = 1 (two
# per SM) 0.31-0.32 -> 0.25-0.28; float32 B = 8 0.52 -> 0.46-0.49; data_l1 ahead of data if the
# replicated volatile reads' L2 requests matter.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s12c1
source experiments/device_calls/gpu_common.sh
run_logged 250 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=235 \
  --variants=persistent:sm2,persistent:sm2+data,persistent:sm2+data_l1,persistent:data,persistent:data_l1 \
  --out=$D/dense_b1_data.json
run_logged 170 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_persistent,xla_unroll --phase2= --python_chain= --check_variants --budget_s=160 \
  --variants=persistent:data,persistent:data_l1 --out=$D/dense_b8_data.json
finish
