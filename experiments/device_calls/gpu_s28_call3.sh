# Session 28, call 3 (NOT RUN: no device time left; either card, ~2-4 min: 3 small kernels compiled
# per form and size). The cluster-exchange probe (experiments/cluster_probe.py): what one exchange
# of `cluster` (1024,) float32 vectors per block costs inside a thread-block cluster (DSMEM reads
# after a cluster barrier) against the same exchange through global memory ordered by the grid-wide
# counter that the Mosaic token kernel's phases use. 128 blocks; clusters of 2, 4, 8 (portable) and
# 16 (non-portable: does it launch?). Each kernel is checked against the float64 recurrence first.
# Predictions: cluster 0.3-0.6 us per exchange, grid 1.5-2.5 us. If the cluster exchange is under
# ~0.5 us at 8-16, the two-phases-per-layer design of NOTES (session 28) is worth a kernel; if it is
# near the grid's, it is not.
D=/tmp/res_s28c3
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/cluster_probe_gpu.py --clusters=2,4,8,16 \
  --out=$D/cluster_probe.json
finish
print_tracebacks
