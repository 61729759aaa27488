# Session 4, device call 2 (1 x H100): call 1 found the long convolutions' flash step host-bound
# (device busy ~5 us of a 43-59 us step, 3.4 kernels per step). Is XLA putting the block in
# command buffers (CUDA graphs)? The mixer alone at L = 2^16 under four XLA flag sets, with the
# host's own events (thunk execution, launches) and the HLO's command_buffer count.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c2
source experiments/device_calls/gpu_common.sh
T="python3 experiments/trace_gpu.py --parts=mixer --repeats=2"
run_logged 100 $T --out=$D/default.json
XLA_FLAGS=--xla_gpu_graph_min_graph_size=1 run_logged 100 $T --out=$D/min1.json
XLA_FLAGS=--xla_gpu_enable_command_buffer= run_logged 100 $T --out=$D/nocmd.json
XLA_FLAGS="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,DYNAMIC_SLICE_FUSION,WHILE,CONDITIONAL --xla_gpu_graph_min_graph_size=1" run_logged 100 $T --out=$D/allcmd.json
finish
