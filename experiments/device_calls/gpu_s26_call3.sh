# Session 26, call 3 (H100): the epilogue's addends loaded before the product. Call 2 (H100):
# moving only the batch's rows took the whole-layer kernel from 7.7 to 6.4 us per phase at B = 1
# (5.8 with 66 programs: 0.418 ms/token; the Triton kernel 0.341 in the same call), the chain
# from 5.2 to 4.4. Each item's epilogue still loads its addends (bias, residual rows; the mix
# items' older ring slots, taps and conv bias) after the product: a dependent L2 round trip per
# phase. token_kernel's prefetch issues them right after the wait, beside the inputs.
# Prediction: -0.5 to -0.7 us per phase (5.8 -> ~5.2 at 66 programs, ~0.375 ms/token).
# 1. B = 1: epilogue_rows vs epilogue_rows_pre, 132 and 66 programs (checked first).
# 2. B = 8: epilogue vs epilogue_pre, 66 programs.
# 3. The engine's Triton dense path at bf16 B = 1, same card.
# With --trace, each B = 1 entry also runs 4 traced tokens: per kind, the SM cycles from the wait's
# end to the inputs staged, the product, the epilogue's stores and the signal, and per phase the
# slowest item's busy time; the phase's wall time beyond it is the hand-over (signal -> poll).
D=/tmp/res_s26c3
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv >> $LOG
run_logged 170 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --trace \
  --variants=epilogue_rows,epilogue_rows_pre --programs=0,66 --out=$D/mgpu_token_pre_b1.json
run_logged 90 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 \
  --variants=epilogue,epilogue_pre --programs=66 --out=$D/mgpu_token_pre_b8.json
triton_bf16_b1 80
finish
print_tracebacks
