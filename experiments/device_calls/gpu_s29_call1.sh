# Session 29, call 1 (RAN on an H100, 15 s: the grid form took 1.6-2.0 us per exchange; every
# cluster and split kernel failed to compile, JAX 0.11.2's Mosaic GPU giving a DSMEM read of a
# sliced buffer a type its address does not have. Fixed and run again by gpu_s29_call2.sh.)
# The cluster-exchange probe (experiments/cluster_probe.py): session 28's unrun call 3 plus the
# split form, what a split-K phase's whole exchange costs (the sum over all 128 blocks, in every
# block: a cluster reduce-scatter through DSMEM, the clusters' sums through global memory and the
# grid counter, a cluster all-gather). Each kernel is checked against the float64 recurrence
# first. Predictions: cluster 0.3-0.6 us per exchange, grid 1.5-2.5 us, split 2-3 us (two cluster
# barriers plus one grid hand-over and one L2 read of 16 slices at cluster 8). The split form is
# last and in its own process: its grid counter needs all 128 blocks resident (clusters of 8 on
# 132 SMs).
D=/tmp/res_s29c1
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/cluster_probe_gpu.py --clusters=2,4,8,16 \
  --out=$D/cluster_probe.json
run_logged 150 python3 experiments/cluster_probe_gpu.py --forms=split --clusters=8,4 \
  --out=$D/cluster_probe_split.json
finish
print_tracebacks
