# Session 3, device call 3 (1 x H100): why lazy with the fused dense path costs 1.7 ms/token
# at L = 1024 (call 2) when the same path costs 0.48 in flash blocks: block_probe A/B of the
# step loop (scan / unrolled) x dense path, then lazy and eager end to end again at B = 1 with
# the Generator's defaults (fused, steps unrolled).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res
source experiments/device_calls/gpu_common.sh
run_logged 170 python3 experiments/block_probe.py --out=$D/block_probe.json
one e2e e2e_b1 240 ", methods=('lazy', 'eager'), budget_s=220"
finish
