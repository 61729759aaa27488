# Session 30, call 1 (either card, ~6 min): LayerConfig.prefetch_operands in the engine's Triton
# persistent kernel. Each phase's operands that do not depend on its inputs (layer-norm scale and
# shift, biases, the short convolution's taps and window, acc, residual rows) are loaded before
# the barrier's wait instead of after it, taking one or two dependent round trips off each of the
# 72 phases (mix: the norm after the statistics, acc / window after the products; out / down:
# the residual after the products; up: the norm). ptxas (sm_90a, pip Triton 3.9): bf16 B = 1
# 215 -> 250 registers, no spills; f32 B = 1 251, no spills; f32 B = 8 tile order spills 32 ->
# 208 bytes. Predictions, side by side in one process, each checked against XLA at HIGHEST first:
# bf16 B = 1 0.330 -> 0.29-0.31 ms/token; f32 B = 1 0.369 -> 0.33-0.35; f32 B = 8 0.530 ->
# 0.50-0.53 (the spills may eat it). (Cut to ~6.5 min after ~900 s of failed starts;
# session 31: float32 B = 8 (#3) before float32 B = 1, whose target is met.)
# bfloat16 B = 1 as the engine runs it (two 4-warp programs per SM: PAIRED_BATCHES, dense_gpu's
# base since session 30) and with one per SM (sm1, which session 28's 0.330 was), with and
# without the variant.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s30c1
source experiments/device_calls/gpu_common.sh
run_logged 170 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=150 --repeats=20 \
  --variants=persistent:prefetch_ops,persistent:sm1,persistent:sm1+prefetch_ops \
  --check_variants --out=$D/dense_b1_bf16.json
# BF16_ONLY=1: this first part alone (~3 min), where the device time left is short.
[ -n "$BF16_ONLY" ] && { finish; exit; }
run_logged 120 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=105 --repeats=20 \
  --variants=persistent:prefetch_ops --check_variants \
  --out=$D/dense_b8.json
run_logged 100 python3 experiments/dense_gpu.py --batches=1 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=85 --repeats=20 \
  --variants=persistent:prefetch_ops --check_variants \
  --out=$D/dense_b1_f32.json
finish
