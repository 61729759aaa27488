# Session 27, call 4: call 3's B = 1 step alone (call 3 got no machine; ~300 s of device time
# were left). Data sync at B = 1 (its first measurement: call 1 hung, call 2 ran out of time
# compiling), the counter kernel with hoist beside it, then the spin form. Each record is
# written as it comes. Predictions: data 0.25-0.35 ms/token vs hoist ~0.42 (call 1: 0.422).
D=/tmp/res_s27c4
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --programs=66 \
  --variants=epilogue_rows_pre_data,epilogue_rows_pre_hoist,epilogue_rows_pre_data_spin \
  --out=$D/mgpu_token_b1.json
finish
print_tracebacks
