# Session 22, calls 4-6 (H100, warm machine, ~110 + 150 + 111 s): block-shape variants of the
# persistent kernel, each checked against hyena.token_step at HIGHEST before it is timed.
# Call 4: float32 B = 8 chunk64 / chunk256 (the tile order's column chunk; default 128), and
# bfloat16 B = 1 chunk128 / chunk512 (default 256 columns). Call 5: bfloat16 B = 1 default vs
# chunk128 vs chunk64, three processes in a row (--repeats=30). Call 6: bfloat16 B = 2 and 8
# default vs chunk128 (cut off by its budget after the B = 2 check).
D=/tmp/res_s22c4
source experiments/device_calls/gpu_common.sh
run_logged 120 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=110 \
  --variants=persistent:chunk64,persistent:chunk256 --out=$D/dense_b8_chunks.json
run_logged 110 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=100 \
  --variants=persistent:chunk128,persistent:chunk512 --out=$D/dense_b1_bf16_chunks.json
for i in 1 2 3; do  # call 5
  run_logged 80 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
    --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=70 \
    --repeats=30 --variants=persistent:chunk128,persistent:chunk64 \
    --out=$D/dense_b1_bf16_chunks_$i.json
done
run_logged 110 python3 experiments/dense_gpu.py --batches=2,8 --dtypes=bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=100 \
  --repeats=20 --variants=persistent:chunk128 --out=$D/dense_b28_bf16_chunk128.json  # call 6
finish
