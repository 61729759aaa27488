# Session 3, device call 7 (1 x H100): the long convolutions alone with the H100 table just
# calibrated (pallas_inplace at most levels <= 6) against the built-in table and single taus,
# then flash end to end at B = 1 (one full 2^17 run) with it.
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res7; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
one() {  # subdir name timeout kwargs
  mkdir -p $D/$1; echo "=== $1 $(date +%T)" >> $LOG
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)" 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -30 >> $LOG
}
one mix mixer_b1 170 ", lengths=(2**10, 2**16, 2**17), methods=('flash',), variants=('hybrid', 'hybrid_default', 'pallas_inplace+fft', 'direct+fft'), budget_s=150"
one e2ef e2e_b1 150 ", methods=('flash',), lengths=(2**10, 2**17), full_budget_s=100, budget_s=140"
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
