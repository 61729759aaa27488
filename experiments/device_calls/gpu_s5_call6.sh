# Session 5, device call 6 (1 x H200): (a) where the dot kernels' time goes at B = 8 (profiler:
# per-kernel device time of the fused dense path with the dot config, FLASH_LCSM_DENSE=fused);
# (b) the tau ablation's last missing point (pallas_dft at level 8, B = 8); (c) session 4's
# prepared call 13: XLA's --xla_gpu_temp_buffer_use_separate_color=true against the host-bound
# HyenaDNA-size model (2 layers, width 128; default flags: 0.050 / 0.077 ms/token at 2^14 / 2^17
# on an H100 in session 4, so it runs here with default flags too, side by side).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s5c6
source experiments/device_calls/gpu_common.sh
FLASH_LCSM_DENSE=fused run_logged 120 python3 experiments/trace_gpu.py --parts=dense --batch=8 --position=16384 --steps=32 --repeats=2 --out=$D/trace_b8_dot.json
one tau8 tau_levels 150 ", batches=(8,), min_level=8, max_level=8, taus=('pallas_dft',), budget_s=140"
S=", model=dict(n_layers=2, d_model=128, d_inner=512, vocab_size=16), methods=('flash',), lengths=(2**14, 2**17), full_budget_s=30, budget_s=70"
one small_default e2e_b1 90 "$S"
XLA_FLAGS=--xla_gpu_temp_buffer_use_separate_color=true one small_sep e2e_b1 90 "$S"
finish
