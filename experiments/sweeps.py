"""Figure 5: flash vs lazy at a fixed length while sweeping batch B, layers M or width D.

One program, three registry entries (sweep_batch, sweep_layers, sweep_width). The base model
uses the shared reference plans (common.REF_MAX); every other model or batch compiles plans of
the sweep's length only. Lazy is integrated from block timings where a full run would not fit
the point's time budget (marked in the JSON).
"""

from __future__ import annotations

import time

from experiments import common

AXES = ("batch", "layers", "width")
DEFAULTS = {
    # L = 2^13 keeps B = 64 inside an H100 (the buffer is 4 M B D L bytes: 33 GB there).
    "gpu": dict(length=2**13, batch=1, values={"batch": (1, 8, 64), "layers": (6, 18, 36),
                                               "width": (432, 864, 1728)},
                repeats=3, full_budget_s=15.0, max_keys=6, budget_s=480.0),
    "cpu": dict(length=64, batch=1, values={"batch": (1, 4), "layers": (1, 2),
                                            "width": (8, 16)},
                repeats=2, full_budget_s=3.0, max_keys=3, budget_s=None),
}
ENTRIES = (("lazy", None), ("flash", "hybrid"))


def _model_for(axis: str, value: int) -> dict:
  if axis == "layers":
    return {"n_layers": value}
  if axis == "width":
    return {"d_model": value, "d_inner": 2 * value}
  return {}


def run(size: str, outdir: str, name: str = "sweep", axis: str = "batch", **overrides) -> dict:
  if axis not in AXES:
    raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  values = opts["values"][axis] if isinstance(opts["values"], dict) else opts["values"]
  base = opts.pop("model", {})
  base_cfg = common.model_config(size, **base)
  records = common.Progress(outdir, name, size, started)
  records.config = {"model": base_cfg.to_dict(), "axis": axis, "values": values,
                    "unroll_layers": common.unroll_layers(),
                    "dense_path": common.dense_path(),
                    **{k: v for k, v in opts.items() if k != "values"}}
  budget = common.Budget(opts["budget_s"])
  for value in values:
    if budget.spent():
      records += [{"label": common.method_label(m, v), "method": m, "axis": axis, "value": value,
                   "length": opts["length"], "batch": opts["batch"], "skipped": budget.spent()}
                  for m, v in ENTRIES]
      continue
    cfg = common.model_config(size, **{**base, **_model_for(axis, value)})
    gen = common.generator(cfg)
    batch = value if axis == "batch" else opts["batch"]
    # The base model shares the other experiments' reference plans (and compiled executables);
    # other models compile only what this length needs.
    ref_max = opts.get("ref_max", common.REF_MAX[size]) if cfg == base_cfg else opts["length"]
    for method, variant in ENTRIES:
      rec, = common.sweep_lengths(gen, method, variant, [opts["length"]], batch, "all",
                                  ref_max=ref_max, repeats=opts["repeats"],
                                  full_budget_s=opts["full_budget_s"],
                                  max_keys=opts["max_keys"], check=False)
      rec.update(axis=axis, value=value, n_layers=cfg.n_layers, d_model=cfg.d_model)
      common.log(name, f"{axis}={value}: " + common.describe(rec))
      records.append(rec)
    del gen
  data = common.payload(name, size, records.config, records, started,
                        integration_checks=common.integration_checks(records))
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  axis = data["config"]["axis"]
  recs = [r for r in data["records"] if common.ok(r)]
  fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
  for label in dict.fromkeys(r["label"] for r in recs):
    pts = sorted((r["value"], r["per_token_s"] * 1e3, r["integrated"]) for r in recs
                 if r["label"] == label)
    style = common.line_style(label)
    ax0.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
    hollow = [p for p in pts if p[2]]
    if hollow:
      ax0.plot([p[0] for p in hollow], [p[1] for p in hollow], "o", markersize=8,
               markerfacecolor="white", markeredgecolor=style["color"] or "k")
  lazy = {r["value"]: r["seconds"] for r in recs if r["method"] == "lazy"}
  speed = sorted((r["value"], lazy[r["value"]] / r["seconds"]) for r in recs
                 if r["method"] == "flash" and r["value"] in lazy)
  if speed:
    ax1.plot([p[0] for p in speed], [p[1] for p in speed], **common.line_style("flash/hybrid"))
  names = {"batch": "batch B", "layers": "layers M", "width": "width D"}
  for ax in (ax0, ax1):
    common.log_axes(ax, names[axis], ylog=False)
  ax0.set_yscale("log")
  ax0.set_ylabel("ms per step (mean over the generation)")
  ax0.legend(fontsize=8)
  ax1.set_ylabel("flash speed-up over lazy")
  fig.suptitle(f"Sweep over {names[axis]} at L={data['config']['length']} (hollow: integrated)"
               f"\n{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
