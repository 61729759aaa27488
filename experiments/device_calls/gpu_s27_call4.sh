# Session 27, call 4: call 3's B = 1 step (call 3 got no machine; ~300 s of device time are
# left). Data sync at B = 1 (its first measurement: call 1 hung, call 2 ran out of time
# compiling), the counter kernel with hoist beside it, then the spin form. The kernels now read
# parity and slot at run time (mt.token_where), so each variant should compile one Mosaic kernel
# instead of ~8-27 (if the custom call's kernel cache holds: the first test of that), which
# leaves room for --model (#4's own measure). Each record is written as it comes.
# Predictions: data 0.25-0.35 ms/token vs hoist ~0.42 (call 1: 0.422); the model's loop adds
# ~0.02-0.04 ms (embedding, final norm, unembedding of 50257 x 864 bf16 = 87 MB: ~0.03 ms).
D=/tmp/res_s27c4
source experiments/device_calls/gpu_common.sh
run_logged 100 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --programs=66 \
  --model --variants=epilogue_rows_pre_data,epilogue_rows_pre_hoist --out=$D/mgpu_token_b1.json
run_logged 60 python3 experiments/mgpu_token_gpu.py --batches=1,8 --tokens=6 --programs=66 \
  --variants=epilogue_rows_pre_data_spin --out=$D/mgpu_token_spin.json
finish
print_tracebacks
