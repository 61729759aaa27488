# Session 24, call 1b (H100 or H200; call 1 ran the dense path and failed in pallas_call): the Mosaic GPU chain kernel (experiments/mgpu_chain_gpu.py),
# first on the GPU. Each variant is checked against the float64 reference before it is timed.
# nowait first (no waiting: the weight stream alone; cannot hang), then the chain with ring
# depths 6 / 5 / 7 chunks, at B = 1 and 8; then the engine's persistent Triton dense path at
# bfloat16 B = 1 side by side (dense_gpu, fused_persistent only). Prediction: nowait near the
# item bytes' floor (227 MB bf16: ~0.08 ms at 2.9 TB/s), chain 0.15-0.25 ms (72 phases at 2-3.5
# us), the same at B = 1 and 8; the Triton dense path ~0.32 ms with its unembedding.
D=/tmp/res_s24c1b
source experiments/device_calls/gpu_common.sh
run_logged 100 python3 experiments/mgpu_chain_gpu.py --batches=1 --variants=nowait \
  --out=$D/mgpu_nowait.json
run_logged 160 python3 experiments/mgpu_chain_gpu.py --batches=1,8 \
  --variants=chain,chain_ring5,chain_ring7 --out=$D/mgpu_chain.json
finish
