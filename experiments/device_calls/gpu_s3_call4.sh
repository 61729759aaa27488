# Session 3, device call 4 (1 x H100): flash end to end at B = 1 as one full 2^17-token run
# (fresh process), the mixer / non-mixer breakdown at 2^14 with the fused dense path, and
# B = 8 end to end (XLA dense path, layers scanned to keep compiles short).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res
source experiments/device_calls/gpu_common.sh
one e2ef e2e_b1 150 ", methods=('flash',), lengths=(2**10, 2**17), full_budget_s=100, budget_s=140"
one bd breakdown 190 ", ref_max=2**14"
FLASH_LCSM_UNROLL_LAYERS=0 one e2e8 e2e_b8 190 ", lengths=(2**10, 2**14, 2**16), methods=('lazy', 'flash'), budget_s=170"
finish
