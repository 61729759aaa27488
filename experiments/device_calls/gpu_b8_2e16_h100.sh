# Prepared in session 18 and not run yet (that session had no device time). One H100, ~10 min.
# Session 18 made the largest flash tile run one layer at a time in place (mixers.gray_tile
# above tau.by_layer), removing ~33-49 GB of all-layer temporaries at B = 8, U = 2^15: the
# reason flash at B = 8, L = 2^16 did not fit an 80 GB card. validation.check_memory still
# estimates 80 GiB there (an autotuner copy of the buffer, seen for lazy, and the FFT spectra
# counted twice), so the memory check is skipped here and the device's peak is measured.
# 1. peak_memory at B = 8, L = 2^16 (each method's heaviest block in its own process; lazy and
#    eager are expected to fail or be refused; flash predicted to peak at ~45-55 GB).
# 2. flash end to end at B = 8, L = 2^16 (a full run, ~40 s after compiling), to set against
#    session 9's H200 lazy (8.9 ms/token with the old layout; ~5.3 estimated with today's).
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 FLASH_LCSM_SKIP_MEMORY_CHECK=1
D=/tmp/res_b8_2e16
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
one peak peak_memory 330 ", batches=(8,), lengths=(2**16,)"
one e2e e2e_b8 230 ", methods=('flash',), lengths=(2**16,), full_budget_s=90, budget_s=200"
finish
