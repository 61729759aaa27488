# For session 23 (NOT RUN yet; H100, ~8 min): the column chunk of the persistent kernel where
# session 22 left it open: bfloat16 B = 2 (two programs per SM, data_l1 polls) default vs
# chunk128 / chunk64, float32 B = 1 and 2 default (128 columns) vs chunk64 / chunk256, each
# checked at HIGHEST first, two processes each. Prediction: within +-5% everywhere; adopt a
# chunk for a batch only where it wins in both processes.
D=/tmp/res_s23c2
source experiments/device_calls/gpu_common.sh
for i in 1 2; do
  run_logged 110 python3 experiments/dense_gpu.py --batches=2 --dtypes=bfloat16 \
    --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=100 \
    --repeats=20 --variants=persistent:chunk128,persistent:chunk64 --out=$D/bf16_b2_$i.json
  run_logged 110 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=float32 \
    --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=100 \
    --repeats=20 --variants=persistent:chunk64,persistent:chunk256 --out=$D/f32_b12_$i.json
done
finish
