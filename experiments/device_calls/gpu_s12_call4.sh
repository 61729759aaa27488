# Session 12, device call 4: call 3's float32 B = 2 parity (2.8e-5 at L = 4096 from a 777-token
# prompt, against 4.6e-6 at B = 1 in session 7) with the barrier (DATA_SYNC_BATCHES emptied) and
# with XLA's dense path, same case, same machine: is the larger error data_l1's or the batch's?
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s12c4
source experiments/device_calls/gpu_common.sh
ARGS="'--skip_speed', '--norates', '--verify_cases=4096:777:flash:hybrid:2'"
run_logged 150 python3 -c "import sys; from absl import app
from flash_lcsm_jax.ops import pallas_layer as pal; pal.DATA_SYNC_BATCHES.clear()
from experiments import engine_probe as ep
sys.argv = ['engine_probe', $ARGS, '--out=$D/verify_4096_p777_b2_barrier.json']; app.run(ep.main)"
export FLASH_LCSM_DENSE=xla
run_logged 150 python3 experiments/engine_probe.py --skip_speed \
  --norates --verify_cases=4096:777:flash:hybrid:2 --out=$D/verify_4096_p777_b2_xla.json
finish
