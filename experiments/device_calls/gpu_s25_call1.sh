# Session 25, call 1 (H100 or H200): the Mosaic GPU kernels. Session 24's call 1b ran the chain
# kernel (experiments/mgpu_chain.py) on an H100 for the first time: it compiled, ran and matched
# the reference to 1.6e-2 of the maximum at 18 layers (the chain's own bfloat16 noise: float32
# products already move it 1.7e-2), but its timing failed (fori_loop over GMEM refs; unrolled now).
# 1. mgpu_token_gpu: the whole layer (experiments/mgpu_token.py, checked in interpret mode on the
#    CPU against hyena._token_layer to 1e-7) on the paper config, bf16: checked against the
#    model's token step, then ms per token, kernels alone, B = 1 and 8. Prediction: 0.15-0.25 ms
#    (72 phases at 2-3.5 us); #4 needs the no-mixer model <= 0.242 ms with its unembedding on an
#    H100 (layers floor 0.086 ms).
#    Variants: epilogue (the short convolution in the mix items' epilogue: out items load 5
#    slices) and load (out items convolve the ring on load: 23 slices).
# 2. The chain alone (chain; nowait = the weight stream alone), B = 1.
# 3. The engine's Triton dense path at bf16 B = 1 on this call's card (session 24 call 1, H100:
#    0.3273 ms/token, 2.70x its 0.121 ms floor).
D=/tmp/res_s25c1
source experiments/device_calls/gpu_common.sh
run_logged 150 python3 experiments/mgpu_token_gpu.py --batches=1 --tokens=6 \
  --variants=epilogue,load --out=$D/mgpu_token_b1.json
run_logged 80 python3 experiments/mgpu_token_gpu.py --batches=8 --tokens=6 \
  --variants=epilogue --out=$D/mgpu_token_b8.json
run_logged 70 python3 experiments/mgpu_chain_gpu.py --batches=1 --repeats=10 --tokens=6 \
  --variants=chain,nowait --out=$D/mgpu_chain_b1.json
run_logged 80 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=60 --repeats=20 \
  --out=$D/dense_bf16_b1.json
finish
python3 -c "
import json, glob
for f in sorted(glob.glob('$D/*.json')):
  for r in json.load(open(f)).get('records', []):
    if 'traceback_tail' in r: print(r['traceback_tail'][-1800:]); break
"
