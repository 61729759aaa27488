# Session 13, device call 2: call 1's exact FMA dots were 3-6x slower than the broadcasts; do the
# tensor cores' dots stream faster? tf32x3 (about float32's accuracy) and tf32 (a bound only).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s13c2
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/product_forms_gpu.py --batches=8,4 --warps=8,4 \
  --forms=bcast,tf32x3_1,tf32x3_3,tf32_1,tf32_3 --out=$D/product_forms_tf32.json
finish
