# Session 3, device call 2 (1 x H100): end to end at B = 1 (fused dense path, flash first so a
# fresh process runs it), the long convolutions alone, then the B = 1 hybrid calibration.
# Call 1 lost flash to "Failed to create cuFFT batched plan" at the L = 2^17 reference on the
# H100: XLA's default pool (75% of 80 GB) leaves no room for cuFFT's scratch next to the 46 GB
# plan, so the pool gets 92% here.
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
one() {  # subdir name timeout kwargs
  mkdir -p $D/$1; echo "=== $1 $(date +%T)" >> $LOG
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)" 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -30 >> $LOG
}
FLASH_LCSM_DENSE=fused one e2e e2e_b1 250 ", methods=('flash', 'lazy'), budget_s=230"
one mix mixer_b1 140 ", lengths=(2**10, 2**16, 2**17), methods=('flash', 'lazy'), variants=('hybrid',), budget_s=120"
echo "=== calibrate $(date +%T)" >> $LOG
mkdir -p $D/cal; timeout 140 python3 experiments/calibrate.py --batches=1 --max_level=12 --dir=$D/cal 2>&1 | grep -vE "^[IW][0-9]" | tail -16 >> $LOG
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
