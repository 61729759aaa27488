# Session 20, call 5 (one H100, ~2.5 min; call 4 never found a machine and the device time left
# was too short for it): the engine's untuned compile on the GPU. Lazy and eager end to end at
# B = 8, L = 2^16 WITHOUT XLA_FLAGS: the engine must compile their blocks without XLA's
# autotuner by itself (validation.baseline_untuned; call 1 failed there with the autotuner on),
# records "untuned_blocks": true. Two keys each (a check that it runs and a rough time).
# Prediction: both run; lazy's 65536-window key ~12.5 ms/step (call 1: 12.52).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s20c5
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="lengths=(2**16,), ref_max=2**16, repeats=2, max_keys=2, check=False"
one lazy e2e_b8 70 ", methods=('lazy',), $ARGS"
one eager e2e_b8 80 ", methods=('eager',), $ARGS"
finish
