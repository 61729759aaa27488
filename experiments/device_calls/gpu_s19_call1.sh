# Session 19, device call 1 (one H100, ~8 min). Checks session 18's unmeasured changes on a GPU.
# (a) batch_error_gpu: lazy, device table, fused_all (the fused step kernel at every in-place
#     level, with session 18's fix for the race on position t+1). Prediction: fused_all ~3.7e-6,
#     flat over batch rows, like lazy (session 17 before the fix: 1.7e-4, rising with the row).
# (b) verify at L = 2^17, B = 1, P = 0 (the U = 2^16 tile now runs one layer at a time in place,
#     tau.by_layer). Session 3: 8.6e-6 in 87 s. Prediction: same error.
# (c) Only if fused_all is within 1.5x of lazy: the online convolution (18 x 864, L = 2^16)
#     with the default FUSED_STEP_LEVELS and with every level fused, side by side.
#     Session 17: 7.32 us/token. Prediction: ~0.3-0.5 us/token less with every level fused.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s19c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 200 python3 experiments/batch_error_gpu.py --out=$D/batch_error_fused_all.json \
  --variants=lazy,device,fused_all
run_logged 150 python3 experiments/engine_probe.py --skip_speed --norates \
  --out=$D/verify_2e17_b1.json --verify_cases=131072:0:flash:hybrid:1
ok=$(python3 -c "
import json; r = {x['variant']: x['rel_error'] for x in json.load(open('$D/batch_error_fused_all.json'))['records']}
print(int('fused_all' in r and r['fused_all'] <= 1.5 * r['lazy']))" 2>/dev/null)
echo "fused_all exact: $ok" >> $LOG
if [ "$ok" = "1" ]; then
  one default online_conv 100 ""
  mkdir -p $D/fused_all
  run_logged 100 python3 -c "
from experiments import registry
from flash_lcsm_jax.ops import pallas_inplace
pallas_inplace.FUSED_STEP_LEVELS = frozenset(range(pallas_inplace.MAX_LEVEL + 1))
registry.run_one('online_conv', 'gpu', '$D/fused_all')"
fi
finish
