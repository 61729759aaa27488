# The device work still open after session 3 (see experiments/NOTES.md), as one call on one H100
# (or H200): where the flash step's ~50 us (long convolutions only) and the dense path's
# ~0.2 ms above its floor go, kernel by kernel (trace_gpu: JAX's profiler, since Nsight Compute
# crashes here), then the in-place tile's block configs at U = 1, 2, 4 (call 9, never run).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_next
source experiments/gpu_common.sh
run_logged 200 python3 experiments/trace_gpu.py --out=$D/trace_gpu.json
run_logged 140 python3 experiments/inplace_blocks_gpu.py --out=$D/inplace_blocks.json
finish
