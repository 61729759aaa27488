# Session 10, device call 3: two programs per SM (sm2: 216 programs of 4 warps, half the rows
# each) at B = 1 and 2, both dtypes. Call 2 (H100): bfloat16 B = 1 0.3445 -> 0.3145 ms/token
# (checked); at B = 8 (tile order) it lost badly (0.545 -> 0.943: 4-warp layouts). Before the
# engine adopts it for B <= 2: every case checked against XLA at HIGHEST, side by side with the
# default, on the device this call gets; sm2 without barriers bounds it (bfloat16 B = 1).
# Prediction: 5-10% off every B <= 2 case.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s10c3
source experiments/device_calls/gpu_common.sh
run_logged 230 python3 experiments/dense_gpu.py --batches=1,2 --dtypes=bfloat16,float32 \
  --phase1=fused_persistent --phase2= --python_chain= --check_variants --budget_s=215 \
  --variants=persistent:sm2,persistent:sm2+nobarrier,persistent:nobarrier \
  --out=$D/dense_b12_sm2.json
finish
