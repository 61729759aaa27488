"""Figure 7: per-token latency along one generation.

Flash runs the whole generation once, waiting for every compiled block (and its block-boundary
tile) before issuing the next, so each block's wall time divided by its steps is the per-token
latency there; the blocks that end in a large tile show up as spikes. Lazy and eager (whose
per-step cost grows resp. shrinks with t) are timed at sampled windows of their reference plans
(common.reference), placed at the position t where a generation of length L uses that window.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from experiments import common

DEFAULTS = {
    "gpu": dict(batch=1, length=2**16, variant="hybrid", repeats=3, max_keys=6),
    "cpu": dict(batch=1, length=64, variant="hybrid", repeats=2, max_keys=3),
}


def run(size: str, outdir: str, name: str = "latency", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  opts.setdefault("ref_max", common.REF_MAX[size])
  cfg = common.model_config(size, **opts.pop("model", {}))
  gen = common.generator(cfg)
  batch, length = opts["batch"], opts["length"]
  records = []
  for method, variant in (("lazy", None), ("eager", None), ("flash", opts["variant"])):
    rec = {"method": method, "label": common.method_label(method, variant), "length": length,
           "batch": batch}
    ref = common.reference(gen, method, variant, batch, "all",
                           ref_max=max(opts["ref_max"], length), repeats=opts["repeats"],
                           max_keys=opts["max_keys"], min_seconds=0.01)
    if isinstance(ref, str) or ref.plan.stop < length:
      records.append({**rec, "skipped": ref if isinstance(ref, str) else "does not fit"})
      continue
    # Lazy's step at t reads a window ~t; eager's step at t writes one ~L - t.
    keys = [t for t in ref.timings if t.window <= length]
    rec.update(warmup_s=ref.warmup_s, reference_length=ref.plan.stop,
               windows=[t.window for t in keys], per_step_s=[t.per_step_s for t in keys],
               positions=[t.first if method == "lazy" else length - t.window for t in keys])
    if method == "flash":  # the whole generation, waiting for every block
      blocks = ref.blocks(length)
      block_s = np.array(common.run_blocks_synced(gen, ref.plan, ref.consts, batch, blocks))
      rec.update(block_first=[b.first for b in blocks], block_steps=[b.num_steps for b in blocks],
                 block_last_level=[b.levels[-1] for b in blocks],
                 block_seconds=block_s.tolist(), total_s=float(block_s.sum()))
      per_step = block_s / np.array(rec["block_steps"])
      rec["summary"] = {"median_ms": 1e3 * statistics.median(per_step),
                        "p99_ms": 1e3 * float(np.percentile(per_step, 99)),
                        "max_ms": 1e3 * float(per_step.max())}
      common.log(name, f"flash per-token latency: median {rec['summary']['median_ms']:.3f} ms, "
                 f"p99 {rec['summary']['p99_ms']:.3f} ms, max {rec['summary']['max_ms']:.3f} ms")
    else:
      common.log(name, f"{method}: per-step " + ", ".join(
          f"t~{p}:{s * 1e3:.3f}ms" for p, s in zip(rec["positions"], rec["per_step_s"])))
    records.append(rec)
    del ref
  config = {"model": cfg.to_dict(), **common.engine_config(gen, opts["batch"]), **opts}
  data = common.payload(name, size, config, records, started)
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
  for rec in data["records"]:
    if "skipped" in rec:
      continue
    style = common.line_style(rec["label"])
    if rec["method"] == "flash":
      first = np.array(rec["block_first"]) + np.array(rec["block_steps"]) / 2
      per_step = 1e3 * np.array(rec["block_seconds"]) / np.array(rec["block_steps"])
      levels = np.array(rec["block_last_level"])
      sc = ax.scatter(first, per_step, c=levels, s=4, cmap="viridis",
                      label=f"{rec['label']} (each block; colour: last tile level)")
      fig.colorbar(sc, ax=ax, label="tile level at the block's last step")
    else:
      pts = sorted(zip(rec["positions"], rec["per_step_s"]))
      ax.plot([p[0] for p in pts], [1e3 * p[1] for p in pts], label=f"{rec['label']} (sampled)",
              **style)
  ax.set_yscale("log")
  ax.set_xlabel("position t")
  ax.set_ylabel("ms per token")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  cfg = data["config"]
  fig.suptitle(f"Per-token latency along a generation, L={cfg['length']}, B={cfg['batch']}\n"
               f"{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
