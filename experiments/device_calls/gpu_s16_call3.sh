# Session 16, device call 3 (H100 or H200).
# Call 2: with the positions an argument, XLA's tiles are in place, but each Pallas tile paid a
# device-to-device copy (~0.94 us) of its scalar position, sliced out of one array (XLA fuses the
# slice away; a generation's step has its position as a scalar). The chains now take one scalar
# per tile.
# (1) tiles, unrolled, scalar positions. Prediction: Pallas tile 1 kernel, ~1.55 us at U <= 4
#     (call 2: gray_tile_inplace_u1..4 1.54-1.57 us), XLA direct 2.9-3.2 us: ~1.9-2x by kernel time.
# (2) H100: the calibration again, B = 1, levels 0-7, the taus of the committed table
#     (pallas_dft excluded, as there), into $D/cal.
# (2') H200 (> 100 GB): end to end at B = 8, L = 2^16, lazy then flash (session 15's call 3).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s16c3
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 100 python3 experiments/tile_kernels_gpu.py --levels=0,1,2,3,4,5 --count=16 \
  --long_count=64 --repeats=15 --hlo_dir=$D/hlo --out=$D/tiles_scalars.json
MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
if [ "$MEM" -gt 100000 ]; then
  one e2e e2e_b8 420 ", methods=('lazy', 'flash'), lengths=(2**16,), full_budget_s=60, budget_s=380"
else
  mkdir -p $D/cal; run_logged 170 python3 experiments/calibrate.py --batches=1 --max_level=7 \
    --impls=direct,direct_dot,fft,matmul,pallas,pallas_inplace --dir=$D/cal
fi
finish
