"""Figure 10: bytes each method moves per step in the long convolutions vs L.

Counted from the engine's plans (float32, all M layers, the whole batch), per step:
  lazy   reads its compiled history window W (B W D) and filter window (W D), writes u_t (B D);
         the ideal lazy reads only the t past positions.
  eager  reads and writes its compiled future window (2 B W D), reads the taps (W D) and acc_t;
         the ideal eager touches only the L - 1 - t future positions.
  flash  reads acc_t and writes u_t (2 B D); a level-q tile (U = 2^q) reads its input segment and
         the pending outputs and writes them back (3 B U D), plus its tau's constants (fft:
         the filter spectrum, 8 (U+1) D; matmul: spectrum and DFT factors; direct: the
         Toeplitz matrices, 4 U^2 D). FFT intermediates are not counted.
Each record also holds the floor of a whole step (DESIGN section 8): the dense weights read
once per step plus these bytes over the stream bandwidth, and the dense flops over the matmul
rate.
Where mixer-only timings of the same (method, L, B) exist in the results directory (mixer.py),
the achieved bandwidth (bytes / measured time) is recorded and compared with the device's stream
bandwidth: a check that the counts explain the measured times.
"""

from __future__ import annotations

import glob
import json
import os
import time

from experiments import common
from flash_lcsm_jax.engine import mixers, schedule

DEFAULTS = {
    "gpu": dict(lengths=tuple(2**k for k in range(10, 18)), batches=(1, 8)),
    "cpu": dict(lengths=(32, 64, 128), batches=(1,)),
}


def _tau_constant_bytes(name: str, U: int, D: int) -> int:
  """Bytes of one layer's tau constants read by one level-q tile (shared parts counted once
  per layer, an upper bound)."""
  if name == "direct":
    return 4 * U * U * D
  if name == "matmul":
    return 8 * (U + 1) * D + 4 * 4 * U * (U + 1)
  return 8 * (U + 1) * D  # fft (and any spectrum-based tau)


def count(plan: mixers.Plan, M: int, D: int, B: int) -> dict:
  """Total bytes over the plan's steps: activations, constants, and the ideal quadratic
  schedules' activations."""
  act = const = ideal = 0
  L = plan.stop
  taus = dict(plan.tau_by_level)
  for block in plan.blocks:
    for j, level in enumerate(block.levels):
      t = block.first + j
      W = block.window
      if plan.method == "lazy":
        act += B * W * D + B * D
        const += W * D
        ideal += B * t * D + B * D
      elif plan.method == "eager":
        act += 2 * B * W * D + B * D
        const += W * D
        ideal += 2 * B * (L - 1 - t) * D + B * D
      else:
        act += 2 * B * D
        if level != schedule.NO_TILE:
          U = 1 << level
          act += 3 * B * U * D
          const += _tau_constant_bytes(taus[level], U, D) // 4
  steps = L - plan.start
  out = {"activation_bytes_per_step": 4 * M * act / steps,
         "constant_bytes_per_step": 4 * M * const / steps}
  if plan.method != "flash":
    out["ideal_activation_bytes_per_step"] = 4 * M * ideal / steps
  return out


def dense_cost(cfg, batch: int) -> tuple[int, int]:
  """Bytes of weights one step reads (every layer's dense weights, the unembedding, B embedding
  rows) and the flops of its matmuls, float32."""
  D, I, V, K, M = cfg.d_model, cfg.d_inner, cfg.vocab_size, cfg.short_filter_order, cfg.n_layers
  matmul = 3 * D * D + D * D + 2 * D * I  # in_proj, out_proj, MLP
  per_layer = matmul + 3 * D + K * 3 * D + 3 * D + D + I + D + 4 * D + D  # biases, conv, norms
  weights = 4 * (M * per_layer + D * V + batch * D)
  return weights, 2 * batch * (M * matmul + D * V)


def measured_mixer_times(results_dir: str) -> dict:
  """(label, length, batch) -> seconds, from every mixer-only sweep in results_dir."""
  times = {}
  for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
    try:
      with open(path) as f:
        data = json.load(f)
    except (OSError, ValueError):
      continue
    if not isinstance(data, dict) or data.get("config", {}).get("part") != "mixer":
      continue
    for r in data.get("records", []):
      if common.ok(r):
        times[(r["label"], r["length"], r["batch"])] = (r["seconds"], r["integrated"],
                                                         os.path.basename(path))
  return times


def run(size: str, outdir: str, name: str = "activation_bytes", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  cfg = common.model_config(size, **opts.pop("model", {}))
  M, D = cfg.n_layers, cfg.d_model
  measured = measured_mixer_times(outdir)
  # rates_from_results: take the device and its rates from the mixer JSON whose timings are
  # joined (the bandwidth check then compares like with like, and the counts can be redone on
  # any machine); otherwise measure the device at hand.
  source = sorted({hit[2] for hit in measured.values()})
  if opts.pop("rates_from_results", False):
    if not source:
      raise ValueError(f"rates_from_results: no mixer-only results in {outdir}")
    env = {**common.read_json(outdir, source[0][:-len(".json")])["environment"],
           "rates_from": source[0]}
  else:
    env = common.environment(size)
  bandwidth, flop_rate = 1e9 * env["copy_bandwidth_GBps"], 1e12 * env["matmul_tflops"]
  records = []
  for batch in opts["batches"]:
    weights, flops = dense_cost(cfg, batch)
    for length in opts["lengths"]:
      for method, variant in (("lazy", None), ("eager", None), ("flash", "hybrid")):
        plan = mixers.make_plan(method, 0, length, common.BLOCK_SIZE, "hybrid")
        label = common.method_label(method, variant)
        rec = {"method": method, "label": label, "length": length, "batch": batch,
               **count(plan, M, D, batch), "weight_bytes_per_step": weights,
               "dense_flops_per_step": flops}
        moved = weights + rec["activation_bytes_per_step"] + rec["constant_bytes_per_step"]
        rec.update(floor_bytes_s_per_step=moved / bandwidth,
                   floor_flops_s_per_step=flops / flop_rate)
        hit = measured.get((label, length, batch))
        if hit:
          seconds, integrated, source = hit
          moved = (rec["activation_bytes_per_step"] + rec["constant_bytes_per_step"]) * length
          rec.update(measured_mixer_s=seconds, measured_integrated=integrated, source=source,
                     achieved_GBps=moved / seconds / 1e9,
                     fraction_of_stream_bandwidth=moved / seconds / 1e9 /
                     env["copy_bandwidth_GBps"])
        records.append(rec)
  for r in records:
    common.log(name, f"{r['label']:13s} L={r['length']:7d} B={r['batch']}: "
               f"{r['activation_bytes_per_step'] / 2**20:10.2f} MiB/step activations" + (
                   f", achieved {r['achieved_GBps']:.1f} GB/s" if "achieved_GBps" in r else ""))
  data = common.payload(name, size, {"model": cfg.to_dict(), "block_size": common.BLOCK_SIZE,
                                     **opts}, records, started, env=env)
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), layout="constrained")
  recs = data["records"]
  for batch in data["config"]["batches"]:
    for label in dict.fromkeys(r["label"] for r in recs):
      mine = sorted((r for r in recs if r["label"] == label and r["batch"] == batch),
                    key=lambda r: r["length"])
      style = common.line_style(label)
      L = [r["length"] for r in mine]
      axes[0].plot(L, [r["activation_bytes_per_step"] for r in mine],
                   label=f"{label} B={batch}", **style)
      if "ideal_activation_bytes_per_step" in mine[0]:
        axes[0].plot(L, [r["ideal_activation_bytes_per_step"] for r in mine], ":",
                     color=style["color"], label=f"{label} B={batch} (ideal)")
      axes[1].plot(L, [r["constant_bytes_per_step"] for r in mine], label=f"{label} B={batch}",
                   **style)
      got = [(r["length"], r["achieved_GBps"]) for r in mine if "achieved_GBps" in r]
      if got:
        axes[2].plot(*zip(*got), label=f"{label} B={batch}", **style)
  axes[2].axhline(data["environment"]["copy_bandwidth_GBps"], color="k", linestyle="--",
                  label="stream bandwidth")
  titles = ("activation bytes per step", "constant (filter) bytes per step",
            "achieved GB/s (counted bytes / measured mixer time)")
  for ax, title in zip(axes, titles):
    common.log_axes(ax, "generated length L", title=title, title_size=9)
    ax.legend(fontsize=7)
  fig.suptitle(f"Bytes moved in the long convolutions, counted from the schedules\n"
               f"{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
