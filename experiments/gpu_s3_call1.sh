# Session 3, device call 1 (1 x H100 or H200): the fused per-token dense path (ops/pallas_layer)
# against XLA (dense_gpu), then end to end at B = 1 with the fused path (lazy and flash share
# it), then the long convolutions alone at L = 2^16, 2^17 (the 10 us/token and 110x targets).
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv >> $LOG
echo "=== dense_gpu $(date +%T)" >> $LOG
timeout 200 python3 experiments/dense_gpu.py --out=$D/dense_gpu.json --budget_s=160 --variants=rows_half,warps8 2>&1 | grep -vE "^[IW][0-9]" | tail -45 >> $LOG
one() {  # subdir name timeout kwargs
  mkdir -p $D/$1; echo "=== $1 $(date +%T)" >> $LOG
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)" 2>&1 | grep -vE "^[IW][0-9]" | tail -30 >> $LOG
}
FLASH_LCSM_DENSE=fused one e2e e2e_b1 190 ", lengths=(2**14, 2**17), methods=('lazy', 'flash'), budget_s=170"
one mix mixer_b1 120 ", lengths=(2**16, 2**17), methods=('lazy', 'flash'), variants=('hybrid',), budget_s=100"
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
