# Session 21, call 1b (never run; superseded by gpu_s22_call1.sh and gpu_s22_call2.sh. Session 21: after ~1600 s of failed machine starts the session had 209 s of
# device time left, under the 240 s a start needs; ~2.5 min, H100 or H200; call 1 holds this product check
# and the figure). (a) Session 20's lead
# for the B = 8 products ("rows_t": rows looped in Python, activations (n_in, B) in registers
# across rows; ptxas: mix 158 registers, no spills) against today's tile-order form, one phase
# over 18 layers in isolation (product_forms_gpu). Prediction: rows_t 1.3-2x faster than bcast at
# B = 8 if the L1 operand rate is the limit; slower if its per-row block reductions (62 block
# barriers in mix) cost more. (b) The engine's untuned compile on a GPU (session 20's call 5):
# lazy at B = 8 WITHOUT XLA_FLAGS at the length where the autotuner's copy would not fit (2^16 on
# an H100, 2^17 on an H200); the record must say "untuned_blocks": true. Two keys: a check that
# it runs and a rough time (session 20, H100, flag set: 12.52 ms per step at the 65536 window).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s21c1b
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 60 python3 experiments/product_forms_gpu.py --phases=mix,up --batches=8,1 \
  --forms=bcast,rows_t,rows_g --warps=8 --repeats=20 --out=$D/product_forms.json
L=$(python3 -c "import jax; print(2**17 if jax.devices()[0].memory_stats()['bytes_limit'] > 100 * 2**30 else 2**16)")
one lazy e2e_b8 90 ", methods=('lazy',), lengths=($L,), ref_max=$L, repeats=2, max_keys=2, check=False, budget_s=80"
finish
