# Session 10, device call 1: LayerConfig.warm (touching a phase's weight tile into L2 with
# volatile loads, one per 32-byte sector, results consumed by a store masked to NaN values).
# (a) B = 8, float32 (the tile order without prefetch: its prefetched tiles spilled): warm1 touches
#     the phase's own tile between arrival and wait and waits for it after the wait (the HBM
#     stream overlaps the barrier wait, ~1.3 us of the ~6 us phase); warm2 touches the NEXT
#     phase's tile, live through this phase (ptxas: spills 32 -> 256 bytes).
#     Prediction: 0.52 -> 0.45-0.48 ms/token (warm2 better if its spills are cheap); #3's 20x
#     needs the dense path at ~0.42. Checked against XLA at HIGHEST; XLA unrolled side by side.
# (b) B = 1, bfloat16 and float32 (register prefetch on): warm2 brings the next phase's tile
#     into L2 so the prefetch at the next barrier hits L2. Prediction: bfloat16 0.33 -> 0.28-0.31.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s10c1
source experiments/device_calls/gpu_common.sh
run_logged 230 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=xla_unroll,fused_persistent --phase2= --python_chain= --check_variants --budget_s=215 \
  --variants=persistent:warm1,persistent:warm2,persistent:warm2+nobarrier,persistent:nobarrier \
  --out=$D/dense_b8_warm.json
run_logged 200 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=185 \
  --variants=persistent:warm1,persistent:warm2 \
  --out=$D/dense_b1_warm.json
finish
