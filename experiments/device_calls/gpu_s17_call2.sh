# Session 17, device call 2 (any card; H100 expected): the GPU parity of lazy and eager at B > 1
# with their (M, L, B, D) buffers (session 15's layout; on the GPU so far only op-level float64
# checks and one B = 8 timing run), then call 1's trace of the long convolutions alone.
# (1) engine_probe parity, paper config, float32 HIGHEST, L = 4096, P = 777, B = 8: lazy, eager,
#     flash against the parallel forward. Prediction: rel errors ~1e-5 to 3e-5 as session 15's
#     B = 2 flash (2.8e-5), all <= 1e-4.
# (2) gpu_s17_call1.sh's trace (predictions there).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s17c2
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 200 python3 experiments/engine_probe.py --skip_speed --norates --out=$D/verify_4096_p777_b8.json \
  --verify_cases=4096:777:lazy:hybrid:8,4096:777:eager:hybrid:8,4096:777:flash:hybrid:8
run_logged 150 python3 experiments/trace_gpu.py --parts=mixer --block_size=64 --steps=64 \
  --repeats=3 --top=10 --out=$D/trace_mixer.json
finish
