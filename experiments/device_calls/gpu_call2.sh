# Device call on 2 x H200, two independent streams (one per GPU), results into $OUT/r.
#   GPU 0: figures 3, 4, 6, 9 at B = 1.   GPU 1: parity at L = 2^17, then B = 8 end to end.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
R=$OUT/r; mkdir -p $R
one() {  # log name timeout_s kwargs
  echo "=== $2 $(date +%T)" >> $1
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$R'$4)" 2>&1 | grep -vE "^[IW][0-9]" | tail -40 >> $1
}
stream_a() {
  export CUDA_VISIBLE_DEVICES=0; L=$R/log_a.txt
  one $L mixer_b1 210 ", budget_s=130, variants=('hybrid', 'fft', 'pallas_inplace+fft', 'matmul+fft', 'pallas+fft', 'direct+fft')"
  one $L tau_levels 160 ", budget_s=110, max_level=13"
  one $L breakdown 140 ""
  one $L layer_batching 60 ", budget_s=25, points=((1, 2**17),)"
  echo "=== done $(date +%T)" >> $L
}
stream_b() {
  export CUDA_VISIBLE_DEVICES=1; L=$R/log_b.txt
  echo "=== verify $(date +%T)" >> $L
  timeout 280 python3 experiments/engine_probe.py --skip_speed --verify_cases=131072:0:flash:hybrid --out=$R/verify_paper_2e17.json 2>&1 | grep -E "verify|rror|wrote" >> $L
  export FLASH_LCSM_UNROLL_LAYERS=0
  one $L e2e_b8 200 ", budget_s=140, lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16"
  one $L mixer_b8 90 ", budget_s=50, variants=('hybrid',), lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16"
  echo "=== done $(date +%T)" >> $L
}
nvidia-smi --query-gpu=name,memory.total --format=csv > $R/log_a.txt
stream_a & stream_b & wait
cat $R/log_a.txt $R/log_b.txt
