# Session 3, device call 7 (1 x H100): the long convolutions alone with the H100 table just
# calibrated (pallas_inplace at most levels <= 6) against the built-in table and single taus,
# then flash end to end at B = 1 (one full 2^17 run) with it.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res7
source experiments/device_calls/gpu_common.sh
one mix mixer_b1 170 ", lengths=(2**10, 2**16, 2**17), methods=('flash',), variants=('hybrid', 'hybrid_default', 'pallas_inplace+fft', 'direct+fft'), budget_s=150"
one e2ef e2e_b1 150 ", methods=('flash',), lengths=(2**10, 2**17), full_budget_s=100, budget_s=140"
finish
