# Session 21, call 1 (H100 or H200, whichever starts; <= 10 min): (a) the B = 8 end-to-end
# figure on today's engine (session 20's call 4 for an H200, with 2^10 added back and 2^17 for
# lazy and flash, which the H200's 139 GiB hold). The published results/e2e_b8.json is session
# 5's H200 run with that session's baselines (1.4-1.75x slower long convolutions) and XLA's
# dense path. Each method in its own process, flash first (a cut call keeps its line). Lazy and eager WITHOUT XLA_FLAGS: at 2^17 lazy's
# 60.8 GiB buffer fits but XLA's autotuner copy of it would not, so the engine must compile its
# blocks untuned by itself (validation.baseline_untuned, first GPU run; records say
# "untuned_blocks"). Eager stops at 2^16 (time). On an H100 the 2^17 points do not fit: the
# reference plan halves to 2^16 (common.reference) and the 2^17 records say why.
# Prediction: flash ~0.55 ms/token at every L; lazy ~0.6 / 0.7 / 1.8 / 7 / 14; eager 1.5-2x lazy
# at 2^14-2^16; untuned_blocks true for lazy at 2^17 only; flash vs lazy ~13x at 2^16, ~25x at 2^17.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s21c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="repeats=2, max_keys=4"
# (b) first, ~1 min: session 20's lead for the B = 8 products ("rows_t": rows looped in Python,
# activations (n_in, B) kept in registers across rows; ptxas: mix 158 registers, no spills)
# against today's tile-order form, one phase over 18 layers in isolation (product_forms_gpu).
# Prediction: rows_t 1.3-2x faster than bcast at B = 8 if the L1 operand rate is the limit;
# slower if its per-row block reductions (62 block barriers in mix) cost more.
run_logged 75 python3 experiments/product_forms_gpu.py --phases=mix,up --batches=8,1 \
  --forms=bcast,rows_t --warps=8 --repeats=20 --out=$D/product_forms.json
one flash e2e_b8 190 ", methods=('flash',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=85, budget_s=180"
one lazy e2e_b8 120 ", methods=('lazy',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=15, budget_s=110"
one eager e2e_b8 80 ", methods=('eager',), lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16, $ARGS, full_budget_s=15, budget_s=70"
finish
