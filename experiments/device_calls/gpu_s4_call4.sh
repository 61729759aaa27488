# Session 4, device call 4 (1 x H100): (1) small gray tiles, Pallas vs XLA direct, by wall time
# and by the profiler's kernel time (tile_kernels_gpu.py: issue #4's 1.5x at U <= 32); (2) the
# long convolutions alone with blocks of 64 steps (call 3: 10 us/token at 2^16 vs 21 with 16),
# lazy and eager first (fresh process), flash after, L = 2^10..2^17: the H100 mixer figure;
# (3) flash alone with blocks of 128 at 2^16 (does the trend go on?).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c4
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/tile_kernels_gpu.py --out=$D/tile_kernels.json
FLASH_LCSM_BLOCK=64 one mix64 mixer_b1 250 ", lengths=(2**10, 2**12, 2**14, 2**16, 2**17), methods=('lazy', 'eager', 'flash'), variants=('hybrid',), budget_s=230"
FLASH_LCSM_BLOCK=128 one mix128 mixer_b1 80 ", lengths=(2**16,), methods=('flash',), variants=('hybrid',), budget_s=60"
finish
