export PYTHONUNBUFFERED=1 PYTHONPATH=.
timeout 170 python3 experiments/matvec_gpu.py --out=$OUT/matvec_gpu.json 2>&1 | grep -v "^[IW]1" | tail -45
timeout 330 python3 experiments/calibrate.py --max_level=10 2>&1 | grep -v "^[IW]1"
cp flash_lcsm_jax/ops/tables/*.json $OUT/ 2>/dev/null
