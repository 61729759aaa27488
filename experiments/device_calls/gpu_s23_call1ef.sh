# Session 23, calls 1e and 1f (H200, needs_h200), as run on the warm machine after call 1d: flash
# at B = 8 with CUDA's stream-ordered pool instead of XLA's BFC pool, which had refused the 2^17
# buffer (calls 1c, 1d). 1e: 2^16 and 2^17 integrated (is the allocator's speed the same? the BFC
# pool's 2^16 integral in call 1 was 0.566 ms/token); 1f: 2^17 as one full run.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async
D=/tmp/res_s23c1e
source experiments/device_calls/gpu_common.sh
echo "allocator cuda_async" >> $LOG
one flash e2e_b8 150 ", methods=('flash',), lengths=(2**16, 2**17), ref_max=2**17, repeats=2, max_keys=4, check=False, full_budget_s=0, budget_s=140"
finish
# call 1f (a second device call): D=/tmp/res_s23c1f, then
# one flash e2e_b8 140 ", methods=('flash',), lengths=(2**17,), ref_max=2**17, repeats=1, max_keys=4, check=False, full_budget_s=85, budget_s=135"
