"""Summarise an ncu --csv dump: kernels per block, time by kernel name."""
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr = rows[0]; rows = rows[1:]
ki, vi = hdr.index("Kernel Name"), hdr.index("Metric Value")
tot = collections.defaultdict(lambda: [0, 0.0])
for r in rows:
  try: v = float(r[vi].replace(",", ""))
  except ValueError: continue
  t = tot[r[ki][:70]]; t[0] += 1; t[1] += v
n = sum(c for c, _ in tot.values()); s = sum(v for _, v in tot.values())
print(f"{sys.argv[1]}: {n} kernels, {s/1e3:.1f} us total (ns->us), per step (8): {n/8:.1f} kernels {s/8e3:.1f} us")
for k, (c, v) in sorted(tot.items(), key=lambda kv: -kv[1][1])[:14]:
  print(f"  {c:5d} x {v/c/1e3:8.2f} us = {v/1e3:9.1f} us  {k}")
