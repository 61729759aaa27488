# Session 3, device call 6 (1 x H100): block-shape variants of the fused dense kernels (which
# shape wins at B = 1 / 8, float32 / bfloat16), then the H100 hybrid table at B = 1, saved
# level by level.
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res6; mkdir -p $D/cal; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
echo "=== dense_gpu variants $(date +%T)" >> $LOG
timeout 230 python3 experiments/dense_gpu.py --out=$D/dense_gpu_variants.json --budget_s=200 --phase1=fused_unroll --phase2= --python_chain= --variants=order_chunk,rows_half,rows_double,warps8,chunk256 2>&1 | grep -vE "^[IW][0-9]|^\s|^\*\*\*" | tail -40 >> $LOG
echo "=== calibrate $(date +%T)" >> $LOG
timeout 190 python3 experiments/calibrate.py --batches=1 --max_level=11 --impls=direct,direct_dot,fft,matmul,pallas,pallas_inplace --dir=$D/cal 2>&1 | grep -vE "^[IW][0-9]" | tail -16 >> $LOG
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
