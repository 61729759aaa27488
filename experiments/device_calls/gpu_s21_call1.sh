# Session 21, call 1 (H100 or H200, whichever starts; trimmed to ~5 min: ~1300 s of the
# session's 1800 went to failed machine starts). (a) The B = 8 end-to-end figure's lazy and flash
# lines on today's engine; the published results/e2e_b8.json is session 5's H200 run with that
# session's baselines (1.4-1.75x slower long convolutions) and XLA's dense path. Each method in
# its own process, flash first. Lazy WITHOUT XLA_FLAGS: where the autotuner's copy of its buffer
# would not fit (H100 at 2^16, H200 at 2^17) the engine must compile its blocks untuned by itself
# (validation.baseline_untuned, its first GPU run; records say "untuned_blocks"). Where 2^17 does
# not fit (H100), the reference halves to 2^16 and the 2^17 record says why. Eager: not run.
# Prediction: flash ~0.55-0.58 ms/token at every L; lazy ~0.6 / 0.7 / 1.8 / 7.6 (H100; an H200
# ~0.7x that); flash vs lazy ~13x at 2^16 on an H100.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s21c1
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
ARGS="repeats=2, max_keys=4"
# (b) first, ~1 min: session 20's lead for the B = 8 products ("rows_t": rows looped in Python,
# activations (n_in, B) kept in registers across rows; ptxas: mix 158 registers, no spills)
# against today's tile-order form, one phase over 18 layers in isolation (product_forms_gpu).
# Prediction: rows_t 1.3-2x faster than bcast at B = 8 if the L1 operand rate is the limit;
# slower if its per-row block reductions (62 block barriers in mix) cost more.
run_logged 60 python3 experiments/product_forms_gpu.py --phases=mix,up --batches=8,1 \
  --forms=bcast,rows_t --warps=8 --repeats=20 --out=$D/product_forms.json
one flash e2e_b8 130 ", methods=('flash',), lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16, $ARGS, full_budget_s=45, budget_s=120"
one lazy e2e_b8 90 ", methods=('lazy',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, $ARGS, full_budget_s=10, budget_s=80"
# eager: dropped (device time: ~1300 s of the session's 1800 went to failed machine starts)
finish
