# Session 3, device call 9 (1 x H100): block configs of the in-place Pallas tile at U = 1, 2, 4.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. || exit 1
mkdir -p /tmp/res9
timeout 140 python3 experiments/inplace_blocks_gpu.py --out=/tmp/res9/inplace_blocks.json 2>&1 | grep -vE "^[IW][0-9]" | tail -20
cp /tmp/res9/inplace_blocks.json $OUT/ 2>/dev/null
