# Session 28, call 2 (either card, ~8 min).
# 1. The dense path at B = 1, float32 and bfloat16, in one process whose floor is the 8-pass
#    copy measurement (the README's table still quotes session 20-22's single-pass floors): the
#    engine's Triton persistent kernel, the plain jitted scan (#4's "about 3x" baseline), and the
#    persistent kernel with its barriers removed (wrong results, timed as a bound: session 8's
#    0.222 ms in bf16 on an H200). Predictions: bf16 ~0.34 ms (3.1x), f32 ~0.36 (1.6-1.7x),
#    the bound ~2.0-2.1x in bf16.
# 2. gpu_s23_call3b.sh's open half, lazy only: the B = 8 figure's 2^16 point compiles lazy
#    without XLA's autotuner (its buffer copy does not fit there); does that flatter #3's
#    ratio? Lazy at B = 8, 2^12 and 2^14 (reference plan 2^14, so the tuned compile fits), tuned
#    then untuned (process-wide flag). Prediction: within 3% (session 20: no difference at
#    2^15; session 26's tuned-only run: 0.990 / 2.368 ms/token). Session 26's untuned half
#    printed nothing within 80 s, so each gets 170 s here.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s28c2
source experiments/device_calls/gpu_common.sh
run_logged 120 python3 experiments/dense_gpu.py --batches=1 --dtypes=float32,bfloat16 \
  --phase1=fused_persistent,xla_scan --phase2= --python_chain= --budget_s=100 --repeats=20 \
  --variants=persistent:nobarrier --out=$D/dense_b1.json
ARGS="lengths=(2**12, 2**14), ref_max=2**14, repeats=3, max_keys=4, full_budget_s=10"
one lazy_tuned e2e_b8 170 ", methods=('lazy',), $ARGS, budget_s=160"
XLA_FLAGS=--xla_gpu_autotune_level=0 one lazy_untuned e2e_b8 170 ", methods=('lazy',), $ARGS, budget_s=160"
finish
