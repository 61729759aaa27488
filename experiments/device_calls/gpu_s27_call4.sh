# Its _data variants were removed in session 28 (measured slower): to run it again, check out
# commit 24c03ba first (git checkout 24c03ba).
# Session 27, call 4 (not run in session 27: calls 3 and 4 got no machine; next session's
# first call, ~8-9 min with its timeouts, either card). Call 2 (H100): the fixed data-sync
# kernel is exact (two tokens against the counter kernel: 0.0) but slower at B = 8: 0.584 vs
# hoist 0.473 ms/token
# (8.1 vs 6.6 us per phase); its B = 1 runs ran out of time compiling one Mosaic kernel (~4.5 s)
# per (parity, slot) pair. The kernels now read parity and slot at run time (mt.token_where),
# so a variant should compile ~2 kernels if the custom call's cache (kernel_hash) holds:
# each record's elapsed_s shows it (check / timing / model stage ends).
# Why data sync lost: every polled load was its own polling loop, and a loop's exit waits for
# its loads, so an item paid one L2 round trip per load, one after another (mix 6, out 8, up
# and down 5; the counter kernel issues them together after its one wait). "_group" polls all
# of an item's activations in one loop (mt.grouped_loads, mc.poll_group), its parameters
# loaded before it. "_spin": each thread polls one word first (less L2 traffic while waiting).
# 1. B = 1, --model (#4's own measure: the no-mixer model's whole token loop around the
#    kernel): data_group, hoist (counter), data_spin_group, data (ungrouped).
#    Predictions: data_group 3-4 us per phase, 0.22-0.30 ms/token vs hoist ~0.42; data
#    (ungrouped) >= hoist; the model's loop adds ~0.03 ms.
# 2. B = 8 side by side: hoist, data_group, data_spin_group, data_spin.
#    Prediction: data_group below hoist's ~0.47 (call 2: data 0.584).
# 3. data_group at B = 1 traced (SM clock stamps: where its phase goes, if not where predicted).
# 4. The engine's Triton kernel, same card (0.344-0.347 ms/token on the H100).
D=/tmp/res_s27c4
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --programs=66 \
  --model --variants=epilogue_rows_pre_data_group,epilogue_rows_pre_hoist,\
epilogue_rows_pre_data_spin_group,epilogue_rows_pre_data --out=$D/mgpu_token_b1.json
run_logged 150 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 --programs=66 \
  --variants=epilogue_pre_hoist,epilogue_pre_data_group,epilogue_pre_data_spin_group,\
epilogue_pre_data_spin --out=$D/mgpu_token_b8.json
run_logged 70 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --programs=66 \
  --trace --variants=epilogue_rows_pre_data_group --out=$D/mgpu_token_b1_trace.json
triton_bf16_b1 80
finish
print_tracebacks
