# Session 3, device call 9 (1 x H100): block configs of the in-place Pallas tile at U = 1, 2, 4.
# Prepared, not run: the session had no device time left for it.
D=/tmp/res9
source experiments/device_calls/gpu_common.sh
run_logged 140 python3 experiments/inplace_blocks_gpu.py --out=$D/inplace_blocks.json
finish
