# Session 30, call 1b (either card, ~3 min): gpu_s30_call1.sh's first part alone, for the device
# time left after the failed starts: LayerConfig.prefetch_operands at bfloat16 B = 1, two
# programs per SM (the engine's, dense_gpu's base) and one, each checked against XLA at HIGHEST
# before it is timed.
# Prediction: 0.330 -> 0.29-0.31 ms/token (see gpu_s30_call1.sh).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s30c1b
source experiments/device_calls/gpu_common.sh
run_logged 170 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=150 --repeats=20 \
  --variants=persistent:prefetch_ops,persistent:sm1,persistent:sm1+prefetch_ops \
  --check_variants --out=$D/dense_b1_bf16.json
finish
