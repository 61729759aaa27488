# Session 16, device call 4 (H200: B = 8 at L = 2^16 does not fit an H100 with flash).
# Session 15's call 3 without its baselines part (the H100 measured them, session 15 call 4):
# end to end at B = 8, L = 2^16, lazy then flash in one process, the engine's defaults, lazy's
# buffer (M, L, B, D). Session 9 (old layout): lazy 8.908* vs flash 0.540 ms/token = 16.5x.
# Prediction: lazy ~5.2-5.8 ms/token, ~10x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s16c4
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one e2e e2e_b8 440 ", methods=('lazy', 'flash'), lengths=(2**16,), full_budget_s=60, budget_s=400"
finish
