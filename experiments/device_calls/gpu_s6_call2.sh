# Session 6, device call 2 (1 x H100): where the persistent token kernel's ~4 us per phase goes.
# (a) barrier_gpu: one grid-wide barrier alone, 16 / 108 / 132 programs, atomic vs volatile poll;
# (b) dense_gpu B = 1, bfloat16 and float32: persistent (default: 108 programs, atomic poll)
#     against its variants, each checked against XLA at HIGHEST: volatile poll, no prefetch,
#     4 warps, rows doubled (54 programs), rows doubled + volatile poll; and "nobarrier" (the
#     barriers removed: wrong results, never checked, only what the barriers cost).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s6c2
source experiments/device_calls/gpu_common.sh
run_logged 100 python3 experiments/barrier_gpu.py --out=$D/barrier_gpu.json
run_logged 330 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=300 \
  --variants=persistent:nobarrier,persistent:poll_volatile,persistent:noprefetch,persistent:warps4,persistent:rows_double,persistent:rows_double+poll_volatile \
  --out=$D/dense_persistent_variants.json
finish
