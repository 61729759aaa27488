# For session 23 (NOT RUN yet; H100, ~2.5 min): are session 22's short-L lazy / eager points at
# B = 8 fair? They were timed with the 2^16 reference plan's executables, compiled untuned (the
# autotuner's buffer copy does not fit at 2^16); a 2^14 generation on its own fits the copy and
# compiles tuned. Session 20 found tuned = untuned at 2^15 (4.079 ms/token both); this checks
# 2^12 and 2^14, where session 22 has lazy 1.062* / 2.396* and eager 1.490* / 4.179*.
# Prediction: within 3%. If tuned is faster, the figure's short-L baselines get remeasured with
# their own plans.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s23c3
source experiments/device_calls/gpu_common.sh
one lazy e2e_b8 80 ", methods=('lazy',), lengths=(2**12, 2**14), ref_max=2**14, repeats=2, max_keys=4, full_budget_s=10, budget_s=70"
one eager e2e_b8 80 ", methods=('eager',), lengths=(2**12, 2**14), ref_max=2**14, repeats=2, max_keys=4, full_budget_s=10, budget_s=70"
finish
