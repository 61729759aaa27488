# Session 7, device call 9: PREPARED, NOT RUN (no device time was left). The persistent kernel
# with early arrival (LayerConfig.arrive_early): each program announces its arrival at a phase's
# barrier before it issues its next weight-tile prefetch, then waits. Today the arrival's
# acquire-release atomic comes after the prefetch, and a release waits for the program's
# outstanding loads, so every barrier waits ~1 tile load (41-83 KB per program) longer than the
# products need. Prediction: up to ~1 us per phase, 72 phases: bfloat16 0.34 -> ~0.27-0.30 ms,
# float32 0.36 -> ~0.29-0.32 ms on an H200 (nobarrier, wrong results, bounds it from below).
# Checked against XLA at HIGHEST, B = 1 and 2.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s7c9
source experiments/gpu_common.sh
run_logged 400 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=380 \
  --variants=persistent:arrive_early,persistent:nobarrier,persistent:arrive_early+noprefetch \
  --out=$D/dense_arrive_early.json
finish
