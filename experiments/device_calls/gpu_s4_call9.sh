# Session 4, device call 9 (1 x H200): call 8 found the B = 8 dense path device-bound (busy 559
# of ~600 us/token) in XLA's Triton GEMM fusions, which stream the layer weights at ~1.4 TB/s
# (in_proj 6.6 us for 9 MB). Does cuBLAS do better on these M = 8 products? The dense path traced
# with XLA's Triton GEMMs off, then flash end to end at B = 8, L = 2^10 (full runs) with and
# without them.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c9
source experiments/device_calls/gpu_common.sh
XLA_FLAGS=--xla_gpu_enable_triton_gemm=false run_logged 150 python3 experiments/trace_gpu.py --batch=8 --position=16384 --parts=dense --steps=32 --repeats=2 --top=12 --out=$D/trace_b8_cublas.json
XLA_FLAGS=--xla_gpu_enable_triton_gemm=false one cublas e2e_b8 120 ", methods=('flash',), lengths=(2**10,), budget_s=100"
one triton e2e_b8 120 ", methods=('flash',), lengths=(2**10,), budget_s=100"
finish
