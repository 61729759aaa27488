# Session 25, call 1 (H100 or H200): the Mosaic GPU chain kernel (experiments/mgpu_chain_gpu.py).
# Session 24's call 1b ran the kernel on an H100 for the first time: it compiled, ran and matched
# the reference to 1.6e-2 of the maximum at 18 layers (the chain's own bfloat16 noise: float32
# products already move it 1.7e-2), but the timing failed (fori_loop over GMEM refs; now unrolled).
# Now: a one-layer check (reference noise 9e-8 there), then ms per token from 16 tokens back to
# back less a one-token call. Prediction: nowait ~0.08 ms (227 MB of items at ~2.9 TB/s), chain
# 0.15-0.25 ms (72 phases at 2-3.5 us), the same at B = 1 and 8. The engine's Triton dense path:
# 0.3273 ms/token at bf16 B = 1 on an H100 (session 24 call 1), 2.70x its 0.121 ms floor; it is
# timed again at the end, on this call's card. chain_ln adds the layer norms' per-row reductions
# to mix and up items, xload9 nine more input slices to out items (the short convolution's state
# and gating inputs): the full layer's extra work, whose cost decides whether a whole-layer kernel
# of this design can reach #4's 2x (0.242 ms on an H100). Prediction: +0.3-0.6 us per phase each.
D=/tmp/res_s25c1
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/mgpu_chain_gpu.py --batches=1 --repeats=10 \
  --variants=chain,nowait,chain_ln,chain_ln_xload9,chain_ring7 \
  --out=$D/mgpu_chain_b1.json
run_logged 120 python3 experiments/mgpu_chain_gpu.py --batches=8 --repeats=10 \
  --variants=chain,chain_ln_xload9,nowait --out=$D/mgpu_chain_b8.json
run_logged 100 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=80 --repeats=20 \
  --out=$D/dense_bf16_b1.json
finish
python3 -c "
import json, glob
for f in sorted(glob.glob('$D/*.json')):
  for r in json.load(open(f))['records']:
    if 'traceback_tail' in r: print(r['traceback_tail'][-1800:]); break
"
