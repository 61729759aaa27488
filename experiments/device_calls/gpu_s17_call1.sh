# Next session, device call 1 (any card; written in session 16, not run yet).
# Session 16 found, in the tile chains, that a Pallas kernel's scalar position costs a kernel of
# its own (~0.94 us) whenever XLA has to materialise it (a slice, or an add). In the engine's
# flash block each step's position is state.position + 1 of the step before: if XLA emits that
# add as its own kernel for the fused step's (1,) operand, a step of the long convolutions alone
# is three kernels where two would do (session 4's trace: 3.14 kernels per step), and passing
# the block's first position plus a static offset into the kernel would remove it.
# (1) the long convolutions alone, B = 1, blocks of 64, traced: kernels per step by name.
#     Look for an s32 add fusion once per step. Prediction: ~3 kernels per step, one of them
#     ~1 us of an add.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s17c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 150 python3 experiments/trace_gpu.py --parts=mixer --block_size=64 --steps=64 \
  --repeats=3 --top=10 --out=$D/trace_mixer.json
finish
