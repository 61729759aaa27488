# Session 19, prepared for a call that never ran (no machine could be started; one H100, ~4 min).
# Lazy alone, end to end at B = 8, L = 2^16 on an 80 GB card, the memory estimate's refusal
# skipped (call 2: lazy's heaviest block peaked at 42.6 GB, no autotuner copy of the buffer), to
# set against call 3's flash on an H100 (0.580 ms/token; rerun flash in the same call if the
# device time allows). Prediction: lazy ~5.2-5.8 ms/token (integrated), ~9-10x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 FLASH_LCSM_SKIP_MEMORY_CHECK=1
D=/tmp/res_s19c5
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one e2e e2e_b8 300 ", methods=('lazy',), lengths=(2**16,), ref_max=2**16, full_budget_s=30, max_keys=4, budget_s=200"
finish
