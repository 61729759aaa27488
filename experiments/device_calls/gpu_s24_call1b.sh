# Session 24, call 1b (H100 or H200): the Mosaic GPU chain kernel (experiments/mgpu_chain_gpu.py)
# on the GPU (call 1's run failed at once: JAX 0.11's pallas_call has no Mosaic GPU rule; the
# kernel now runs through core_map). Each variant is checked against the float64 reference
# before it is timed. nowait first (no waiting: the weight stream alone; cannot hang), then the
# chain with ring depths 6 / 7 / 5 chunks at B = 1, then the chain at B = 8. Prediction: nowait
# near the item bytes' floor (227 MB bf16: ~0.08 ms at 2.9 TB/s), chain 0.15-0.25 ms (72 phases
# at 2-3.5 us), the same at B = 1 and 8. Call 1 timed the engine's Triton dense path at bf16
# B = 1 on an H100: 0.3273 ms/token with its unembedding (2.70x its 0.121 ms floor).
D=/tmp/res_s24c1b
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/mgpu_chain_gpu.py --batches=1 --repeats=10 \
  --variants=nowait,chain,chain_ring7,chain_ring5 --out=$D/mgpu_chain_b1.json
run_logged 90 python3 experiments/mgpu_chain_gpu.py --batches=8 --repeats=10 \
  --variants=chain --out=$D/mgpu_chain_b8.json
finish
python3 -c "
import json, glob
for f in sorted(glob.glob('$D/*.json')):
  for r in json.load(open(f))['records']:
    if 'traceback_tail' in r: print(r['traceback_tail'][-1800:]); break
"
