export PYTHONUNBUFFERED=1
P="python3 experiments/engine_probe.py --skip_verify --lazy_positions= --batches=1 --speed_lengths=2048 --block_size=8 --taus=hybrid --parts=mixer,dense"
F1="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,DYNAMIC_SLICE_FUSION,WHILE,CONDITIONAL --xla_gpu_graph_min_graph_size=1"
PYTHONPATH=. timeout 150 $P --unroll_layers=1,0 --out=$OUT/dense_default.json 2>&1 | grep speed
(XLA_FLAGS="$F1" PYTHONPATH=. timeout 150 $P --unroll_layers=1,0 --out=$OUT/dense_cmdbuf.json 2>&1 | grep -E "speed|rror") 
(XLA_FLAGS="--xla_gpu_enable_command_buffer=" PYTHONPATH=. timeout 100 $P --unroll_layers=0 --out=$OUT/dense_nocmdbuf.json 2>&1 | grep -E "speed|rror")
PYTHONPATH=. timeout 60 python3 experiments/_matvec_probe.py 2>&1 | grep -v "^[IW]1"
XLA_FLAGS="$F1" PYTHONPATH=. timeout 60 python3 experiments/_matvec_probe.py 2>&1 | grep chain
