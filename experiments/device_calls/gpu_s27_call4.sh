# Session 27, call 4 (not run in session 27: calls 3 and 4 got no machine; next session's
# first call, ~6 min, either card). Call 2 (H100): the fixed data-sync kernel is exact (two
# tokens against the counter kernel: 0.0) but slower at B = 8: 0.584 vs hoist 0.473 ms/token
# (8.1 vs 6.6 us per phase); its B = 1 runs ran out of time compiling one Mosaic kernel (~4.5 s)
# per (parity, slot) pair. The kernels now read parity and slot at run time (mt.token_where),
# so a variant should compile ~2 kernels if the custom call's cache (kernel_hash) holds:
# each record's elapsed_s shows it (check / timing / model stage ends).
# 1. B = 1, --model (#4's own measure: the no-mixer model's whole token loop around the
#    kernel): data sync, hoist (counter), data sync with spin (each thread polls one word
#    before its slice: suspected cause of B = 8's loss is L2 traffic from waiting items).
#    Predictions: data 0.25-0.35 ms/token vs hoist ~0.42; the model's loop adds ~0.03 ms.
# 2. B = 8 side by side: hoist, data, spin. Prediction: spin below data's 0.584.
# 3. The engine's Triton kernel, same card (0.344-0.347 ms/token on the H100).
D=/tmp/res_s27c4
source experiments/device_calls/gpu_common.sh
run_logged 170 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --programs=66 \
  --model --variants=epilogue_rows_pre_data,epilogue_rows_pre_hoist,epilogue_rows_pre_data_spin \
  --out=$D/mgpu_token_b1.json
run_logged 130 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 --programs=66 \
  --variants=epilogue_pre_hoist,epilogue_pre_data,epilogue_pre_data_spin \
  --out=$D/mgpu_token_b8.json
triton_bf16_b1 80
finish
print_tracebacks
