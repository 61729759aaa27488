"""Figure 9: the tiles of all layers in one batched call vs layer by layer ("NP").

For every tile level of a generation of length L, the tau the hybrid picks for that level runs
(a) once on the (M, B, D, U) segment of all layers, as the engine does, and (b) per layer in a
Python loop over M inside one jitted function. The total tile time of the schedule is the sum
over levels of (number of level-q tiles) x (time of one). Timing as in tau_levels.
"""

from __future__ import annotations

import collections
import time

import jax.numpy as jnp

from experiments import common, tau_levels
from flash_lcsm_jax.engine import schedule
from flash_lcsm_jax.ops import tau as tau_ops

DEFAULTS = {
    # Largest tile of a 2^17 generation: 2^16. B=8 stops at 2^14 so the segments stay small.
    "gpu": dict(points=((1, 2**17), (8, 2**14)), min_level=0, repeats=5, chain=16,
                budget_s=480.0),
    "cpu": dict(points=((1, 64), (2, 32)), min_level=0, repeats=3, chain=2, budget_s=None),
}


def per_layer(impl, filters, q):
  """apply() layer by layer: constants prepared per layer, segments sliced per layer."""
  consts = [impl.prepare(filters[m:m + 1], q) for m in range(filters.shape[0])]

  def apply(cs, seg):
    return jnp.concatenate([impl.apply(c, seg[m:m + 1]) for m, c in enumerate(cs)], axis=0)

  return apply, consts


def tile_counts(length: int) -> dict[int, int]:
  """Number of gray tiles of each level in a generation of `length` positions from 0."""
  levels = [q for b in schedule.flash_blocks(0, length, common.BLOCK_SIZE) for q in b.levels]
  return dict(collections.Counter(q for q in levels if q != schedule.NO_TILE))


def run(size: str, outdir: str, name: str = "layer_batching", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  cfg = common.model_config(size, **opts.pop("model", {}))
  gen = common.generator(cfg)
  records, totals = common.Progress(outdir, name, size, started), []
  records.config = {"model": cfg.to_dict(), **opts}
  budget = common.Budget(opts["budget_s"])
  for batch, length in opts["points"]:
    counts = tile_counts(length)
    levels = [q for q in sorted(counts) if q >= opts["min_level"]]
    # Level by level, both variants at each: a budget cut leaves comparable pairs.
    for q in levels:
      for variant, fn in (("batched", None), ("per_layer", per_layer)):
        tau = tau_ops.resolve("hybrid", q)
        # The per-layer function already holds M applies per chain link.
        chain = (lambda q: tau_levels.chain_length(q, opts["chain"])) if fn is None else \
            (lambda q: 2)
        rec = tau_levels.time_levels(gen, batch, [q], [tau], opts["repeats"], apply_fn=fn,
                                     chain=chain, budget=budget)[0]
        rec.update(variant=variant, length=length, count=counts[q])
        common.log(name, f"B={batch} L={length} q={q:2d} {variant:9s} {tau:7s} " + (
            f"{rec['seconds'] * 1e6:10.1f} us x {counts[q]}" if "seconds" in rec
            else rec.get("skipped", rec.get("error"))))
        records.append(rec)
    for variant in ("batched", "per_layer"):
      mine = [r for r in records if r["variant"] == variant and r["batch"] == batch
              and r["length"] == length]
      complete = all("seconds" in r for r in mine)
      totals.append({"variant": variant, "batch": batch, "length": length,
                     "complete": complete,
                     "total_s": sum(r["seconds"] * r["count"] for r in mine if "seconds" in r)})
    ratio = totals[-1]["total_s"] / max(totals[-2]["total_s"], 1e-12)
    common.log(name, f"B={batch} L={length}: per-layer / batched total tile time = {ratio:.2f}")
  data = common.payload(name, size, records.config, records, started,
                        totals=totals)
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  records = data["records"]
  points = [tuple(p) for p in data["config"]["points"]]
  fig, axes = plt.subplots(1, len(points) + 1, figsize=(5.5 * (len(points) + 1), 4.5),
                           layout="constrained")
  for ax, (batch, length) in zip(axes, points):
    for variant, style in (("batched", "o-"), ("per_layer", "s--")):
      pts = sorted((r["U"], r["seconds"] * r["count"]) for r in records if r["variant"] == variant
                   and r["batch"] == batch and r["length"] == length and "seconds" in r)
      if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, markersize=4,
                label=f"{variant}")
    common.log_axes(ax, "tile size U", "seconds in all tiles of this size",
                    f"B={batch}, L={length}")
    ax.legend(fontsize=8)
  ax = axes[-1]
  def measured_levels(t):  # a budget may have cut the schedule short: say which levels count
    qs = sorted(r["level"] for r in records if r["variant"] == t["variant"] and "seconds" in r
                and r["batch"] == t["batch"] and r["length"] == t["length"])
    return "" if t["complete"] or not qs else f"\n(levels {qs[0]}-{qs[-1]} only)"

  labels = [f"B={t['batch']}\nL={t['length']}" + measured_levels(t) for t in data["totals"][::2]]
  x = range(len(labels))
  for k, variant in enumerate(("batched", "per_layer")):
    vals = [t["total_s"] for t in data["totals"] if t["variant"] == variant]
    ax.bar([i + 0.4 * k for i in x], vals, width=0.4, label=variant)
  ax.set_xticks([i + 0.2 for i in x], labels)
  ax.set_ylabel("total tile seconds over the schedule")
  ax.legend(fontsize=8)
  fig.suptitle(f"Tiles of all M={data['config']['model']['n_layers']} layers in one call vs "
               f"layer by layer (hybrid's tau per level)\n{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
