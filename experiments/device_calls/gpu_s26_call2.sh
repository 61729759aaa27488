# Session 26, call 2 (H100): only the batch's rows moved. Call 1 (gpu_s25_call2.sh) split the
# chain's 5.5 us per phase at B = 1: input loads 1.9 us (chain_noload 3.6), the weight stream
# alone 1.4 (nowait_noload). Every item loads (8, 896) float32 slices (28 KB each, 3 per chain
# item, 4-5 per whole-layer item with the parameter rows) although 1 row is used at B = 1.
# mgpu_chain.load_rows reads only the batch's rows (the padded rows re-read row B - 1's
# addresses, which a warp's load shares) and parameter vectors from row 0; stores skip the
# padded rows. Predictions: chain_rows ~4.0 us per phase (loads 1.9 -> ~0.4); the whole layer
# (epilogue 7.7 us per phase, call 1 of session 25) -> 5-6 us; B = 2 in between.
# 1. The chain, B = 1: chain, chain_rows, chain_rows_progs66 (fewer programs: 5.2 vs 5.5 in call 1).
# 2. The whole layer, B = 1 and 2: epilogue vs epilogue_rows (checked against the model's layer
#    at HIGHEST first), 132 and 66 programs.
# 3. The engine's Triton dense path at bf16 B = 1 (session 25: 0.3228 ms/token on an H100).
D=/tmp/res_s26c2
source experiments/device_calls/gpu_common.sh
run_logged 100 python3 experiments/mgpu_chain_gpu.py --batches=1 --repeats=10 --tokens=6 \
  --variants=chain,chain_rows,chain_rows_progs66 --out=$D/mgpu_chain_rows.json
run_logged 200 python3 experiments/mgpu_token_gpu.py --batches=1,2 --tokens=6 \
  --variants=epilogue,epilogue_rows --programs=0,66 --out=$D/mgpu_token_rows.json
triton_bf16_b1 80
finish
print_tracebacks
