# Session 4, device call 12 (1 x H100): call 11 found flash on a HyenaDNA-size model (2 layers,
# width 128) at 0.077 ms/token in full 2^17 runs but 0.029 integrated from its blocks timed back
# to back by key (-62%): consecutive blocks alternate boundary-tile executables in a full run.
# Suspect: CUDA-graph (command buffer) updates when buffer addresses change between calls.
# Flash full runs at 2^14 and 2^17 with command buffers off (blocks of 16), and blocks of 128
# with and without them.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c12
source experiments/device_calls/gpu_common.sh
S=", model=dict(n_layers=2, d_model=128, d_inner=512, vocab_size=16), methods=('flash',), lengths=(2**14, 2**17), full_budget_s=40, budget_s=80"
XLA_FLAGS=--xla_gpu_enable_command_buffer= FLASH_LCSM_BLOCK=16 one b16_nocmd e2e_b1 95 "$S"
FLASH_LCSM_BLOCK=128 one b128 e2e_b1 95 "$S"
XLA_FLAGS=--xla_gpu_enable_command_buffer= FLASH_LCSM_BLOCK=128 one b128_nocmd e2e_b1 95 "$S"
finish
