# Session 4, device call 6 (1 x H200): end to end at B = 8, L = 2^16, with the engine's default
# dense path at B = 8 (XLA, layers unrolled: 0.57 vs 1.0 ms/token scanned on an H200 in session
# 1; session 2's 8.4x scanned the layers to save compile time) and the session-4 engine (fused
# flash step). Lazy first in its own fresh process, then flash in another.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c6
source experiments/device_calls/gpu_common.sh
one lazy e2e_b8 260 ", methods=('lazy',), lengths=(2**10, 2**16), budget_s=240"
one flash e2e_b8 250 ", methods=('flash',), lengths=(2**10, 2**16), full_budget_s=120, budget_s=230"
finish
