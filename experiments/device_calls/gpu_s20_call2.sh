# Session 20, call 2 (one H100, ~4 min): the pallas_layer package split (session 19, never run on
# a GPU) checked and timed on the GPU. dense_gpu checks the compiled persistent kernel against
# hyena.token_step at HIGHEST (B = 1 and 8, float32 and bfloat16), then times it beside XLA
# unrolled: #4's "no-mixer per-token time <= 2x the weight floor" on today's tree. Then one
# engine parity case through the whole flash generation at B = 1 with a prompt.
# Prediction: checks pass (float32 ~1e-6, bfloat16 < 5e-3); times as sessions 9-16 (float32
# B = 1 ~0.36-0.40 ms, B = 8 ~0.52-0.55; bfloat16 B = 1 ~0.32-0.35), i.e. unchanged by the split.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s20c2
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 220 python3 experiments/dense_gpu.py --batches=1,8 --dtypes=float32,bfloat16 \
  --phase1=fused_persistent --phase2=xla_unroll --python_chain= --variants= --budget_s=200 \
  --out=$D/dense_split.json
run_logged 120 python3 experiments/engine_probe.py --skip_speed --norates \
  --out=$D/verify_4096_p777_b1.json --verify_cases=4096:777:flash:hybrid:1
finish
