# Session 20, call 3 (one H100, ~6 min). (a) Is lazy as fast with XLA's autotuner off? Call 1
# had to turn it off at B = 8, L = 2^16 (the autotuner's copy of the 30.4 GiB buffer did not
# fit); at L = 2^15 both fit: lazy keys with the autotuner on and off, side by side.
# (b) B = 1 end to end at L = 2^17 (lazy and flash, one process) on today's tree: the README's
# B = 1 figures predate sessions 17-19's kernel and engine changes.
# Prediction: (a) within +-3%; (b) flash ~0.40 ms/token, lazy ~3.2, ~8x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s20c3
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
LAZY=", methods=('lazy',), lengths=(2**15,), ref_max=2**15, max_keys=3, check=False, budget_s=100"
one lazy_autotune e2e_b8 110 "$LAZY"
XLA_FLAGS=--xla_gpu_autotune_level=0 one lazy_noautotune e2e_b8 110 "$LAZY"
one e2e_b1 e2e_b1 300 ", lengths=(2**17,), methods=('lazy', 'flash'), max_keys=4, check=False, full_budget_s=120, budget_s=280"
finish
