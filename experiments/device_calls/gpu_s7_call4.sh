# Session 7, device call 4 (H200): the persistent dense path at B = 1, 2, 8 against XLA's
# unrolled layers, and its "chunk" loop order (every batch row's activations loaded at once,
# instead of one row after another with its stores in between: at B = 8 the "batch" order makes
# ~8 dependent round trips per phase), each checked against XLA at HIGHEST.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c4
source experiments/device_calls/gpu_common.sh
run_logged 450 python3 experiments/dense_gpu.py --batches=1,2,8 --dtypes=float32 \
  --phase1=fused_persistent,xla_unroll --phase2=fused_unroll --python_chain= --check_variants \
  --budget_s=420 --variants=persistent:order_chunk,persistent:order_chunk+warps4 \
  --out=$D/dense_persistent_h200.json
finish
