# Session 6, device call 4 (1 x H100): the engine with its new default dense path at B = 1 on a
# GPU, the persistent token kernel (all layers in one launch, 108 programs, 71 grid barriers).
# (a) GPU parity, L = 2^15 from a 777-token prompt, HIGHEST;
# (b) breakdown at L = 2^14, flash only: all / long convolutions only / dense only;
# (c) flash end to end, B = 1, L = 2^17, one full run.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s6c4
source experiments/device_calls/gpu_common.sh
run_logged 110 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_2e15_p777.json --verify_cases=32768:777:flash:hybrid
one bd breakdown 100 ", ref_max=2**14, methods=('flash',)"
FLASH_LCSM_BLOCK=16 one e2ef e2e_b1 170 ", methods=('flash',), lengths=(2**17,), full_budget_s=110, budget_s=160"
finish
