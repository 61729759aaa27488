# Session 3, device call 6 (1 x H100): block-shape variants of the fused dense kernels (which
# shape wins at B = 1 / 8, float32 / bfloat16), then the H100 hybrid table at B = 1, saved
# level by level.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res6
source experiments/device_calls/gpu_common.sh
run_logged 230 python3 experiments/dense_gpu.py --out=$D/dense_gpu_variants.json --budget_s=200 --phase1=fused_unroll --phase2= --python_chain= --variants=order_chunk,rows_half,rows_double,warps8,chunk256
mkdir -p $D/cal; run_logged 190 python3 experiments/calibrate.py --batches=1 --max_level=11 --impls=direct,direct_dot,fft,matmul,pallas,pallas_inplace --dir=$D/cal
finish
