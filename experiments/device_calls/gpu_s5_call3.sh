# Session 5, device call 3 (1 x H200): the batch-blocked tl.dot kernels of the fused dense path
# (pallas_layer order="dot", default_config for B >= 4). (a) dense_gpu at B = 8 and 16, float32:
# exactness against XLA at HIGHEST, then fused (dot) vs XLA unrolled layers per token, and the
# per-row kernels ("rowwise") and 8 warps as variants. (b) End to end at B = 8, L = 2^10 / 2^16
# with the fused dense path forced (FLASH_LCSM_DENSE=fused, recorded): lazy first in its own
# process, then flash in another (issue #3's 20x: 14.6x with XLA's dense path in session 4).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s5c3
source experiments/device_calls/gpu_common.sh
run_logged 190 python3 experiments/dense_gpu.py --batches=8,16 --dtypes=float32 \
  --phase1=fused_unroll,xla_unroll --phase2= --python_chain= --variants=rowwise,warps8 \
  --budget_s=165 --out=$D/dense_b8.json
FLASH_LCSM_DENSE=fused one lazy e2e_b8 150 ", methods=('lazy',), lengths=(2**10, 2**16), budget_s=130"
FLASH_LCSM_DENSE=fused one flash e2e_b8 200 ", methods=('flash',), lengths=(2**10, 2**16), full_budget_s=100, budget_s=180"
finish
