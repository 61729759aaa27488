# Session 4, device call 5 (1 x H100): the online convolution (long convolutions alone, 18 x 864
# channels, L = 2^16, B = 1) in fresh processes, flash only: blocks of 64 twice (process to
# process spread; call 3 gave 9.7 us/token, call 4 after lazy / eager in one process 15), 128 and
# 256; blocks of 64 with XLA's command buffers off, and with every command type on and graphs of
# any size (are the Triton kernels inside CUDA graphs?), plus the optimized HLO's command_buffer
# count from an XLA dump. Then flash end to end at B = 1, L = 2^17 (one full run, blocks of 16):
# the headline with the fused step kernel.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s4c5
source experiments/device_calls/gpu_common.sh
M=", lengths=(2**16,), methods=('flash',), variants=('hybrid',), budget_s=50"
FLASH_LCSM_BLOCK=64 one b64a mixer_b1 70 "$M"
FLASH_LCSM_BLOCK=64 one b64b mixer_b1 70 "$M"
FLASH_LCSM_BLOCK=128 one b128 mixer_b1 70 "$M"
FLASH_LCSM_BLOCK=256 one b256 mixer_b1 90 "$M"
XLA_FLAGS=--xla_gpu_enable_command_buffer= FLASH_LCSM_BLOCK=64 one b64_nocmd mixer_b1 70 "$M"
XLA_FLAGS="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,DYNAMIC_SLICE_FUSION --xla_gpu_graph_min_graph_size=1" FLASH_LCSM_BLOCK=64 one b64_allcmd mixer_b1 70 "$M"
mkdir -p /tmp/dump
XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_module_re=.*run_block.*" run_logged 60 python3 experiments/trace_gpu.py --parts=mixer --repeats=1 --out=$D/trace_dump.json
( cd /tmp/dump && for f in *after_optimizations.txt; do echo "$f: command_buffer $(grep -c command_buffer $f), custom-call $(grep -c custom-call $f), fusion $(grep -c ' fusion(' $f)"; done ) >> $LOG 2>&1
FLASH_LCSM_BLOCK=16 one e2ef e2e_b1 170 ", methods=('flash',), lengths=(2**10, 2**17), full_budget_s=110, budget_s=160"
finish
