# Session 7, device call 8: PREPARED, NOT RUN (no device time was left). The dense path at B = 8
# (#3's 20x needs ~0.41 ms; XLA 0.62, persistent 1.17 on an H200): the persistent kernel's
# "chunk" loop order (every batch row's activations loaded before the products, instead of one
# row's round trip after another), with 4 warps too; timed without the check (its B = 8 check
# compiles for ~190 s), then checked only if a variant beats XLA.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c8
source experiments/gpu_common.sh
run_logged 420 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll --phase2= --python_chain= --budget_s=400 \
  --variants=persistent:order_chunk,persistent:order_chunk+warps4,persistent:order_chunk+rows_double \
  --out=$D/dense_b8_order_chunk.json
finish
