# Session 19, device call 4 (one H100, ~6 min). Issue #3's B = 8, L = 2^16 point side by side on
# an 80 GB card. Call 2's peak_memory measured lazy's heaviest block at 42.6 GB (= what it
# holds: no autotuner copy of the buffer, which session 16 blamed for lazy not fitting), so the
# memory estimate's refusal is skipped (FLASH_LCSM_SKIP_MEMORY_CHECK=1, reference plan capped
# at 2^16) and lazy is measured; then flash in the same process (call 3: 0.580 ms/token).
# Prediction: lazy ~5.2-5.8 ms/token, ~9-10x; if lazy runs out of memory, the record says so.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 FLASH_LCSM_SKIP_MEMORY_CHECK=1
D=/tmp/res_s19c4
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one e2e e2e_b8 390 ", methods=('lazy', 'flash'), lengths=(2**16,), ref_max=2**16, full_budget_s=60, budget_s=300"
finish
