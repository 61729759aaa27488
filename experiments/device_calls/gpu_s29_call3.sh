# Session 29, call 3 (RAN on an H100, 11 s: cluster_local 1.13 / 1.27 us at 2 / 8, cluster 1.26 /
# 6.12, grid 1.58 / 1.68; either card). Where call 2's cluster exchange time goes. Call 2 (H100):
# cluster 1.46 / 2.83 / 5.76 / 14.6 us per exchange at clusters of 2 / 4 / 8 / 16, ~0.7-1.1 us per
# peer read. cluster_local runs the same kernel (barriers, fences, adds) reading its own shared
# memory instead of its peers'. Prediction: ~0.5-1 us at every size, so the DSMEM reads (four 8-byte
# loads per thread per peer) are what grows; if cluster_local grows as well, the cluster barrier is.
# The grid form again beside it.
D=/tmp/res_s29c3
source experiments/device_calls/gpu_common.sh
run_logged 150 python3 experiments/cluster_probe_gpu.py --forms=cluster_local,cluster,grid \
  --clusters=2,8 --out=$D/cluster_probe_local.json
finish
print_tracebacks
