# Session 4, device call 13 (1 x H100): XLA's --xla_gpu_temp_buffer_use_separate_color (temp
# buffers in their own memory space, "improves cuda-graphs performance": stable addresses, so a
# graph need not be re-recorded) against call 12's diagnosis: the HyenaDNA-size model's flash
# full runs at 2^14 / 2^17 (blocks of 16; default flags: 0.050 / 0.077 ms/token in call 11),
# then the paper model's long convolutions alone at 2^16, blocks of 16 (default: 0.021).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c13
source experiments/device_calls/gpu_common.sh
S=", model=dict(n_layers=2, d_model=128, d_inner=512, vocab_size=16), methods=('flash',), lengths=(2**14, 2**17), full_budget_s=30, budget_s=70"
XLA_FLAGS=--xla_gpu_temp_buffer_use_separate_color=true one small_sep e2e_b1 100 "$S"
XLA_FLAGS=--xla_gpu_temp_buffer_use_separate_color=true one mix16_sep mixer_b1 60 ", lengths=(2**16,), methods=('flash',), variants=('hybrid',), budget_s=45"
finish
