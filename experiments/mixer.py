"""Figure 3: time inside the long convolutions vs L (the paper's "110x" figure).

The sweep of e2e.py with part="mixer": each step runs only the long convolutions as an online
convolution (its next input depends on its last output, so nothing is hoisted). For lazy it also
reports the achieved bandwidth of its history read (history + filter window bytes per step over
the measured step time) against the device's stream bandwidth.
"""

from __future__ import annotations

import time

from experiments import common, e2e


def run(size: str, outdir: str, name: str = "mixer", **overrides) -> dict:
  started = time.perf_counter()
  progress = common.Progress(outdir, name, size, started)
  config, records = e2e.sweep(name, size, "mixer", progress, **overrides)
  lazy = [k for r in records if r["method"] == "lazy" and common.ok(r) for k in r["keys"]]
  best = max((k["history_read_GBps"] for k in lazy), default=None)
  data = common.payload(name, size, config, records, started,
                        integration_checks=common.integration_checks(records),
                        lazy_best_history_read_GBps=best)
  if best is not None:
    common.log(name, f"lazy history read: best {best:.1f} GB/s, stream bandwidth "
               f"{data['environment']['copy_bandwidth_GBps']:.1f} GB/s")
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  records = data["records"]
  fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), layout="constrained")
  e2e.plot_lines(axes[0], records, lambda r: r["seconds"], "seconds in the long convolutions")
  axes[0].legend(fontsize=8)
  e2e.plot_speedup(axes[1], records)
  ax = axes[2]
  for r in records:
    if r["method"] == "lazy" and common.ok(r):
      keys = sorted(r["keys"], key=lambda k: k["window"])
      ax.plot([k["window"] for k in keys], [k["history_read_GBps"] for k in keys], marker="o",
              markersize=3, label=f"lazy, L={r['length']}")
  ax.axhline(data["environment"]["copy_bandwidth_GBps"], color="k", linestyle="--",
             label="stream bandwidth (read+write)")
  common.log_axes(ax, "history window (positions)", "lazy history + filter read, GB/s",
                  ylog=False)
  ax.legend(fontsize=7)
  fig.suptitle(f"Long convolutions only (part='mixer'), B={data['config']['batch']} "
               f"(hollow: integrated)\n{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
