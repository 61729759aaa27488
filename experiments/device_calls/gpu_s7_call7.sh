# Session 7, device call 7: prepared in session 7, run in session 8 as its call 3 (results/raw/session8/call3). End to end, B = 1, with
# the engine's new default (persistent dense path) on both sides: lazy and flash side by side in
# one process, lazy first; 2^10 in full (sweep_lengths checks the integral against the shortest
# length's full run: call 5 gave it 2^17 alone, a ~5-minute full lazy run, and timed out), 2^17
# lazy integrated, flash at 2^17 a full run where its 60 s budget allows (~47 s on an H200).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c7
source experiments/device_calls/gpu_common.sh
one e2e e2e_b1 560 ", methods=('lazy', 'flash'), lengths=(2**10, 2**17), full_budget_s=60, budget_s=520"
finish
