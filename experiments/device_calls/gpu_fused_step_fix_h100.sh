# Prepared in session 18 and not run yet (no device time then). One H100, ~6-8 min.
# Session 17: the compiled fused step (pallas_inplace.flash_step) was wrong at U = 4 and 8
# (flash 1.7e-4 against the forward at B = 8, rising with the batch row; lazy 3.7e-6), so it
# runs only at FUSED_STEP_LEVELS = {0, 4, 5, 6}. Session 18 found a likely cause by reading the
# kernel: position t+1 was loaded in the (Cb, 1) layout (for acc_{t+1}) and stored in the
# (Cb, U) layout (the tile) by other warps, with no barrier between; now it is read and written
# in one layout only. Prediction: fused_all matches lazy (~3.7e-6, flat over rows). If it does,
# set FUSED_STEP_LEVELS to every level and measure the online convolution (7.32 us/token in
# session 17; the U = 2-8 steps are 3/8 of all steps, each ~2 launches fewer fused).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_fused_step
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 480 python3 experiments/batch_error_gpu.py --out=$D/batch_error_fused_all.json \
  --variants=lazy,device,fused_all
finish
