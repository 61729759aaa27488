# Session 17, device call 5 (H100): which in-place Pallas levels carry flash's GPU error.
# Call 4 (batch_error_gpu, L = 4096, P = 777, B = 8, generated positions): device table 1.7e-4,
# lazy / fft / xla_small / no_pallas 3.7e-6, no_dot 1.7e-4: the pallas_inplace levels. The error
# grows with the batch row (8e-6 row 0 .. 2.6e-4 row 7) and row 0 alone (B = 1) gave 7.4e-5; the
# CPU (interpret mode) is exact. Hypothesis: a lost update between programs. The last channel
# block of a level whose channel block does not divide D = 864 (levels 0-3: 256/256/128/64)
# spans channels past D, i.e. the next row's (or the next layer's) first channels in the
# (M, B, D, Lb) buffer; if those rows are ever read and written back unmasked, an update of the
# program that owns them can be lost. Prediction: pallas_at=0 and pallas_at=2+3 high,
# pallas_at=4+5+6 ~3.7e-6, cb32 (no partial block at any level) ~3.7e-6, tile_only high.
# (2) the device table without command buffers (XLA_FLAGS), to rule out graph concurrency.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s17c5
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 300 python3 experiments/batch_error_gpu.py --out=$D/batch_error_levels.json \
  --variants=pallas_at=0,pallas_at=2+3,pallas_at=4+5+6,tile_only,cb32
XLA_FLAGS=--xla_gpu_enable_command_buffer= run_logged 120 python3 experiments/batch_error_gpu.py \
  --out=$D/batch_error_no_command_buffers.json --variants=device
finish
