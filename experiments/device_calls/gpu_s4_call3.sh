# Session 4, device call 3 (1 x H100): the host-bound flash step (calls 1-2) after three cuts:
# the fused step kernel (store u_t + gray tile + read acc_{t+1}: one launch instead of three),
# the long convolutions alone called without the model's weights (fewer arguments per call), the
# step constants made once per model. Trace (kernels, wall vs busy) at blocks of 16 and 64, then
# the long convolutions alone at L = 2^10 / 2^16 / 2^17 (blocks of 16, then 64: lazy once, at 16),
# then flash end to end at 2^10 and GPU parity with the fused step at 2^15, P = 777.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c3
source experiments/device_calls/gpu_common.sh
run_logged 90 python3 experiments/trace_gpu.py --parts=mixer --out=$D/trace_mixer_b16.json
run_logged 90 python3 experiments/trace_gpu.py --parts=mixer --block_size=64 --steps=128 --out=$D/trace_mixer_b64.json
one mix16 mixer_b1 150 ", lengths=(2**10, 2**16, 2**17), methods=('flash', 'lazy'), variants=('hybrid',), budget_s=130"
FLASH_LCSM_BLOCK=64 one mix64 mixer_b1 100 ", lengths=(2**10, 2**16, 2**17), methods=('flash',), variants=('hybrid',), budget_s=80"
run_logged 150 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_step.json --verify_cases=32768:777:flash:hybrid
finish
