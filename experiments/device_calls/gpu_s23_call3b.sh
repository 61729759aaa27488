# Session 23, call 3b (H100 or H200, one machine): gpu_s23_call3.sh's question
# asked side by side on one card. Does compiling lazy's / eager's blocks without XLA's autotuner
# (what the engine does where the autotuner's buffer copy would not fit, e.g. B = 8 at 2^16, whose
# executables timed the B = 8 figure's shorter lengths) cost speed at short windows? Each method
# at B = 8, 2^12 and 2^14 (reference plan 2^14: fits the copy, so tuned), then the same with the
# process-wide flag turning the autotuner off. Prediction: within 3%. NOT RUN in session 23; its
# call 3 (H100, the tuned half only) showed the tuned compile takes over 80 s per process, so the
# tuned processes get 200 s here (~9 min in all).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s23c3b
source experiments/device_calls/gpu_common.sh
ARGS="lengths=(2**12, 2**14), ref_max=2**14, repeats=3, max_keys=4, full_budget_s=10"
for m in lazy eager; do
  one ${m}_tuned e2e_b8 200 ", methods=('$m',), $ARGS, budget_s=190"
  XLA_FLAGS=--xla_gpu_autotune_level=0 one ${m}_untuned e2e_b8 80 ", methods=('$m',), $ARGS, budget_s=70"
done
finish
