# Session 29, call 1 (either card, ~3-5 min). The cluster-exchange probe
# (experiments/cluster_probe.py), session 28's unrun call 3 plus the split form: what a split-K
# phase's whole exchange costs (the sum over all 128 blocks, in every block: a cluster
# reduce-scatter through DSMEM, the clusters' sums through global memory and the grid counter, a
# cluster all-gather). Each kernel is checked against the float64 recurrence first.
# Predictions: cluster 0.3-0.6 us per exchange, grid 1.5-2.5 us, split 2-3 us (two cluster
# barriers plus one grid hand-over and one L2 read of 16 slices at cluster 8). The
# two-phases-per-layer design (NOTES, session 28) needs the split exchange plus the phase's own
# work under ~4.5 us (36 phases + 0.035 ms unembedding <= 0.216 ms); the split form is last and in
# its own process because its grid counter needs all 128 blocks resident (clusters of 8 on 132 SMs).
D=/tmp/res_s29c1
source experiments/device_calls/gpu_common.sh
run_logged 200 python3 experiments/cluster_probe_gpu.py --clusters=2,4,8,16 \
  --out=$D/cluster_probe.json
run_logged 150 python3 experiments/cluster_probe_gpu.py --forms=split --clusters=8,4 \
  --out=$D/cluster_probe_split.json
finish
print_tracebacks
