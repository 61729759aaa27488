# Session 29, call 2 (RAN on an H100, 30 s: every kernel exact; cluster 1.46 / 2.83 / 5.76 / 14.6 us
# per exchange at 2 / 4 / 8 / 16, split 4.77 / 4.96 / 6.01 at 2 / 4 / 8, 4.44 with 64 blocks; either
# card). Call 1 again after the fix (every peer buffer is a whole scratch ref, one per parity), plus
# the split form with 64 blocks (8 clusters of 8: how the grid part scales with fewer blocks). The
# design it decides (NOTES, session 28/29): two phases per layer, each a split-K product whose
# partial sums are exchanged as the split form does. It reaches #4's 2x only if the split exchange
# plus a phase's own work stays under ~4.5 us (36 phases + 0.035 ms of unembedding <= 0.216 ms).
# Predictions as in call 1: cluster 0.3-0.6 us, grid 1.5-2.5 us (call 1: 1.6-2.0), split 2-3 us.
D=/tmp/res_s29c2
source experiments/device_calls/gpu_common.sh
run_logged 150 python3 experiments/cluster_probe_gpu.py --forms=cluster --clusters=2,4,8,16 \
  --out=$D/cluster_probe_cluster.json
run_logged 150 python3 experiments/cluster_probe_gpu.py --forms=split --clusters=8,4,2 \
  --out=$D/cluster_probe_split.json
run_logged 100 python3 experiments/cluster_probe_gpu.py --forms=split --clusters=8 \
  --programs=64 --out=$D/cluster_probe_split_p64.json
finish
print_tracebacks
