# Session 21, call 2 (not run in session 21; RAN in session 22 as its call 3 on an H100, 278 s,
# results/raw/session22/call3_b1): the B = 1 end-to-end figure on today's engine. The
# published results/e2e_b1.json is session 3's H100 run (the fused dense path, 8.0x at 2^17);
# today's engine runs the persistent dense path (session 20: 9.6x at 2^17, lazy and flash
# only). Lazy, eager and flash at L = 2^10 .. 2^17, each method in its own process. Flash in
# full runs (its integral is off by ~19%: its blocks differ in their tile levels), lazy and
# eager integrated above full_budget_s.
# Prediction: flash ~0.37 ms/token at every L; lazy ~0.4 at 2^10 rising to ~3.5 at 2^17; eager
# above lazy from 2^14; flash vs lazy ~9.6x at 2^17.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s21c2
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="lengths=(2**10, 2**12, 2**14, 2**16, 2**17), repeats=2, max_keys=5"
one lazy e2e_b1 120 ", methods=('lazy',), $ARGS, full_budget_s=10, budget_s=110"
one eager e2e_b1 130 ", methods=('eager',), $ARGS, full_budget_s=10, budget_s=120"
one flash e2e_b1 300 ", methods=('flash',), $ARGS, full_budget_s=110, budget_s=290"
finish
