"""Figure 1: which (input s, output t) cells each method computes at each step.

Drawn from the engine's own schedules (schedule.flash_blocks for flash's tile levels,
schedule.quadratic_blocks for lazy's and eager's compiled windows), not by hand. The JSON also
records the check that every pair s < t is covered exactly once by each method.
"""

from __future__ import annotations

import time

import numpy as np

from experiments import common
from flash_lcsm_jax.engine import schedule

DEFAULTS = {"gpu": dict(length=32), "cpu": dict(length=16)}


def flash_steps(length: int) -> list[dict]:
  """Per step t: the red cell (t, t) and the gray tile's inputs and outputs (0-indexed)."""
  steps = []
  for block in schedule.flash_blocks(0, length, common.BLOCK_SIZE):
    for j, level in enumerate(block.levels):
      t = block.first + j
      step = {"t": t, "level": level, "inputs": [], "outputs": []}
      if level != schedule.NO_TILE:
        U = 1 << level
        step["inputs"] = [t - U + 1, t]
        step["outputs"] = [t + 1, min(t + U, length - 1)]
      steps.append(step)
  return steps


def quadratic_steps(length: int, method: str) -> list[dict]:
  """Lazy reads the history s < t (its compiled window reads `window` positions, the rest are
  zero taps); eager pushes u_t to every t < j < L (its window: `window` future positions)."""
  steps = []
  for block in schedule.quadratic_blocks(0, length, common.BLOCK_SIZE, method):
    for j in range(block.num_steps):
      t = block.first + j
      steps.append({"t": t, "window": block.window})
  return steps


def coverage(length: int, method: str, steps: list[dict]) -> tuple[np.ndarray, np.ndarray]:
  """cover[t, s]: the step that adds input s's contribution to output t (-1: none; the red
  cells s = t are computed at step t), and count[t, s]: how many steps cover the cell."""
  cover = np.full((length, length), -1, np.int64)
  count = np.zeros((length, length), np.int64)
  for step in steps:
    t = step["t"]
    count[t, t] += 1
    cover[t, t] = t
    if method == "lazy":
      cells = [(t, s) for s in range(t)]
    elif method == "eager":
      cells = [(j, t) for j in range(t + 1, length)]
    elif step["inputs"]:
      (s0, s1), (o0, o1) = step["inputs"], step["outputs"]
      cells = [(o, s) for o in range(o0, o1 + 1) for s in range(s0, s1 + 1)]
    else:
      cells = []
    for cell in cells:
      cover[cell] = t
      count[cell] += 1
  return cover, count


def run(size: str, outdir: str, name: str = "tiling", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  length = opts["length"]
  records = []
  for method in ("lazy", "eager", "flash"):
    steps = flash_steps(length) if method == "flash" else quadratic_steps(length, method)
    cover, count = coverage(length, method, steps)
    lower = np.tril(np.ones((length, length), bool))
    once = bool(np.all(count[lower] == 1) and np.all(count[~lower] == 0))
    records.append({"method": method, "length": length, "steps": steps,
                    "cover": cover.tolist(), "each_pair_once": once})
    common.log(name, f"{method}: every pair s <= t covered exactly once: {once}")
  levels = [s["level"] for s in records[2]["steps"]]
  data = common.payload(name, size, {"length": length, "block_size": common.BLOCK_SIZE,
                                     "model": {}}, records, started,
                        flash_tile_levels=levels)
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  from matplotlib import patches
  records = data["records"]
  L = data["config"]["length"]
  fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), layout="constrained")
  for ax, rec in zip(axes, records):
    cover = np.array(rec["cover"], float)
    shown = np.ma.masked_less(cover, 0)
    im = ax.imshow(shown, origin="upper", cmap="viridis", vmin=0, vmax=L - 1,
                   extent=(-0.5, L - 0.5, L - 0.5, -0.5))
    for t in range(L):  # red cells: on the critical path
      ax.add_patch(patches.Rectangle((t - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="red",
                                     linewidth=1.2))
    if rec["method"] == "flash":
      for step in rec["steps"]:
        if step["inputs"]:
          (s0, s1), (o0, o1) = step["inputs"], step["outputs"]
          ax.add_patch(patches.Rectangle((s0 - 0.5, o0 - 0.5), s1 - s0 + 1, o1 - o0 + 1,
                                         fill=False, edgecolor="white", linewidth=1.0))
    ax.set_title(f"{rec['method']} (each pair once: {rec['each_pair_once']})")
    ax.set_xlabel("input position s")
    ax.set_ylabel("output position t")
    ax.set_xlim(-0.5, L - 0.5)
    ax.set_ylim(L - 0.5, -0.5)
  fig.colorbar(im, ax=axes, shrink=0.8, label="step that computes the cell")
  fig.suptitle(f"Which (input, output) cells each method computes at each step, L={L} "
               "(red: red cells; white boxes: flash gray tiles)\nfrom the engine's schedules",
               fontsize=10)
  common.save_figure(fig, path)
