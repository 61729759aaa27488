# Device call: figures 3, 4, 6, 7, 9 at B = 1 (results into $OUT/r, one JSON each).
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
R=$OUT/r; mkdir -p $R; LOG=$R/log.txt
stage() { echo "=== $1 $(date +%T)" | tee -a $LOG; }
one() {  # name timeout_s python-kwargs
  stage $1
  timeout $2 python3 -c "from experiments import registry; registry.run_one('$1', 'gpu', '$R'$3)" 2>&1 | grep -vE "^[IW][0-9]" | tail -40 | tee -a $LOG
}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee -a $LOG
one mixer_b1 175 ", budget_s=115"
one tau_levels 110 ", budget_s=75"
one breakdown 110 ""
one latency 80 ", length=2**15"
one layer_batching 65 ", budget_s=35"
stage done
