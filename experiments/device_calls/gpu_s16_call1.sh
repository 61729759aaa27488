# Session 16, device call 1 (H100 or H200).
# (1) tiles, #4: session 15 found the unrolled chain of tile_kernels_gpu.py unfair to XLA (its
#     direct tile's kernel time grew with the buffer: a whole-buffer write per tile). The new
#     --loop=fori chain (one tile per iteration on the loop-carried buffer) has no buffer copies
#     on the CPU. Both chains side by side, with the compiled HLO kept (hlo/).
#     Prediction: XLA direct's kernel time per tile at U = 1 / 2 falls from 5.8 / 8.7 us to ~2-3,
#     Pallas unchanged at ~1.5 (kernel) and ~1.4 us (marginal); Pallas over XLA ~1.5-2x.
# (2) H200 only (> 100 GB): session 15's call 3, end to end at B = 8, L = 2^16, lazy then flash,
#     the engine's new (M, L, B, D) lazy buffer. Prediction: lazy ~5.2-5.8 ms/token, ~10x.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s16c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 100 python3 experiments/tile_kernels_gpu.py --levels=0,1,2,3,4,5 --count=16 \
  --long_count=64 --repeats=15 --loop=fori --hlo_dir=$D/hlo --out=$D/tiles_fori.json
MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
if [ "$MEM" -gt 100000 ]; then
  one e2e e2e_b8 420 ", methods=('lazy', 'flash'), lengths=(2**16,), full_budget_s=60, budget_s=380"
else
  run_logged 90 python3 experiments/tile_kernels_gpu.py --levels=0,1,2,3,4,5 --count=16 \
    --long_count=64 --repeats=15 --loop=unrolled --hlo_dir=$D/hlo --out=$D/tiles_unrolled.json
fi
finish
