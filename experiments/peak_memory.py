"""Figure 8: peak device memory vs L, measured and estimated, per method.

Each point is a fresh process (device peak statistics cannot be reset): it builds the model,
starts a generation through the library (Generator.start from position 0: engine constants,
filters, and the buffer as init_buffer builds it), runs the long convolutions of the plan's
heaviest block (largest tile or window; part="mixer": the rest of a step holds only (B, D)-sized
values, and compiling the whole model's block would cost a minute per point), and reports the
device's peak_bytes_in_use next to validation.estimate_generation_bytes. On devices without
memory statistics (CPU) the points run in this process and the peak is null. The parent never
touches the device itself, so the children get all of its memory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

from experiments import common

DEFAULTS = {
    "gpu": dict(batches=(1,), lengths=(2**10, 2**13, 2**16, 2**17), variant="hybrid",
                isolate=True, timeout_s=240),
    "cpu": dict(batches=(1,), lengths=(32, 64), variant="hybrid", isolate=False,
                timeout_s=120),
}
METHODS = ("lazy", "eager", "flash")
_MARK = "PEAK_MEMORY_RESULT "


def point(size: str, method: str, variant: str, length: int, batch: int, model: dict) -> dict:
  """One measurement in this process (the child's work)."""
  from flash_lcsm_jax import validation
  cfg = common.model_config(size, **model)
  gen = common.generator(cfg)
  tau, table = ("hybrid", None) if method != "flash" else common.flash_variants([variant])[variant]
  gen.hybrid_table = table
  rec = {"method": method, "variant": variant if method == "flash" else None,
         "label": common.method_label(method, variant), "length": length, "batch": batch}
  try:
    plan, consts, state, _ = gen.start(method, tau, jnp.zeros((batch, 0), jnp.int32), length)
    heaviest = max(plan.blocks, key=lambda b: (max(b.levels), b.window))
    gen.run(dataclasses.replace(plan, blocks=(heaviest,)), consts, state,
            jax.random.PRNGKey(0), part="mixer")[0].buffer.block_until_ready()
    rec["estimate_bytes"] = validation.estimate_generation_bytes(gen.params, cfg, plan, batch)
    rec["peak_bytes"] = common.peak_bytes_in_use()
  except MemoryError as err:  # the library's own pre-allocation check
    rec["skipped"] = str(err)
  rec["environment"] = common.environment(size, rates=False)
  return rec


def _child(args: dict, timeout_s: float) -> dict:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
  proc = subprocess.run([sys.executable, "-m", "experiments.peak_memory", json.dumps(args)],
                        cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
  for line in proc.stdout.splitlines()[::-1]:
    if line.startswith(_MARK):
      return json.loads(line[len(_MARK):])
  return {"error": f"child exited {proc.returncode}: {proc.stderr[-600:]}"}


def run(size: str, outdir: str, name: str = "peak_memory", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  model = opts.pop("model", {})
  records = common.Progress(outdir, name, size, started)
  cfg = common.model_config(size, **model)
  records.config = {"model": cfg.to_dict(), "methods": METHODS, **opts}
  for batch in opts["batches"]:
    for length in opts["lengths"]:
      for method in METHODS:
        args = dict(size=size, method=method, variant=opts["variant"], length=length,
                    batch=batch, model=model)
        try:
          rec = _child(args, opts["timeout_s"]) if opts["isolate"] else point(**args)
        except Exception as err:  # a timeout or a failure in-process: keep the others
          rec = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        rec = {"label": common.method_label(method, opts["variant"]), "method": method,
               "length": length, "batch": batch, **rec}
        common.log(name, f"{rec['label']:14s} L={length:7d} B={batch}: peak "
                   f"{_gib(rec.get('peak_bytes'))}, estimate {_gib(rec.get('estimate_bytes'))}"
                   + (f" ({rec.get('skipped') or rec.get('error')})"
                      if "skipped" in rec or "error" in rec else ""))
        records.append(rec)
  env = next((r["environment"] for r in records if "environment" in r), None)
  data = common.payload(name, size, records.config, records, started, env=env)
  common.write_json(outdir, name, data)
  return data


def _gib(x) -> str:
  return "n/a" if x is None else f"{x / 2**30:.2f} GiB"


def plot(data: dict, path: str):
  plt = common.pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
  for batch in data["config"]["batches"]:
    for label in dict.fromkeys(r["label"] for r in data["records"]):
      mine = sorted((r for r in data["records"] if r["label"] == label and r["batch"] == batch
                     and r.get("estimate_bytes")), key=lambda r: r["length"])
      if not mine:
        continue
      style = common.line_style(label)
      peaks = [(r["length"], r["peak_bytes"]) for r in mine if r.get("peak_bytes")]
      if peaks:
        ax.plot(*zip(*[(x, y / 2**30) for x, y in peaks]), label=f"{label} B={batch} peak",
                **style)
      ax.plot([r["length"] for r in mine], [r["estimate_bytes"] / 2**30 for r in mine], "--",
              color=style["color"], label=f"{label} B={batch} estimate")
  limit = data["environment"].get("memory_limit_bytes")
  if limit:
    ax.axhline(limit / 2**30, color="k", linewidth=0.8, label="device memory")
  common.log_axes(ax, "generated length L", "GiB")
  ax.legend(fontsize=7)
  fig.suptitle("Peak device memory (measured: solid; validation.estimate_generation_bytes: "
               f"dashed)\n{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)


if __name__ == "__main__":
  args = json.loads(sys.argv[1])
  if args["size"] == "gpu":
    from experiments import registry
    registry.enable_compilation_cache()
  result = point(**args)
  print(_MARK + json.dumps(result), flush=True)
