# Device call (1 x H200): per-token dense path (float32 / bfloat16, kernels per token, dynamic-
# slice fusion A/B at B = 8), then the remaining tau-ablation levels and sweep points.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
D=/tmp/res; mkdir -p $D; LOG=$D/log.txt
( while sleep 15; do tar czf $OUT/res.tgz -C $D . 2>/dev/null; done ) & K=$!
probe() {  # name timeout args...
  n=$1; t=$2; shift 2
  echo "=== probe $n $(date +%T)" >> $LOG
  timeout $t python3 experiments/engine_probe.py --skip_verify --lazy_positions= --taus=hybrid --parts=dense --speed_lengths=2048 --out=$D/probe_$n.json "$@" 2>&1 | grep -E "^speed|rror" | cut -c1-400 >> $LOG
}
probe f32 100 --batches=1,8 --unroll_layers=0
XLA_FLAGS=--xla_gpu_enable_dynamic_slice_fusion=true probe f32_dsf 50 --batches=8 --unroll_layers=0
probe bf16 50 --batches=1 --unroll_layers=0 --dtype=bfloat16
export FLASH_LCSM_UNROLL_LAYERS=0
one() {  # subdir name timeout kwargs
  mkdir -p $D/$1; echo "=== $1 $(date +%T)" >> $LOG
  timeout $3 python3 -c "from experiments import registry; registry.run_one('$2', 'gpu', '$D/$1'$4)" 2>&1 | grep -vE "^[IW][0-9]" | tail -30 >> $LOG
}
one tl1 tau_levels 70 ", batches=(1,), min_level=9, max_level=14, budget_s=50"
one tl8 tau_levels 110 ", batches=(8,), min_level=0, max_level=8, budget_s=80"
one sl sweep_layers 45 ", ref_max=2**13, values=(36,)"
one sw sweep_width 45 ", ref_max=2**13, values=(1728,)"
kill $K; tar czf $OUT/res.tgz -C $D .
cat $LOG
