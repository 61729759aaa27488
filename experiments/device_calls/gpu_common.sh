# Shared set-up of the device scripts (experiments/device_calls/gpu_s*_call*.sh). Source it with D
# set to the results folder. It installs the wheels that travel in .whl/ (ml_collections; the
# device has no network), keeps $OUT/res.tgz fresh every 15 s (a call that runs out of time still
# returns its partial JSON: every experiment rewrites its JSON after each record), and defines
#   run_logged TIMEOUT CMD...      CMD under `timeout`, its output (less absl's I/W lines and
#                                  stack dumps) appended to the log
#   one SUBDIR NAME TIMEOUT KWARGS registry.run_one(NAME, 'gpu', D/SUBDIR, KWARGS) the same way
#   finish                         stop the keeper, pack D into $OUT/res.tgz, print the log
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
LOG=$D/log.txt
mkdir -p $D
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & KEEPER=$!
run_logged() {
  local t=$1; shift
  echo "=== $* $(date +%T)" | cut -c1-200 >> $LOG
  timeout $t "$@" 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -45 >> $LOG
}
one() {
  mkdir -p $D/$1
  run_logged $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)"
}
finish() { kill $KEEPER; tar czf $OUT/res.tgz -C $D .; cat $LOG; }
# The engine's Triton persistent dense path at bfloat16 B = 1 (the Mosaic kernels' reference).
triton_bf16_b1() {
  run_logged $1 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
    --phase1=fused_persistent --phase2= --python_chain= --budget_s=60 --repeats=20 \
    --out=$D/dense_bf16_b1.json
}
# The first traceback recorded in each JSON under $D (an entry that failed).
print_tracebacks() {
  python3 -c "
import json, glob
for f in sorted(glob.glob('$D/*.json')):
  for r in json.load(open(f)).get('records', []):
    if 'traceback_tail' in r: print(r['traceback_tail'][-1800:]); break
"
}
