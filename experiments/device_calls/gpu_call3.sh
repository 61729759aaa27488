# Device call on 2 x H200, two streams (one per GPU): B = 8 end to end and mixer (fft tiles now
# layer by layer), sweeps, peak memory, layer batching, whole-tile kernels. Results tarred.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
export FLASH_LCSM_UNROLL_LAYERS=0  # scanned layers: 4-5x faster compiles (recorded in the JSON)
one() {  # dir name timeout_s kwargs
  echo "=== $2 $(date +%T)" >> $1/log.txt
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$1'$4)" 2>&1 | grep -vE "^[IW][0-9]" | tail -40 >> $1/log.txt
}
keep() { while sleep 20; do tar czf $OUT/$1.tgz -C /tmp/res_$1 . 2>/dev/null; done; }
stream_a() {
  export CUDA_VISIBLE_DEVICES=0; D=/tmp/res_a; mkdir -p $D
  one $D e2e_b8 210 ", budget_s=140, lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16"
  one $D mixer_b8 80 ", budget_s=40, variants=('hybrid',), lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16"
  one $D sweep_batch 120 ", budget_s=80, ref_max=2**13, values=(1, 8, 32)"
  echo "=== kernels $(date +%T)" >> $D/log.txt
  timeout 90 python3 experiments/kernels_gpu.py --levels=0,1,2,3,4,5,6 --batches=1,8 --budget_s=70 --impls=tile:direct,tile:pallas,tile:pallas_inplace,tile:matmul --out=$D/kernels.json 2>&1 | grep -vE "^[IW][0-9]" | tail -30 >> $D/log.txt
  echo "=== done $(date +%T)" >> $D/log.txt
}
stream_b() {
  export CUDA_VISIBLE_DEVICES=1; D=/tmp/res_b; mkdir -p $D
  one $D sweep_layers 120 ", budget_s=80, ref_max=2**13"
  one $D sweep_width 120 ", budget_s=80, ref_max=2**13"
  one $D peak_memory 170 ", lengths=(2**10, 2**14, 2**17), timeout_s=50"
  one $D layer_batching 100 ", budget_s=70, points=((1, 2**14),)"
  echo "=== done $(date +%T)" >> $D/log.txt
}
mkdir -p /tmp/res_a /tmp/res_b
keep a & KA=$!; keep b & KB=$!
stream_a & SA=$!; stream_b & SB=$!
wait $SA $SB; kill $KA $KB
tar czf $OUT/a.tgz -C /tmp/res_a .; tar czf $OUT/b.tgz -C /tmp/res_b .
cat /tmp/res_a/log.txt /tmp/res_b/log.txt
