# Session 3, device call 5 (1 x H100): parity of the engines with the fused dense path (the
# GPU default at B = 1) against the parallel forward, then B = 8 end to end (XLA dense path,
# layers scanned; the reference plan capped at 2^16, which call 4 forgot: OOM at 2^17, B = 8).
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
echo "=== verify $(date +%T)" >> $LOG
timeout 150 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_fused.json --verify_cases=32768:777:flash:hybrid,4096:17:lazy:hybrid,4096:0:eager:hybrid,32768:0:flash:fft 2>&1 | grep -E "^verify|rror" | cut -c1-400 >> $LOG
one() {  # subdir name timeout kwargs
  mkdir -p $D/$1; echo "=== $1 $(date +%T)" >> $LOG
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)" 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -30 >> $LOG
}
FLASH_LCSM_UNROLL_LAYERS=0 one e2e8 e2e_b8 240 ", lengths=(2**10, 2**14, 2**16), methods=('lazy', 'flash'), ref_max=2**16, budget_s=220"
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
