# Session 3, device call 2 (1 x H100): end to end at B = 1 (fused dense path, flash first so a
# fresh process runs it), the long convolutions alone, then the B = 1 hybrid calibration.
# Call 1 lost flash to "Failed to create cuFFT batched plan" at the L = 2^17 reference on the
# H100: XLA's default pool (75% of 80 GB) leaves no room for cuFFT's scratch next to the 46 GB
# plan, so the pool gets 92% here.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res
source experiments/device_calls/gpu_common.sh
FLASH_LCSM_DENSE=fused one e2e e2e_b1 250 ", methods=('flash', 'lazy'), budget_s=230"
one mix mixer_b1 140 ", lengths=(2**10, 2**16, 2**17), methods=('flash', 'lazy'), variants=('hybrid',), budget_s=120"
mkdir -p $D/cal; run_logged 140 python3 experiments/calibrate.py --batches=1 --max_level=12 --dir=$D/cal
finish
