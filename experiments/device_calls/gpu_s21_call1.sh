# Session 21, call 1 (one H100, <= 10 min): the B = 8 end-to-end figure on today's engine
# (session 20's call 4, with 2^10 added back). The published results/e2e_b8.json is session 5's
# H200 run with that session's baselines (1.4-1.75x slower long convolutions) and XLA's dense
# path. Lazy, eager and flash at L = 2^10, 2^12, 2^14, 2^16, each method in its own process
# (each needs 40-47 GiB at 2^16). Lazy and eager WITHOUT XLA_FLAGS: the engine must compile their
# 2^16 blocks without XLA's autotuner by itself (validation.baseline_untuned; session 20's
# call 1 failed there with the autotuner on); records say "untuned_blocks". This is also the
# first GPU run of that per-executable switch (session 20's call 5, folded in here).
# Prediction: flash ~0.58 ms/token at every L; lazy ~0.6 / 0.7 / 1.8 / 7.6; eager 1.5-2x lazy at
# 2^14-2^16; untuned_blocks true for lazy and eager at 2^16 only; flash vs lazy ~13x at 2^16.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s21c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16, repeats=2, max_keys=4"
one lazy e2e_b8 120 ", methods=('lazy',), $ARGS, full_budget_s=15, budget_s=110"
one eager e2e_b8 130 ", methods=('eager',), $ARGS, full_budget_s=15, budget_s=120"
one flash e2e_b8 200 ", methods=('flash',), $ARGS, full_budget_s=45, budget_s=190"
finish
