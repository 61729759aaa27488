# Session 3, device call 5 (1 x H100): parity of the engines with the fused dense path (the
# GPU default at B = 1) against the parallel forward, then B = 8 end to end (XLA dense path,
# layers scanned; the reference plan capped at 2^16, which call 4 forgot: OOM at 2^17, B = 8).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res
source experiments/device_calls/gpu_common.sh
run_logged 150 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_fused.json --verify_cases=32768:777:flash:hybrid,4096:17:lazy:hybrid,4096:0:eager:hybrid,32768:0:flash:fft
FLASH_LCSM_UNROLL_LAYERS=0 one e2e8 e2e_b8 240 ", lengths=(2**10, 2**14, 2**16), methods=('lazy', 'flash'), ref_max=2**16, budget_s=220"
finish
