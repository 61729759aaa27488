# Session 7, device call 6: prepared in session 7, run in session 8 as its call 2 (results/raw/session8/call2): the paper's
# parity case, L = 2^17 from position 0 at HIGHEST, with the engine's new default at B = 1 (the
# persistent dense path; results/verify_paper_2e17*.json had the fused and XLA paths).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c6
source experiments/device_calls/gpu_common.sh
timeout 185 python3 experiments/engine_probe.py --skip_speed --batches=1 --norates --stack_dump_s=40 --out=$D/verify_paper_2e17_persistent.json --verify_cases=131072:0:flash:hybrid 2>&1 | grep -E "^verify|^\\{|File \"/work|Timeout|Error" >> $LOG
finish
