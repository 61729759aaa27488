# Session 7, device call 1 (H200): engine-level GPU parity of the persistent dense path (session
# 6's call 5, which was prepared and not run), a small case first so that a hang shows itself
# quickly: (a) L = 4096, P = 777; (b) L = 2^15, P = 777; (c) L = 2^17, P = 0 (the paper's
# parity case). All HIGHEST, the engine with dense_path="persistent".
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 FLASH_LCSM_DENSE=persistent
D=/tmp/res_s7c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv >> $LOG
run_logged 110 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_4096_p777.json --verify_cases=4096:777:flash:hybrid
if grep -q rel_error $D/verify_4096_p777.json 2>/dev/null; then
  run_logged 200 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_2e15_p777.json --verify_cases=32768:777:flash:hybrid
  run_logged 250 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_paper_2e17.json --verify_cases=131072:0:flash:hybrid
fi
finish
