# Session 12, device call 3: the engine with its new B = 2 default (persistent dense path,
# sync="data_l1" through LayerConfig.for_batch) against the parallel forward at HIGHEST: flash
# teacher-forced logits from a 777-token prompt, B = 2, float32 at L = 4096 and 2^15, bfloat16 at
# 4096. Each JSON row names the dense path and sync it ran.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s12c3
source experiments/device_calls/gpu_common.sh
P="python3 experiments/engine_probe.py --skip_speed --norates"
run_logged 160 $P --out=$D/verify_4096_p777_b2.json --verify_cases=4096:777:flash:hybrid:2
run_logged 160 $P --dtype=bfloat16 --out=$D/verify_4096_p777_b2_bf16.json \
  --verify_cases=4096:777:flash:hybrid:2
run_logged 240 $P --out=$D/verify_2e15_p777_b2.json --verify_cases=32768:777:flash:hybrid:2
finish
