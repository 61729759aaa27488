# Session 23, call 1d (H200, needs_h200): flash at B = 8, 2^16 and 2^17 again. In call 1c the
# 2^17 reference plan failed to allocate its 60.75 GiB buffer (one jnp.zeros) in a 128 GiB pool
# holding ~24 GiB (filters, spectra): the BFC pool was fragmented by the spectra's temporaries.
# Without preallocation the pool grows by regions on demand, so the buffer gets a region of its own.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 XLA_PYTHON_CLIENT_PREALLOCATE=false
D=/tmp/res_s23c1d
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one flash e2e_b8 200 ", methods=('flash',), lengths=(2**16, 2**17), ref_max=2**17, repeats=2, max_keys=4, check=False, full_budget_s=40, budget_s=190"
finish
