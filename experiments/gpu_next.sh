# The device work still open after session 2 (see experiments/NOTES.md), as one call on
# 2 x H200 (one stream per GPU, ~9 minutes). Results come back as $OUT/a.tgz and $OUT/b.tgz;
# merge partial experiments into results/ with `python -m experiments.collect`.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
one() {  # dir name timeout_s kwargs
  echo "=== $2 $(date +%T)" >> $1/log.txt
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$1'$4)" 2>&1 | grep -vE "^[IW][0-9]" | tail -40 >> $1/log.txt
}
keep() { while sleep 20; do tar czf $OUT/$1.tgz -C /tmp/res_$1 . 2>/dev/null; done; }
stream_a() {  # B = 8 whole-tile calibration, then the tau ablation levels 6-8 at B = 8
  export CUDA_VISIBLE_DEVICES=0; D=/tmp/res_a; mkdir -p $D
  echo "=== calibrate B=8 $(date +%T)" >> $D/log.txt
  timeout 330 python3 experiments/calibrate.py --batches=8 --max_level=10 --dir=$D 2>&1 | grep -vE "^[IW][0-9]" | tail -30 >> $D/log.txt
  FLASH_LCSM_UNROLL_LAYERS=0 one $D tau_levels 180 ", batches=(8,), min_level=6, max_level=10, budget_s=150"
}
stream_b() {  # the fused dense path (ops/pallas_layer.py) vs XLA, then the missing sweep points
  export CUDA_VISIBLE_DEVICES=1 FLASH_LCSM_UNROLL_LAYERS=0; D=/tmp/res_b; mkdir -p $D/sb $D/sl $D/sw
  echo "=== dense_gpu $(date +%T)" >> $D/log.txt
  timeout 250 python3 experiments/dense_gpu.py --out=$D/dense_gpu.json 2>&1 | grep -vE "^[IW][0-9]" | tail -40 >> $D/log.txt
  one $D/sb sweep_batch 120 ", ref_max=2**13, values=(32,)"
  one $D/sl sweep_layers 80 ", ref_max=2**13, values=(36,)"
  one $D/sw sweep_width 80 ", ref_max=2**13, values=(1728,)"
}
mkdir -p /tmp/res_a /tmp/res_b
keep a & KA=$!; keep b & KB=$!
stream_a & SA=$!; stream_b & SB=$!
wait $SA $SB; kill $KA $KB
tar czf $OUT/a.tgz -C /tmp/res_a .; tar czf $OUT/b.tgz -C /tmp/res_b .
