# Session 5, device call 8 (1 x H200): figure 2 at B = 8 again, whole, with today's engine and its
# default at B = 8 (XLA dense path, layers unrolled; session 2's figure scanned the layers):
# lazy, eager, flash at L = 2^10 .. 2^16 in one process, lazy first.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s5c8
source experiments/device_calls/gpu_common.sh
one e2e8 e2e_b8 480 ", lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16, budget_s=420"
finish
