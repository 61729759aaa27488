# Session 16, device call 6 (H100 or H200, whichever comes): call 4 on an H200 (B = 8 end to
# end at 2^16), else call 5 on an H100 (2^15). Predictions there.
MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
if [ "$MEM" -gt 100000 ]; then bash experiments/device_calls/gpu_s16_call4.sh
else bash experiments/device_calls/gpu_s16_call5.sh; fi
