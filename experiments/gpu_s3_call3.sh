# Session 3, device call 3 (1 x H100): why lazy with the fused dense path costs 1.7 ms/token
# at L = 1024 (call 2) when the same path costs 0.48 in flash blocks: block_probe A/B of the
# step loop (scan / unrolled) x dense path, then lazy and eager end to end again at B = 1 with
# the Generator's defaults (fused, steps unrolled).
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
echo "=== block_probe $(date +%T)" >> $LOG
timeout 170 python3 experiments/block_probe.py --out=$D/block_probe.json 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -20 >> $LOG
one() {  # subdir name timeout kwargs
  mkdir -p $D/$1; echo "=== $1 $(date +%T)" >> $LOG
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)" 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -30 >> $LOG
}
one e2e e2e_b1 240 ", methods=('lazy', 'eager'), budget_s=220"
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
