"""Figure 2: end-to-end generation time vs length L, lazy / eager / flash (each tau, hybrid).

Every (method, L) point generates L positions from position 0 with the whole model (part "all")
and is timed side by side in one process. Quadratic methods at large L are integrated from
per-block timings (see common); the JSON marks each point "integrated" and records the
integral's relative difference to a full run wherever both were measured.
`mixer.py` runs the same sweep with part="mixer" (figure 3).

GPU time (H100, paper model): see registry.py; dominated by compilation (one executable per
distinct block and length) and by the flash runs at the largest L.
"""

from __future__ import annotations

import time

from experiments import common

DEFAULTS = {
    "gpu": dict(batch=1, lengths=(2**10, 2**12, 2**14, 2**16, 2**17),
                methods=("lazy", "eager", "flash"), variants=("hybrid",), repeats=3,
                full_budget_s=20.0, max_keys=6, budget_s=510.0, check=True),
    "cpu": dict(batch=1, lengths=(32, 64), methods=("lazy", "eager", "flash"),
                variants=("hybrid",), repeats=2, full_budget_s=3.0, max_keys=3, budget_s=None,
                check=True),
}
# check: run each method's shortest length in full even over full_budget_s, so its integral is
# checked against a full run (common.sweep_lengths). Turn it off for a single long length whose
# full run would not fit the call (lazy at B = 8, L = 2^16: ~8 minutes on an H100).


def entries(methods, variants) -> list[tuple[str, str | None]]:
  out = []
  for method in methods:
    out += [(method, v) for v in variants] if method == "flash" else [(method, None)]
  return out


def sweep(name: str, size: str, part: str, records: list | None = None,
          **overrides) -> tuple[dict, list[dict]]:
  """Measures every (length, method) of the config; returns (config, records). records: the
  list to append to (a common.Progress writes partial JSON as it goes)."""
  opts = {**DEFAULTS[size], **overrides}
  if opts["variants"] == "all":
    opts["variants"] = tuple(common.flash_variants())
  cfg = common.model_config(size, **opts.pop("model", {}))
  # block_size: an experiment's own (e.g. mixer_b1 on the GPU), else FLASH_LCSM_BLOCK or 16.
  gen = common.generator(cfg, block_size=opts.pop("block_size", None))
  ref_max = opts.setdefault("ref_max", common.REF_MAX[size])
  budget = common.Budget(opts["budget_s"])
  config = {"model": cfg.to_dict(), "part": part, "block_size": gen.block_size,
            **common.engine_config(gen, opts["batch"]), "start_position": 0, **opts}
  records = [] if records is None else records
  if isinstance(records, common.Progress):
    records.config = config
  for method, variant in entries(opts["methods"], opts["variants"]):
    if budget.spent():
      records += [{"method": method, "variant": variant, "batch": opts["batch"], "part": part,
                   "label": common.method_label(method, variant), "length": L,
                   "skipped": budget.spent()} for L in opts["lengths"]]
      continue
    for rec in common.sweep_lengths(gen, method, variant, opts["lengths"], opts["batch"], part,
                                    ref_max=ref_max, repeats=opts["repeats"],
                                    full_budget_s=opts["full_budget_s"],
                                    max_keys=opts["max_keys"], check=opts["check"]):
      common.log(name, common.describe(rec))
      records.append(rec)
  return config, records


def run(size: str, outdir: str, name: str = "e2e", **overrides) -> dict:
  started = time.perf_counter()
  progress = common.Progress(outdir, name, size, started)
  config, records = sweep(name, size, "all", progress, **overrides)
  data = common.payload(name, size, config, records, started,
                        integration_checks=common.integration_checks(records))
  common.write_json(outdir, name, data)
  return data


def plot_lines(ax, records: list[dict], value, ylabel: str):
  """One log-log line per method label; hollow markers where the point was integrated."""
  for label in dict.fromkeys(r["label"] for r in records):
    pts = sorted((r["length"], value(r), r["integrated"]) for r in records
                 if r["label"] == label and common.ok(r))
    if not pts:
      continue
    style = common.line_style(label)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
    hollow = [p for p in pts if p[2]]
    if hollow:
      ax.plot([p[0] for p in hollow], [p[1] for p in hollow], linestyle="none", marker="o",
              markersize=8, markerfacecolor="white", markeredgecolor=style["color"] or "k")
  common.log_axes(ax, "generated length L", ylabel)


def plot_speedup(ax, records: list[dict]):
  """Speed-up of every label over lazy (over flash/fft where lazy did not run)."""
  labels = {r["label"] for r in records if common.ok(r)}
  baseline = next((b for b in ("lazy", "flash/fft") if b in labels), None)
  base = {r["length"]: r["seconds"] for r in records if r["label"] == baseline and common.ok(r)}
  for label in dict.fromkeys(r["label"] for r in records):
    if label == baseline:
      continue
    pts = sorted((r["length"], base[r["length"]] / r["seconds"]) for r in records
                 if r["label"] == label and common.ok(r) and r["length"] in base)
    if pts:
      ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **common.line_style(label))
      ax.annotate(f"{pts[-1][1]:.1f}x", pts[-1], textcoords="offset points", xytext=(4, 0),
                  fontsize=8)
  ax.axhline(1.0, color="k", linewidth=0.8)
  common.log_axes(ax, "generated length L", f"speed-up over {baseline}")


def plot(data: dict, path: str, title: str = "End-to-end generation time"):
  plt = common.pyplot()
  records = data["records"]
  fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
  plot_lines(ax0, records, lambda r: r["seconds"], "seconds (whole generation)")
  ax0.legend(fontsize=8)
  plot_speedup(ax1, records)
  batch = data["config"]["batch"]
  fig.suptitle(f"{title}, B={batch} (hollow: integrated from block timings)\n"
               f"{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
