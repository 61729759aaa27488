# Its _data variants were removed in session 28 (measured slower): to run it again, check out
# commit 24c03ba first (git checkout 24c03ba).
# Session 27, call 2 (H100). Call 1 (gpu_s26_call4.sh): hoist 0.456 -> 0.422 ms/token (B = 1,
# 66 programs; predicted -1 to -1.5k cycles per phase: -0.7k measured); the data-sync kernel
# hung at B = 1 and 8. Cause (found on the CPU): the last down half reads H's 64 padding
# columns past d_inner = 1728, which no item writes, and the fills made them PENDING. Fills now
# skip that gap (Geometry.unwritten_gap), the interpret test has such a gap (it failed before
# the fix: NaN), and polls give up after mc.POLL_LIMIT reads (a wrong fill makes NaN, not a
# hang).
# 1. The counter kernel with hoist inside the model's token loop (--model: #4's own measure).
# 2. Data sync, B = 1, 66 and 132 programs, checked over one and two tokens, traced, --model.
#    Prediction (unchanged): 2.5-4 us per phase, 0.18-0.29 ms/token for the layers.
# 3. B = 8: hoist vs data. 4. The engine's Triton kernel, same card.
D=/tmp/res_s27c2
source experiments/device_calls/gpu_common.sh
run_logged 110 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --model \
  --variants=epilogue_rows_pre_hoist --programs=66 --out=$D/mgpu_token_hoist_b1.json
run_logged 200 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --trace --model \
  --variants=epilogue_rows_pre_data --programs=66,132 --out=$D/mgpu_token_data_b1.json
run_logged 110 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 \
  --variants=epilogue_pre_hoist,epilogue_pre_data --programs=66 --out=$D/mgpu_token_b8.json
triton_bf16_b1 80
finish
print_tracebacks
