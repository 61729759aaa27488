# Its _data variants were removed in session 28 (measured slower): to run it again, check out
# commit 24c03ba first (git checkout 24c03ba).
# Session 26, call 4 (H100 preferred; an H200 compares within the call only). NOT RUN in session
# 26 (no device time left). Call 3's trace (B = 1, 66 programs, cycles at ~1.8 GHz): an item is
# busy ~10.3k cycles (inputs 3.6-5.2k, product 1.25k, epilogue + release ~3-4k) and the
# hand-over between phases is ~0.7 us of the 6.0-6.5 us per phase.
# 1. hoist: the table row read before the wait (the wait's acquire orders later loads after it,
#    so the column that addresses a load cost a round trip). Prediction: -1 to -1.5k cycles per
#    phase, 6.2 -> ~5.5 us (~0.40 ms/token).
# 2. data: data-carrying synchronisation (no counter, no release; consumers poll their inputs'
#    words until none is PENDING; per-layer regions, two sets by token parity, each kernel
#    filling the next token's set). Checked first against the model's layer (one token) and
#    against the counter kernel over two tokens (two_tokens_vs_counter, both sets). Prediction:
#    the release (2.2-3.2k cycles) and the hand-over (~1-1.5k) go: ~2.5-4 us per phase,
#    0.18-0.29 ms/token. Its own process last: a wrong fill would hang it (the timeout ends it).
#    --model: the no-mixer model's whole token loop around it (embedding, final norm,
#    unembedding, argmax; checked teacher-forced against hyena.token_step): #4's own measure,
#    model_x_floor against the JSON's floor (<= 2 asked).
# 3. The engine's Triton dense path at bf16 B = 1, same card (call 3: 0.3373 ms/token).
D=/tmp/res_s26c4
source experiments/device_calls/gpu_common.sh
run_logged 130 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --trace \
  --variants=epilogue_rows_pre,epilogue_rows_pre_hoist --programs=66 \
  --out=$D/mgpu_token_hoist_b1.json
run_logged 200 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 --trace --model \
  --variants=epilogue_rows_pre_data --programs=0,66 --out=$D/mgpu_token_data_b1.json
run_logged 100 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 \
  --variants=epilogue_pre,epilogue_pre_data --programs=66 --out=$D/mgpu_token_data_b8.json
triton_bf16_b1 80
finish
print_tracebacks
