# Session 31, call 1 (either card; ~7 min expected, ~9.5 min of timeouts; supersedes
# gpu_s30_call1.sh, which never ran):
# LayerConfig.barrier_order="release_acquire" and LayerConfig.prefetch_operands in the engine's
# Triton persistent kernel, each checked against XLA at HIGHEST before it is timed.
# The lead (ptxas for sm_90a, experiments/NOTES.md session 31): Pallas' atomic add is
# acquire-release, so every poll of the barrier count is MEMBAR.ALL.GPU + ATOMG + CCTL.IVALL,
# and the fence first waits for every load the thread has in flight: the weight tile prefetched
# before the wait is drained before the first poll goes out, so the poll's round trip follows
# the tile's instead of overlapping it (and prefetch_operands' loads would be drained the same
# way). "release_acquire": the arrival is red.release (fence + fire-and-forget), each poll an
# ld.acquire (LDG.STRONG.GPU + CCTL.IVALL, no fence; Triton turns the acquiring add of 0 into a
# load). Predictions: barrier_gpu at 132 programs, 32 KiB in flight per program: acq_rel ~ the
# barrier + the load, release_acquire ~ the larger of the two. Dense path, bfloat16 B = 1 (the
# engine's two programs per SM): 0.31-0.32 -> 0.26-0.29 ms/token with rel_acq, a little more
# with prefetch_ops on top; float32 B = 1 0.369 -> 0.32-0.35; float32 B = 8 (the tile order has
# no weight prefetch: only the polls' RMW and fence go) 0.530 -> 0.50-0.53.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s31c1
source experiments/device_calls/gpu_common.sh
run_logged 60 python3 experiments/barrier_gpu.py --grids=132 --orders=acq_rel,release_acquire,none \
  --load_kb=0,32 --launches=16 --repeats=5 --out=$D/barrier.json
for i in 1 2; do  # two processes: bfloat16 B = 1 moves a few percent between processes
  run_logged 130 python3 experiments/dense_gpu.py --batches=1 --dtypes=bfloat16 \
    --phase1=fused_persistent --phase2= --python_chain= --budget_s=115 --repeats=20 \
    --variants=persistent:rel_acq,persistent:prefetch_ops,persistent:rel_acq+prefetch_ops,persistent:sm1,persistent:sm1+rel_acq \
    --check_variants --out=$D/dense_b1_bf16_$i.json
done
# SHORT=1: the parts above alone (~4 min), where the device time left is short.
[ -n "$SHORT" ] && { print_tracebacks; finish; exit; }
# order_tile+rel_acq: the tile order WITH the weight prefetch (for_batch turns it off at B = 8:
# its tiles spill, 288 bytes in ptxas, and the acq_rel polls drained it anyway).
run_logged 160 python3 experiments/dense_gpu.py --batches=8 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=145 --repeats=20 \
  --variants=persistent:rel_acq,persistent:prefetch_ops,persistent:rel_acq+prefetch_ops,persistent:order_tile+rel_acq \
  --check_variants --out=$D/dense_b8.json
run_logged 100 python3 experiments/dense_gpu.py --batches=1 --dtypes=float32 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=85 --repeats=20 \
  --variants=persistent:rel_acq,persistent:rel_acq+prefetch_ops --check_variants \
  --out=$D/dense_b1_f32.json
# B = 2 polls instead of barriers (data_l1, DATA_SYNC_BATCHES: it beat acq_rel barriers in
# session 12); does it still beat release_acquire ones? (Last: cut first if time runs out.)
run_logged 80 python3 experiments/dense_gpu.py --batches=2 --dtypes=float32,bfloat16 \
  --phase1=fused_persistent --phase2= --python_chain= --budget_s=70 --repeats=20 \
  --variants=persistent:barrier,persistent:barrier+rel_acq --check_variants \
  --out=$D/dense_b2.json
print_tracebacks
finish
