"""Figure 4: tau ablation by tile size.

For every tile level q (U = 2^q) of a generation and every tau that supports it, the time of
tau.apply on an (M, B, D, U) segment of all layers at once, with the model's own filters. Each
call is timed inside a chain of dependent calls in one jitted function (common.time_chain), so
launch overhead is amortised as it is inside the engine's compiled blocks. The JSON also
records, per level, the fastest tau and the default hybrid's choice.
"""

from __future__ import annotations

import os
import time

import jax

from experiments import common
from flash_lcsm_jax import validation
from flash_lcsm_jax.ops import tau as tau_ops

DEFAULTS = {
    "gpu": dict(batches=(1, 8), min_level=0, max_level=16, repeats=5, chain=16, budget_s=480.0),
    "cpu": dict(batches=(1,), min_level=0, max_level=3, repeats=3, chain=2, budget_s=None),
}


def chain_length(level: int, longest: int = 16) -> int:
  """Dependent calls per timed jitted call: many for the small tiles (launch-bound)."""
  return max(1, min(longest, 16 if level <= 8 else 4 if level <= 12 else 2))


def segment_fits(cfg, batch: int, level: int) -> str | None:
  """FFT intermediates hold several complex copies of the segment: keep a wide margin."""
  seg = 4 * cfg.n_layers * batch * cfg.d_model * (1 << level)
  limit = validation.device_memory_limit()
  if limit is not None and 12 * seg > 0.8 * limit:
    return f"segment of {seg / 2**30:.1f} GiB: tau intermediates would not fit"
  return None


def time_levels(gen, batch: int, levels, taus, repeats: int, apply_fn=None,
                chain=chain_length, budget=None, on_record=None) -> list[dict]:
  """Per (level, tau): seconds of one tile of all layers. apply_fn(impl, filters, q) -> (fn,
  consts) may replace the batched apply (layer_batching uses it for the per-layer loop);
  chain(q): dependent calls per timed jitted call; on_record(rec) is called with each record."""
  cfg = gen.cfg
  filters = gen.filters(2 << max(levels))
  key = jax.random.PRNGKey(1)
  records = []
  for q in levels:
    U = 1 << q
    reason = segment_fits(cfg, batch, q)
    seg = None if reason else jax.random.normal(key, (cfg.n_layers, batch, cfg.d_model, U))
    for name in taus:
      impl = tau_ops.get(name)
      if q > impl.max_level:
        continue
      rec = {"tau": name, "level": q, "U": U, "batch": batch}
      late = budget.spent() if budget else None
      if reason or late:
        records.append({**rec, "skipped": reason or late})
        if on_record:
          on_record(records[-1])
        continue
      try:
        fn, consts = (impl.apply, impl.prepare(filters, q)) if apply_fn is None else \
            apply_fn(impl, filters, q)
        rec["seconds"] = common.time_chain(fn, consts, seg, chain(q), repeats)
        rec["chain"] = chain(q)
      except Exception as err:  # out of memory at the largest tiles: keep the rest
        rec["error"] = f"{type(err).__name__}: {str(err)[:300]}"
      records.append(rec)
      if on_record:
        on_record(rec)
    del seg
  return records


def summary(records: list[dict], levels) -> list[dict]:
  out = []
  for q in levels:
    here = [r for r in records if r["level"] == q and "seconds" in r]
    if here:
      best = min(here, key=lambda r: r["seconds"])
      out.append({"level": q, "batch": here[0]["batch"], "fastest": best["tau"],
                  "fastest_s": best["seconds"], "default_hybrid": tau_ops.resolve("hybrid", q)})
  return out


def run(size: str, outdir: str, name: str = "tau_levels", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  cfg = common.model_config(size, **opts.pop("model", {}))
  gen = common.generator(cfg)
  levels = list(range(opts["min_level"], opts["max_level"] + 1))
  taus = list(opts.pop("taus", None) or tau_ops.names())  # a subset fills in missing points
  records, fastest = [], []
  progress = common.Progress(outdir, name, size, started)  # partial JSON while it runs
  progress.config = {"model": cfg.to_dict(), "taus": taus, **opts}
  budget = common.Budget(opts["budget_s"])
  for batch in opts["batches"]:
    recs = time_levels(gen, batch, levels, taus, opts["repeats"],
                       chain=lambda q: chain_length(q, opts["chain"]), budget=budget,
                       on_record=progress.append)
    for r in recs:
      common.log(name, f"B={batch} q={r['level']:2d} {r['tau']:8s} " + (
          f"{r['seconds'] * 1e6:10.1f} us" if "seconds" in r else r.get("skipped", r.get("error"))))
    records += recs
    fastest += summary(recs, levels)
  kernels = os.path.join(outdir, "kernels.json")  # experiments/kernels_gpu.py, if it ran
  data = common.payload(name, size, progress.config, records,
                        started, fastest_by_level=fastest,
                        kernels_gpu_json=kernels if os.path.exists(kernels) else None)
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  records = data["records"]
  batches = data["config"]["batches"]
  fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4.5), squeeze=False,
                           layout="constrained")
  for ax, batch in zip(axes[0], batches):
    for name in data["config"]["taus"]:
      pts = sorted((r["U"], r["seconds"]) for r in records
                   if r["tau"] == name and r["batch"] == batch and "seconds" in r)
      if pts:
        ax.plot([p[0] for p in pts], [p[1] * 1e6 for p in pts], marker="o", markersize=4,
                label=name)
    best = [s for s in data["fastest_by_level"] if s["batch"] == batch]
    ax.plot([1 << s["level"] for s in best], [s["fastest_s"] * 1e6 for s in best], "k:",
            linewidth=1, label="fastest")
    common.log_axes(ax, "tile size U", "microseconds per tile (all layers)", f"B={batch}")
    ax.legend(fontsize=8)
  model = data["config"]["model"]
  fig.suptitle(f"tau by tile size: one tile of all M={model['n_layers']} layers, "
               f"D={model['d_model']}\n{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
