# Session 13, device call 1: the products' forms in isolation (experiments/product_forms_gpu.py).
# Prediction: the tile order's unrolled broadcasts ("bcast") stream ~1 TB/s at B = 8 (session 10);
# pipelined float32 dots ("dot2".."dot4": cp.async copies of the next chunks' tiles) 1.5-2.5 TB/s.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s13c1
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/product_forms_gpu.py --batches=8,4 --warps=8,4 \
  --forms=bcast,dot1,dot2,dot3,dot4 --out=$D/product_forms_b8_b4.json
run_logged 100 python3 experiments/product_forms_gpu.py --batches=2,1 --warps=4 \
  --forms=bcast,dot1,dot3 --out=$D/product_forms_b2_b1.json
run_logged 60 python3 experiments/product_forms_gpu.py --batches=8 --warps=8 --chunk=64 \
  --forms=bcast,dot3,dot4 --out=$D/product_forms_b8_c64.json
finish
