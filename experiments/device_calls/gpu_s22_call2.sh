# Session 22, call 2 (H100, ran right after call 1 on the warm machine, 143 s): the B = 8 lazy
# and eager curves on today's engine, each in its own process, WITHOUT XLA_FLAGS (the engine
# compiles their blocks untuned by itself where the autotuner's buffer copy would not fit: the
# reference plan is 2^16 here, so every record says untuned_blocks). Run as one command line;
# kept here as a script.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s22c2
source experiments/device_calls/gpu_common.sh
one lazy e2e_b8 130 ", methods=('lazy',), lengths=(2**10, 2**12, 2**14, 2**16, 2**17), ref_max=2**17, repeats=2, max_keys=4, full_budget_s=10, budget_s=120"
one eager e2e_b8 100 ", methods=('eager',), lengths=(2**10, 2**12, 2**14, 2**16), ref_max=2**16, repeats=2, max_keys=4, full_budget_s=10, budget_s=90"
finish
