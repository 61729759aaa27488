# Session 19, device call 3 (H200: lazy at B = 8, L = 2^16 needs more than an 80 GB card).
# Issue #3's 20x point measured side by side after sessions 17-18 (fused-step fix, by-layer top
# tile): end to end at B = 8, L = 2^16, lazy then flash in one process, the engine's defaults.
# Session 9 (old lazy layout, H200): lazy 8.908* vs flash 0.540 ms/token = 16.5x. Session 16
# (H100, 2^15): 6.9x against today's lazy. Prediction: lazy ~5.2-5.8, flash ~0.55 ms/token, ~10x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s19c3
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one e2e e2e_b8 520 ", methods=('lazy', 'flash'), lengths=(2**16,), full_budget_s=60, budget_s=480"
finish
