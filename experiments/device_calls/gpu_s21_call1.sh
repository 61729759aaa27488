# Session 21, call 1 (never run as one script: ~1600 s of session 21's 1800 went to failed
# machine starts; session 22 ran its parts as gpu_s22_call1.sh and gpu_s22_call2.sh). (a) The B = 8 end-to-end figure on today's
# engine; the published results/e2e_b8.json is session 5's H200 run with that session's
# baselines (1.4-1.75x slower long convolutions) and XLA's dense path. Each method in its own
# process, flash first (a call cut short keeps its line). Lazy and eager WITHOUT XLA_FLAGS: where
# the autotuner's copy of the buffer would not fit (H100 at 2^16, H200 at 2^17 for lazy) the
# engine compiles their blocks untuned by itself (validation.baseline_untuned; records say
# "untuned_blocks"). Lazy and flash go to 2^17 where it fits (an H200): the reference plan halves
# to 2^16 elsewhere and the 2^17 records say why. Flash at 2^17 is integrated (its B = 8
# integral was +2.9% against a full run in session 20).
# (b) first, ~1 min: session 20's lead for the B = 8 products ("rows_t": rows looped in Python,
# activations (n_in, B) in registers across rows; ptxas: mix 158 registers, no spills) against
# today's tile-order form, one phase over 18 layers in isolation (product_forms_gpu).
# Predictions: (a) flash ~0.55-0.58 ms/token at every L; lazy ~0.6 / 0.7 / 1.8 / 7.6 on an H100
# (an H200 ~0.7x that); eager 1.5-2x lazy at 2^14-2^16; flash vs lazy ~13x at 2^16 on an H100.
# (b) rows_t 1.3-2x faster than bcast at B = 8 if the L1 operand rate is the limit; slower if
# its per-row block reductions (62 block barriers in mix) cost more.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s21c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 90 python3 experiments/product_forms_gpu.py --phases=mix,up --batches=8,1 \
  --forms=bcast,rows_t,rows_g --warps=8 --repeats=20 --out=$D/product_forms.json
ARGS="repeats=2, max_keys=4"
one flash e2e_b8 190 ", methods=('flash',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=45, budget_s=180"
one lazy e2e_b8 130 ", methods=('lazy',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=10, budget_s=120"
one eager e2e_b8 100 ", methods=('eager',), lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16, $ARGS, full_budget_s=10, budget_s=90"
finish
