# Session 6, device call 5: PREPARED, NOT RUN (no device time was left). The engine-level GPU
# parity of the persistent dense path (opt-in until this passes; then the GPU default at B <= 2
# in Generator.dense_path_for), which call 4 tried with too short a slot (110 s), then the same
# at L = 2^17 as the published parity case.
# (a) L = 2^15 from a 777-token prompt, HIGHEST, the engine with dense_path="persistent";
# (b) L = 2^17, the paper's parity case (as results/verify_paper_2e17_h100.json, fused then).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 FLASH_LCSM_DENSE=persistent
D=/tmp/res_s6c5
source experiments/gpu_common.sh
run_logged 300 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_2e15_p777.json --verify_cases=32768:777:flash:hybrid
run_logged 290 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_paper_2e17_h100.json --verify_cases=131072:0:flash:hybrid
finish
