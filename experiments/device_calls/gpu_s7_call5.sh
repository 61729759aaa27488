# Session 7, device call 5 (H200), the engine with its new GPU default at B <= 2 (the persistent
# dense path, after call 3's parity run passed):
# (a) breakdown at L = 2^14, flash only: all / long convolutions only / dense only (#3: <= 1.5x,
#     #4: <= 1.25x);
# (b) the dense path in bfloat16, B = 1: persistent vs XLA unrolled, checked at HIGHEST (#4's
#     bfloat16 target on this device);
# (c) end to end, B = 1, L = 2^17, lazy and flash side by side in one process (lazy integrated
#     from block timings, flash a full run where its budget allows).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c5
source experiments/device_calls/gpu_common.sh
one bd breakdown 110 ", ref_max=2**14, methods=('flash',)"
run_logged 90 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent,xla_unroll --phase2= --python_chain= --variants= --budget_s=80 \
  --out=$D/dense_bf16_h200.json
one e2e e2e_b1 330 ", methods=('lazy', 'flash'), lengths=(2**17,), full_budget_s=60, budget_s=300"
finish
