# Session 3, device call 8 (1 x H100): parity at L = 2^17 on the paper config with the GPU's
# default engine (flash, H100 hybrid table, fused dense path), against the parallel forward.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res8
source experiments/device_calls/gpu_common.sh
run_logged 290 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_paper_2e17_h100.json --verify_cases=131072:0:flash:hybrid
finish
