# Session 4, device call 1 (1 x H100): where a flash step's time goes, kernel by kernel
# (trace_gpu: JAX's profiler), for the long convolutions alone, the dense path and the whole
# model at L = 2^16, blocks of 16 steps, then the mixer again with blocks of 64 (host dispatches
# per token / 4: is the step host-bound?); then the in-place tile's block configs at U = 1, 2, 4.
# This also runs the engine as changed after session 3's last call (per-key call data, the
# boundary tile taking the position) on a GPU for the first time.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c1
source experiments/device_calls/gpu_common.sh
run_logged 220 python3 experiments/trace_gpu.py --out=$D/trace_b16.json
run_logged 120 python3 experiments/trace_gpu.py --parts=mixer --block_size=64 --steps=128 --out=$D/trace_mixer_b64.json
run_logged 140 python3 experiments/inplace_blocks_gpu.py --out=$D/inplace_blocks.json
finish
