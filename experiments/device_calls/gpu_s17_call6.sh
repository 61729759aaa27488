# Session 17, device call 6 (H100): the fused step restricted to the levels it was exact at
# (pallas_inplace.FUSED_STEP_LEVELS = 0, 4, 5, 6; store + tile kernel + read at 1-3).
# (1) batch_error_gpu with the device table, B = 8 and row 0 alone. Prediction: ~3.7e-6 both
#     (call 5: tile_only 3.73e-6, lazy 3.74e-6 in call 4).
# (2) the online convolution with it. Prediction: 7.6 -> ~8.5-9 us/token (37.5% of the steps,
#     the U = 4 and 8 ones, take three launches instead of one), still <= 10.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s17c6
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 200 python3 experiments/batch_error_gpu.py --out=$D/batch_error_fixed.json \
  --variants=device,device_row0
one online/fixed online_conv 90 ""
finish
