# Session 5, device call 2 (1 x H200): the rest of issue #5's gaps: the batch sweep whole with
# today's engine (B = 1, 8, 32; session 2's stopped before flash at B = 32), the tau ablation at
# B = 8 for levels 6-8 (merged into results/tau_levels.json by experiments.collect), and the
# layer-batching figure whole at B = 1, L = 2^14 (its first run stopped at level 7).
export FLASH_LCSM_UNROLL_LAYERS=0
D=/tmp/res_s5c2
source experiments/device_calls/gpu_common.sh
one batch sweep_batch 220 ", budget_s=180, ref_max=2**13, values=(1, 8, 32)"
unset FLASH_LCSM_UNROLL_LAYERS
one tau8 tau_levels 120 ", batches=(8,), min_level=6, max_level=8, budget_s=100"
one lb layer_batching 210 ", points=((1, 2**14),), budget_s=180"
finish
