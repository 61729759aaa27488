# Session 8, device call 5 (it ran without the --variants= below, so dense_gpu's default variants
# took ~60 s per flag set and the exhaustive search got no result in its slot; NOTES): XLA's own dense path at B = 8 (the engine's default above B = 2;
# 0.62 ms/token on an H200, #3's 20x needs ~0.41) under XLA flags that change how its M = 8
# GEMMs are generated: cuBLAS instead of XLA's Triton GEMMs, an exhaustive Triton tiling search,
# and autotuning off (a floor for what the autotuner buys). One process per flag set (XLA reads
# XLA_FLAGS once); float32, timing only (the engine's exactness does not depend on the GEMM
# backend: checked in every call). Prediction: cuBLAS within +-15%; the exhaustive search
# <= 10% better (the default search already tries split-K).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s8c5
source experiments/device_calls/gpu_common.sh
i=0
for flags in "" "--xla_gpu_enable_triton_gemm=false" "--xla_gpu_exhaustive_tiling_search=true" \
             "--xla_gpu_autotune_level=0" "--xla_gpu_enable_triton_gemm=false --xla_gpu_enable_cublaslt=true"; do
  i=$((i+1))
  echo "=== flags: [$flags]" >> $LOG
  XLA_FLAGS="$flags" run_logged 110 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
    --phase1=xla_unroll --phase2= --python_chain= --variants= --budget_s=100 --out=$D/dense_b8_xla_flags$i.json
done
finish
