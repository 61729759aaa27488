# Session 13, device call 3: session 12 adopted sync="data_l1" at B = 2 from H100 timings only.
# Same comparison on this card (an H200 if one comes): default persistent (B = 1 barrier, B = 2
# data_l1) vs "barrier" (the barriers at B = 2 too), each at one and two programs per SM; checked
# against XLA at HIGHEST.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s13c3
source experiments/gpu_common.sh
run_logged 230 python3 experiments/dense_gpu.py --batches=2,1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=215 \
  --variants=persistent:sm2,persistent:barrier+sm2,persistent:barrier \
  --out=$D/dense_b12_sync.json
finish
