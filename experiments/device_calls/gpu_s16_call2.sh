# Session 16, device call 2 (H100).
# Call 1's HLO showed why XLA's tiles were slow in the chains: the positions were compiled in, so
# the tile's dynamic slices became static slices, and XLA's GPU emitter writes a dynamic-update-
# slice fusion that also reads its buffer through a static slice out of place (the whole buffer
# per tile). A generation's positions are traced; the chains now take them as an argument.
# (1) tiles, unrolled chain, positions as an argument, then compiled in (the old form), side by
#     side. Prediction: XLA direct ~2 kernels, ~2.8-3 us kernel time per tile at U <= 4 (as in
#     call 1's fori chain, less its bookkeeping), Pallas ~1.55 us: ~1.8x by kernel time.
# (2) the calibration, whose chain had the same flaw (positions compiled in), again on the H100,
#     B = 1, levels 0-11, into $D/cal (the committed table: pallas_inplace at levels 0 and 2-6).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s16c2
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 100 python3 experiments/tile_kernels_gpu.py --levels=0,1,2,3,4,5 --count=16 \
  --long_count=64 --repeats=15 --hlo_dir=$D/hlo --out=$D/tiles_argument.json
run_logged 90 python3 experiments/tile_kernels_gpu.py --levels=0,1,2,3,4,5 --count=16 \
  --long_count=64 --repeats=15 --constant_positions --out=$D/tiles_constant.json
mkdir -p $D/cal; run_logged 200 python3 experiments/calibrate.py --batches=1 --max_level=11 \
  --dir=$D/cal
finish
