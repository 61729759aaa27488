# Session 5, device call 1 (1 x H200): issue #5's sweeps (figure 5) again, whole, with today's
# engine (session 2's runs stopped at their time budget before flash at M = 36, D = 1728 and
# B = 32, and predate the fused dense path and flash step). Scanned layers as in session 2
# (recorded in the JSON). Then GPU parity of today's engine at L = 2^15 from a 777-token prompt.
export FLASH_LCSM_UNROLL_LAYERS=0
D=/tmp/res_s5c1
source experiments/device_calls/gpu_common.sh
one layers sweep_layers 215 ", budget_s=180, ref_max=2**13"
one width sweep_width 200 ", budget_s=170, ref_max=2**13"
unset FLASH_LCSM_UNROLL_LAYERS
run_logged 140 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_2e15_p777.json --verify_cases=32768:777:flash:hybrid
finish
