# Session 4, device call 8 (1 x H200): where flash's 0.62 ms/token goes at B = 8 (XLA dense path,
# layers unrolled: the engine's default at B = 8), kernel by kernel (at position 2^14: the traced
# states are made up front, and two at 2^16 do not fit next to each other): is anything
# besides the layers' matrix products and their launch count worth cutting?
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c8
source experiments/device_calls/gpu_common.sh
run_logged 400 python3 experiments/trace_gpu.py --batch=8 --position=16384 --parts=dense,all --steps=32 --repeats=2 --top=40 --out=$D/trace_b8.json
finish
