# Session 28, call 2 (H100): gpu_s23_call3b.sh's open half, lazy only. The B = 8 figure's 2^16
# point compiles lazy without XLA's autotuner (its buffer copy does not fit there); does that cost
# lazy speed, i.e. does it flatter #3's ratio? Lazy at B = 8, 2^12 and 2^14 (reference plan
# 2^14, so the tuned compile fits), tuned then untuned (process-wide flag), one card, one call.
# Prediction: within 3% (session 20: no difference at 2^15; session 26's tuned-only run: 0.990 /
# 2.368 ms/token). Session 26's untuned half printed nothing within 80 s: both get 230 s here.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s28c2
source experiments/device_calls/gpu_common.sh
ARGS="lengths=(2**12, 2**14), ref_max=2**14, repeats=3, max_keys=4, full_budget_s=10"
one lazy_tuned e2e_b8 230 ", methods=('lazy',), $ARGS, budget_s=215"
XLA_FLAGS=--xla_gpu_autotune_level=0 one lazy_untuned e2e_b8 230 ", methods=('lazy',), $ARGS, budget_s=215"
finish
