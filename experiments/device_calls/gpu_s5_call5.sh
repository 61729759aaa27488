# Session 5, device call 5 (1 x H200): the dot kernels' column-chunk loop is now a lax.fori_loop
# that Triton software-pipelines (num_stages 3): call 4's static loops serialised each chunk's
# load latency behind the dot's barriers (3-13 ms/token at B = 8 whatever the dot algorithm).
# (a) dense_gpu, B = 8, float32: default dot kernels (FMA dot, 32 columns, 3 stages) checked and
# timed against XLA unrolled; variants tf32x3, 64 columns, 2 / 4 stages, 8 warps, each checked.
# (b) Only if the default fused path beats XLA at B = 8: end to end at B = 8, L = 2^10 / 2^16
# with FLASH_LCSM_DENSE=fused, lazy first (steps scanned: FLASH_LCSM_UNROLL_STEPS=0), then flash.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s5c5
source experiments/device_calls/gpu_common.sh
run_logged 230 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_unroll,xla_unroll --phase2= --python_chain= --check_variants \
  --variants=tf32x3,chunk64,tf32x3+chunk64,stages2,stages4,warps8 \
  --budget_s=200 --out=$D/dense_b8_pipelined.json
if python3 -c "
import json, sys
rows = json.load(open('$D/dense_b8_pipelined.json'))['rows']
t = {r['impl']: r['per_token_ms'] for r in rows if r.get('kind') == 'time' and 'variant' not in r and 'per_token_ms' in r}
print('phase-1 ms/token', t)
sys.exit(0 if t.get('fused_unroll', 1e9) < t.get('xla_unroll', 0) else 1)"; then
  FLASH_LCSM_DENSE=fused FLASH_LCSM_UNROLL_STEPS=0 one lazy e2e_b8 140 ", methods=('lazy',), lengths=(2**10, 2**16), budget_s=120"
  FLASH_LCSM_DENSE=fused one flash e2e_b8 170 ", methods=('flash',), lengths=(2**10, 2**16), full_budget_s=90, budget_s=150"
fi
finish
