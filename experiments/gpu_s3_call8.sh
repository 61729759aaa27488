# Session 3, device call 8 (1 x H100): parity at L = 2^17 on the paper config with the GPU's
# default engine (flash, H100 hybrid table, fused dense path), against the parallel forward.
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res8; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
echo "=== verify 2^17 $(date +%T)" >> $LOG
timeout 290 python3 experiments/engine_probe.py --skip_speed --batches=1 --out=$D/verify_paper_2e17_h100.json --verify_cases=131072:0:flash:hybrid 2>&1 | grep -E "^verify|rror|wrote" | cut -c1-400 >> $LOG
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
