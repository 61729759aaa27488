# Session 20, call 4 (one H100, ~5.5 min at most): the B = 8 end-to-end figure on today's engine. The one
# published (results/e2e_b8.json, H200, session 5) ran lazy and eager with their old (M, B, L, D)
# buffers, 1.4-1.75x slower than today's, and XLA's dense path. Lazy, eager and flash at
# L = 2^10, 2^12, 2^14, 2^16, each method in its own process (each needs 40-47 GiB at 2^16;
# one process would have to free the last method's buffers first). Lazy and eager without
# XLA_FLAGS: the engine now compiles their blocks without XLA's autotuner by itself where its
# copy of the 30 GiB buffer would not fit (validation.baseline_untuned; records say
# "untuned_blocks"), which this call also checks on the GPU (lazy's speed was the same without
# the autotuner at 2^15, call 3).
# Trimmed to 2^12, 2^14, 2^16 and ~5.5 min when the session's device time ran short.
# Prediction: flash ~0.58 ms/token at every L; lazy ~0.6 / 0.9 / 2.1 / 7.6; eager ~1.5-2x lazy
# at 2^14-2^16; flash vs lazy ~13x at 2^16 (call 1).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s20c4
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="lengths=(2**12, 2**14, 2**16), ref_max=2**16, repeats=2, max_keys=4"
one lazy e2e_b8 90 ", methods=('lazy',), $ARGS, full_budget_s=15, budget_s=80"
one eager e2e_b8 100 ", methods=('eager',), $ARGS, full_budget_s=15, budget_s=90"
one flash e2e_b8 140 ", methods=('flash',), $ARGS, full_budget_s=40, budget_s=130"
finish
