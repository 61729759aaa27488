# Session 4, device call 7 (1 x H200): the long convolutions alone at B = 8 with session 4's
# engine and blocks of 64 steps (session 2: 196x at L = 2^16 with blocks of 16, old engine);
# lazy first, flash after, one process.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c7
source experiments/device_calls/gpu_common.sh
FLASH_LCSM_BLOCK=64 one mix8 mixer_b8 280 ", lengths=(2**10, 2**14, 2**16), methods=('lazy', 'flash'), variants=('hybrid',), budget_s=260"
finish
