# The device call that produced results/ (H200): GPU parity at 2^17 (did not finish in its slot),
# a trained model, and the core benchmarks. Needs .whl/ (ml_collections wheel) carried.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
mkdir -p results runs
LOG=$OUT/log.txt
stage() { echo "=== $1 $(date +%T)" | tee -a $LOG; }
stage verify
timeout 160 python3 experiments/engine_probe.py --skip_speed --verify_cases=131072:0:flash:hybrid --out=results/verify_paper_2e17.json 2>&1 | grep -E "verify|rror" | tee -a $LOG
stage train
timeout 75 python3 run.py --mode=train --config=configs/train.py --config.model.l_max=8192 --config.train.steps=600 --config.train.batch_size=32 --config.train.seq_len=512 --config.train.warmup_steps=50 --config.train.eval_every=200 --config.train.ckpt_every=300 --config.train.sample_tokens=200 2>&1 | grep -vE "^[IW]1|\r" | tail -8 | tee -a $LOG
stage trained_check
timeout 70 python3 experiments/trained_check.py --checkpoint=runs/train --steps=4096 --out=results/trained_check.json 2>&1 | grep -E "equal|first_diff|seconds|rror" | tee -a $LOG
stage e2e_b1
timeout 165 python3 -c "from experiments import registry; registry.run_one('e2e_b1', 'gpu', 'results', budget_s=130)" 2>&1 | grep -vE "^[IW]1" | tail -25 | tee -a $LOG
stage breakdown
timeout 80 python3 -c "from experiments import registry; registry.run_one('breakdown', 'gpu', 'results')" 2>&1 | grep -vE "^[IW]1" | tail -12 | tee -a $LOG
stage cheap
timeout 25 python3 -c "from experiments import registry; registry.run_one('tiling', 'gpu', 'results'); registry.run_one('activation_bytes', 'gpu', 'results')" 2>&1 | grep -vE "^[IW]1" | tail -5 | tee -a $LOG
stage done
tar czf $OUT/results.tgz results runs/train/history.json runs/train/loss.png runs/train/sample.txt runs/train/model.safetensors 2>>$LOG
ls -la runs/train >> $LOG
