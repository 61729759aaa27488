# Session 25, call 2 (H100): where the chain's 5.0 us per phase goes (call 1: chain 0.359
# ms/token at B = 1, its weight stream alone 0.115). chain_noload stages zeros instead of
# loading its inputs (the loads' share); nowait_noload is the stream, wgmma and stores alone;
# progs66 / progs33 put fewer programs on the counter (less polling of one L2 line, less
# bandwidth). Predictions: noload saves ~1 us per phase; fewer programs gain if polling
# contention is the cost.
D=/tmp/res_s25c2
source experiments/device_calls/gpu_common.sh
run_logged 110 python3 experiments/mgpu_chain_gpu.py --batches=1 --repeats=10 --tokens=6 \
  --variants=chain,chain_noload,nowait_noload,chain_progs66,chain_progs33 \
  --out=$D/mgpu_chain_probe.json
finish
