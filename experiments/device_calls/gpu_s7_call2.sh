# Session 7, device call 2 (H200): call 1's parity run with the persistent dense path hung (no
# output in 110 s at L = 4096). Where: small engine calls, each in its own process, stacks
# dumped every 20 s (experiments/persistent_diag_gpu.py).
export PYTHONUNBUFFERED=1
D=$OUT
for c in generate decode decode_highest; do
  echo "=== $c $(date +%T)"
  timeout 80 python3 experiments/persistent_diag_gpu.py --case=$c 2>&1 | grep -vE "^[IW][0-9]" | grep -v "^  File.*site-packages" | tail -40
done
