# Session 26, call 4 (H100 or H200): the table row read before the wait. Call 3's trace (B = 1, 66
# programs, cycles at ~1.8 GHz): an item is busy ~10.3k cycles (inputs 3.6-5.2k, product 1.25k,
# epilogue + signal ~3-4k) and the hand-over between phases is only ~0.7 us of the 6.0-6.5. A
# down item's inputs (one slice, gelu, staging) take ~4k cycles: the table columns that address
# its loads are read after the wait, whose acquire orders them after it, so two round trips.
# Prediction: hoist saves one round trip (~1-1.5k cycles) per phase: 6.2 -> ~5.5 us, ~0.40 ms/token.
D=/tmp/res_s26c4
source experiments/device_calls/gpu_common.sh
run_logged 120 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --trace \
  --variants=epilogue_rows_pre,epilogue_rows_pre_hoist --programs=66 \
  --out=$D/mgpu_token_hoist_b1.json
finish
