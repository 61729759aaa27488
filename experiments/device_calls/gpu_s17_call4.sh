# Session 17, device call 4 (H100).
# (1) Where flash's error at B > 1 comes from (experiments/batch_error_gpu.py): call 3 measured
#     flash/hybrid 7.5e-5 at L = 4096, P = 777, B = 8 against lazy / eager 4.6e-6 (same
#     sequences); B = 1 gave 4.6e-6 (session 7), B = 2 2.8-3.4e-5 with either dense path
#     (session 12); on the CPU flash and lazy agree at every B. Prediction: the error follows
#     one family of tiles: if device_row0 is ~5e-6 and xla_small is ~5e-6, it is the Pallas or
#     the dot levels at B > 1 (no_pallas / no_dot say which); if fft is also high, the FFT levels.
# (2) call 3's online-convolution comparison again (its "before" tree lacked configs/):
#     before / after / before / after, fresh processes. Prediction: after ~7.6 us/token (call 3:
#     7.6, 7.6), before ~8.1-8.5.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
D=/tmp/res_s17c4
source experiments/device_calls/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> $LOG
run_logged 330 python3 experiments/batch_error_gpu.py --out=$D/batch_error.json
HERE=$PWD
mkdir -p /tmp/before && cp -r flash_lcsm_jax experiments configs /tmp/before/ && \
  (cd /tmp/before && patch -s -R -p1 < experiments/device_calls/s17_offsets.patch) || exit 1
for run in before_a after_a before_b after_b; do
  if [[ $run == before* ]]; then cd /tmp/before; else cd $HERE; fi
  one online/$run online_conv 70 ""
done
cd $HERE
finish
