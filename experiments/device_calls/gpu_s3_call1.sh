# Session 3, device call 1 (1 x H100 or H200): the fused per-token dense path (ops/pallas_layer)
# against XLA (dense_gpu), then end to end at B = 1 with the fused path (lazy and flash share
# it), then the long convolutions alone at L = 2^16, 2^17 (the 10 us/token and 110x targets).
D=/tmp/res
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv >> $LOG
run_logged 200 python3 experiments/dense_gpu.py --out=$D/dense_gpu.json --budget_s=160 --variants=rows_half,warps8
FLASH_LCSM_DENSE=fused one e2e e2e_b1 190 ", lengths=(2**14, 2**17), methods=('lazy', 'flash'), budget_s=170"
one mix mixer_b1 120 ", lengths=(2**16, 2**17), methods=('lazy', 'flash'), variants=('hybrid',), budget_s=100"
finish
