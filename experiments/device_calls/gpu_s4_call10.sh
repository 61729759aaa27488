# Session 4, device call 10 (1 x H100): the mixer / non-mixer breakdown at L = 2^14, B = 1 with
# session 4's engine (fused flash step, weight-free mixer blocks), blocks of 16 as in session 3,
# so its flash "mixer" row and the flash / no-mixer ratio describe the code as it is now.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c10
source experiments/device_calls/gpu_common.sh
one bd breakdown 300 ", ref_max=2**14"
finish
