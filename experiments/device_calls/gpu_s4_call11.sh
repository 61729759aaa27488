# Session 4, device call 11 (1 x H100): a HyenaDNA-size model (2 layers, width 128, MLP 512,
# vocab 16) end to end at B = 1, where every path is host-bound: flash and lazy at L = 2^10,
# 2^14, 2^17 with blocks of 16 and of 128 steps (separate fresh processes): does a block size
# that keeps (steps x layers) per executable near the paper model's 16 x 18 pay for small models?
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c11
source experiments/device_calls/gpu_common.sh
S=", model=dict(n_layers=2, d_model=128, d_inner=512, vocab_size=16), methods=('lazy', 'flash'), lengths=(2**10, 2**14, 2**17), full_budget_s=60, budget_s=150"
FLASH_LCSM_BLOCK=16 one b16 e2e_b1 170 "$S"
FLASH_LCSM_BLOCK=128 one b128 e2e_b1 170 "$S"
finish
