# Session 15, device call 1: session 14's calls 1 (c) and 2 in one call, since failed starts cost
# as much device time as a run.
# (1) experiments/baselines_gpu.py: the baselines' steps at B = 1 and 8: lazy's read in the
#     engine's XLA form, two other layouts and the Pallas kernel (ops/baseline_kernels.py) that
#     loads each filter tile once for every batch row; eager's update in XLA and as the kernel.
#     Prediction: at B = 8 XLA's forms fetch the filter per row (2.2-2.5 TB/s by the least-bytes
#     count); the kernels 3.5+ TB/s; at B = 1 all ~4 TB/s.
# (2) end to end at B = 8, L = 2^16 with the baselines on the kernels
#     (FLASH_LCSM_BASELINE_KERNELS=pallas), lazy then flash in one process (session 9's call 3:
#     lazy 8.908 vs flash 0.540 ms/token = 16.5x on an H200 with XLA's read). Prediction: lazy
#     ~5.0-5.5 ms/token, the ratio ~9-10x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s15c1
source experiments/device_calls/gpu_common.sh
run_logged 190 python3 experiments/baselines_gpu.py --out=$D/baselines.json --splits=8,32 --repeats=5
export FLASH_LCSM_BASELINE_KERNELS=pallas
one e2e e2e_b8 330 ", methods=('lazy', 'flash'), lengths=(2**16,), full_budget_s=60, budget_s=300"
finish
