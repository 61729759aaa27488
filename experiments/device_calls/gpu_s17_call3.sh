# Session 17, device call 3 (H100): the block-start + literal-offset positions
# (s17_offsets.patch) against the tree before it, side by side, plus the B = 8 parity that
# call 2 ran out of time for.
# Call 2's trace (results/raw/session17/call2): the long convolutions alone at B = 1, blocks of
# 64, 3.05 kernels and 5.0 us of device time per step, of which loop_add_fusion_2 0.47 per step
# (~1.25 us each): XLA computing each step's position for the fused Pallas step's operand.
# (1) the online convolution (registry online_conv: L = 2^16, blocks of 256, full runs),
#     before / after / before / after, each in a fresh process. Prediction: after ~7.0-7.5
#     us/token against before ~8.1 (session 4), i.e. 0.6-1.2 us off.
# (2) the trace again, after: prediction ~2.6 kernels per step, no per-step add fusion.
# (3) parity, paper config, L = 4096, P = 777, B = 8: eager and flash (lazy passed in call 2:
#     4.6e-6). Prediction ~5e-6 to 3e-5.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s17c3
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
HERE=$PWD
mkdir -p /tmp/before && cp -r flash_lcsm_jax experiments /tmp/before/ && \
  (cd /tmp/before && patch -s -R -p1 < experiments/device_calls/s17_offsets.patch) || exit 1
for run in before_a after_a before_b after_b; do
  if [[ $run == before* ]]; then cd /tmp/before; else cd $HERE; fi
  PYTHONPATH=/tmp/site:. one online/$run online_conv 90 ""
done
cd $HERE
run_logged 100 python3 experiments/trace_gpu.py --parts=mixer --block_size=64 --steps=64 \
  --repeats=3 --top=10 --out=$D/trace_mixer_after.json
run_logged 250 python3 experiments/engine_probe.py --skip_speed --norates \
  --out=$D/verify_4096_p777_b8.json --verify_cases=4096:777:eager:hybrid:8,4096:777:flash:hybrid:8
finish
