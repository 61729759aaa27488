# Session 16, device call 5 (H100, no H200 came in three tries): end to end at B = 8, L = 2^15
# (2^16 does not fit an H100 with flash), lazy then flash in one process, the engine's defaults,
# lazy's buffer (M, L, B, D): the new layout inside the engine on a GPU for the first time.
# Session 15 call 4 tried this in a 260 s slot and wrote nothing (lazy's first B = 8 compile);
# 440 s here. Prediction: lazy ~3.5-4 ms/token (mean window 16384: read ~3.2 ms at W = 16384
# scaled from 6.3-6.7 ms at 32768, plus ~0.55 dense), flash ~0.55-0.6: ~6-7x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s16c5
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one e2e e2e_b8 440 ", methods=('lazy', 'flash'), lengths=(2**15,), full_budget_s=60, budget_s=400"
finish
