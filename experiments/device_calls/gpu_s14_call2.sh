# Session 14, device call 2 (prepared; run it once call 1's baselines.json shows the kernels
# ahead of XLA at B = 8): end to end at B = 8, L = 2^16 with the baselines on the kernels
# (FLASH_LCSM_BASELINE_KERNELS=pallas), lazy then flash in one process, as session 9's call 3
# (lazy 8.908* vs flash 0.540 ms/token = 16.5x on an H200, lazy on XLA's read). Prediction, if
# XLA fetches the filter window once per batch row (session 14's reading of the 2.48 TB/s): lazy's
# long convolutions 1.6-1.8x faster, lazy ~5.0-5.5 ms/token, the ratio ~9-10x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
export FLASH_LCSM_BASELINE_KERNELS=pallas
D=/tmp/res_s14c2
source experiments/device_calls/gpu_common.sh
one e2e e2e_b8 430 ", methods=('lazy', 'flash'), lengths=(2**10, 2**16), full_budget_s=100, budget_s=400"
finish
