# Session 7, device call 3 (H200): call 2 showed the engine runs with the persistent dense path
# (generate / decode_logits at L = 256, default and HIGHEST precision, no hang; ~20-30 s of
# set-up and compilation on first use), so call 1's 110 s slot was likely too short. Parity
# with longer slots and Python stacks every 45 s to show where the time goes:
# (a) L = 4096, P = 777; (b) L = 2^15, P = 777, both HIGHEST, dense_path="persistent".
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 FLASH_LCSM_DENSE=persistent
D=/tmp/res_s7c3
source experiments/device_calls/gpu_common.sh
P="python3 experiments/engine_probe.py --skip_speed --batches=1 --stack_dump_s=45"
timeout 230 $P --out=$D/verify_4096_p777.json --verify_cases=4096:777:flash:hybrid 2>&1 | grep -E "^verify|File \"/work|Timeout|Error|error" | grep -v "absl" >> $LOG
timeout 300 $P --out=$D/verify_2e15_p777.json --verify_cases=32768:777:flash:hybrid 2>&1 | grep -E "^verify|File \"/work|Timeout|Error|error" | grep -v "absl" >> $LOG
finish
