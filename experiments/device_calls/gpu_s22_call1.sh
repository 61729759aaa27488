# Session 22, call 1 (H100 or H200, ~7 min): the B = 8 products, three ways, and the B = 8 flash
# curve on today's engine.
# (a) product_forms_gpu: one phase (mix, up) over 18 layers in isolation, today's tile-order form
# ("bcast") against session 20's lead ("rows_t": activations (n_in, B), one 2-D (chunk, B) product
# per weight row) and "rows_g" (the same product gathered from the engine's (B, n_in) layout).
# Prediction: rows_* 1.3-2x faster than bcast at B = 8 if the L1 operand rate is the limit;
# slower if the per-row block reductions cost more.
# (b) [The rows order was measured slower (0.630 vs 0.530 ms/token) and taken out of the engine
# again: this part runs at commit 98a11ba.] dense_gpu, B = 8 float32: the persistent kernel as the engine runs it (tile order, no
# prefetch) and the new "rows" order built into it (ptxas: 202 registers and no spills against
# the tile order's 254 with 32 bytes spilled; 132 block barriers against 112), each checked
# against hyena.token_step at HIGHEST first. Session 20: the tile order 0.53-0.55 ms/token on an
# H100. Prediction: rows 0.40-0.48 if (a) shows a 1.3x+ gain on the products.
# (c) the B = 8 flash curve (2^10 .. 2^17; 2^17 only fits an H200, the reference plan halves to
# 2^16 elsewhere).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s22c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 90 python3 experiments/product_forms_gpu.py --phases=mix,up --batches=8,1 \
  --forms=bcast,rows_t,rows_g --warps=8 --repeats=20 --out=$D/product_forms.json
run_logged 170 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=150 \
  --variants=persistent:order_rows+noprefetch,persistent:order_tile+noprefetch,persistent:order_rows \
  --out=$D/dense_rows.json
one flash e2e_b8 170 ", methods=('flash',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, repeats=2, max_keys=4, full_budget_s=45, budget_s=160"
finish
