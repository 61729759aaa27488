# For session 23 (NOT RUN yet; needs an H200: run with needs_h200, ~8 min): #3's B = 8 curve up
# to 2^17. Session 22 measured B = 8 2^10-2^16 on an H100 (results/e2e_b8.json); 2^17 at B = 8
# holds a 61 GiB history buffer (flash ~99 GiB with its spectra), so only an H200 runs it. Each
# method in its own process, flash first; lazy and eager without XLA_FLAGS (the engine compiles
# their blocks untuned where the autotuner's copy would not fit). Merge the parts into
# results/h200/e2e_b8_2e17_s23.json with experiments.collect (the H100 curve stays the figure).
# Predictions (H200 ~1.4x the H100's bandwidth): flash ~0.50-0.55 ms/token flat; lazy ~10-11*
# at 2^17 (twice 2^16's window read), eager ~20*; flash vs lazy ~20x at 2^17.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s23c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="repeats=2, max_keys=4"
one flash e2e_b8 200 ", methods=('flash',), lengths=(2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=100, budget_s=190"
one lazy e2e_b8 150 ", methods=('lazy',), lengths=(2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=10, budget_s=140"
one eager e2e_b8 120 ", methods=('eager',), lengths=(2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=10, budget_s=110"
finish
