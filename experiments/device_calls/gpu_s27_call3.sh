# Session 27, call 3 (H100). Call 2: the fixed data-sync kernel runs and matches the counter
# kernel exactly over two tokens (B = 8), but is slower there: 0.584 vs hoist 0.473 ms/token
# (8.1 vs 6.6 us per phase). Suspect: every waiting item re-reads its whole input slice (8 rows)
# from L2 in a loop, traffic that slows the producers it waits for. "_spin" polls one word per
# thread first, then the rest (mc._poll_loads' spin). The B = 1 runs of call 2 ran out of time
# compiling (~4.5 s per Mosaic kernel; --model and --trace add ~8-11 kernels per variant), so
# here: no trace, and the model's loop last with 3 tokens.
# Predictions: B = 1 data 0.25-0.35 ms/token vs hoist ~0.42; spin at B = 8 below data's 0.584
# (if contention is the cause, near or under hoist's 0.473).
D=/tmp/res_s27c3
source experiments/device_calls/gpu_common.sh
run_logged 210 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --programs=66 \
  --variants=epilogue_rows_pre_hoist,epilogue_rows_pre_data,epilogue_rows_pre_data_spin \
  --out=$D/mgpu_token_b1.json
run_logged 130 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 --programs=66 \
  --variants=epilogue_pre_hoist,epilogue_pre_data_spin --out=$D/mgpu_token_b8.json
run_logged 120 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=3 --programs=66 \
  --model --variants=epilogue_rows_pre_hoist --out=$D/mgpu_token_model_b1.json
finish
print_tracebacks
