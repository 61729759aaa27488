# Session 6, device call 1 (1 x H100 asked for): the persistent token kernel (all layers of a
# token in one launch, grid-wide barriers between the phases, weights loaded before the wait).
# (a) smoke: check + time at B = 1, float32 only (a hang here costs 150 s, not the call);
# (b) if it passed: float32 and bfloat16, B = 1 and 8: check, persistent vs per-layer kernels
#     (fused_unroll) vs XLA unrolled; variants without prefetch and with 4 warps, each checked.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s6c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv >> $LOG
run_logged 150 python3 experiments/dense_gpu.py --batches=1 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --variants= --budget_s=120 \
  --out=$D/dense_smoke.json
if python3 -c "
import json, sys
d = json.load(open('$D/dense_smoke.json'))
sys.exit(0 if d.get('checks_passed') else 1)"; then
  run_logged 400 python3 experiments/dense_gpu.py --batches=1,8 --dtypes=bfloat16,float32 \
    --phase1=fused_persistent,fused_unroll --phase2=xla_unroll --python_chain= \
    --variants=persistent:noprefetch,persistent:warps4 --check_variants --budget_s=360 \
    --out=$D/dense_persistent.json
fi
finish
