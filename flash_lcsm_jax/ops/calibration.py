"""Calibration of tau='hybrid': which implementation runs each tile level on this device.

`measure` times the real gray-tile update (slice, tau, add, in-place write on a donated
(M, B, D, Lb) buffer) for every implementation at every level; `derive` keeps the fastest;
tables are JSON files under ops/tables/, one per device kind, keyed by batch size.
`table_for` is what the engine uses: the committed table of the current device, else the
default of `tau.DEFAULT_HYBRID`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import tau as tau_ops

TABLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


def device_slug(kind: str | None = None) -> str:
  kind = jax.devices()[0].device_kind if kind is None else kind
  return re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_")


def tile_positions(level: int, count: int) -> tuple[jax.Array, ...]:
  """(2j+1)U - 1 for j < count, one int32 scalar each: segments at [2jU, (2j+1)U), so the tiles
  of a chain never read each other's outputs."""
  return tuple(jnp.asarray((2 * j + 1) * (1 << level) - 1, jnp.int32) for j in range(count))


def _tile_chain(level: int, impl: str, count: int):
  from flash_lcsm_jax.engine import mixers  # engine imports ops; avoid the cycle at import

  # Distinct positions, passed in as scalars as a generation's steps get theirs: positions
  # compiled in make XLA's slices static, and its GPU emitter then writes each tile's update out
  # of place (the whole buffer; session 16), biasing the table against the XLA taus; positions
  # sliced out of one array cost the Pallas taus a copy of their scalar operand per tile.
  @functools.partial(jax.jit, donate_argnums=(1,))
  def run(level_consts, buf, positions):
    for j in range(count):
      buf = mixers.gray_tile(level_consts, buf, positions[j], level, impl)
    return buf
  return run


def measure(filters: jax.Array, batch: int, levels, impls=None, count: int = 8,
            repeats: int = 10) -> dict[int, dict[str, float]]:
  """Median microseconds per gray tile, {level: {impl: us}} (NaN where an impl failed)."""
  M, D = filters.shape[:2]
  impls = tau_ops.names() if impls is None else impls
  out: dict[int, dict[str, float]] = {}
  for level in levels:
    U = 1 << level
    length = 2 * count * U + U
    out[level] = {}
    for name in impls:
      impl = tau_ops.get(name)
      if level > impl.max_level:
        continue
      try:
        consts = impl.prepare(filters, level)
        run = _tile_chain(level, name, count)
        positions = tile_positions(level, count)
        buf = jnp.full((M, batch, D, length), 0.37, jnp.float32)
        buf = run(consts, buf, positions).block_until_ready()
        times = []
        for _ in range(repeats):
          start = time.perf_counter()
          buf = run(consts, buf, positions)
          buf.block_until_ready()
          times.append(time.perf_counter() - start)
        out[level][name] = 1e6 * float(np.median(times)) / count
      except Exception as e:  # a failing implementation must not stop the calibration
        out[level][name] = float("nan")
        print(f"calibration: {name} at level {level} failed: {type(e).__name__}: {e}")
  return out


def derive(measured: dict[int, dict[str, float]]) -> dict[int, str]:
  """Fastest finite implementation per level."""
  table = {}
  for level, times in measured.items():
    finite = {k: v for k, v in times.items() if np.isfinite(v)}
    if finite:
      table[int(level)] = min(finite, key=finite.get)
  return table


def save(tables_by_batch: dict[int, dict[int, str]], measured_by_batch, kind: str | None = None,
         directory: str = TABLE_DIR) -> str:
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, device_slug(kind) + ".json")
  doc = {"device": kind or jax.devices()[0].device_kind, "jax": jax.__version__,
         "tables": {str(b): {str(q): n for q, n in t.items()} for b, t in tables_by_batch.items()},
         "measured_us": {str(b): {str(q): v for q, v in m.items()}
                         for b, m in measured_by_batch.items()}}
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(doc, f, indent=1)
  os.replace(tmp, path)
  return path


@functools.lru_cache(maxsize=None)
def _load(slug: str, directory: str):
  path = os.path.join(directory, slug + ".json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    doc = json.load(f)
  return {int(b): {int(q): n for q, n in t.items()} for b, t in doc["tables"].items()}


def table_for(batch: int, kind: str | None = None, directory: str = TABLE_DIR) -> dict[int, str]:
  """The calibrated table of this device for the nearest measured batch, else the default."""
  tables = _load(device_slug(kind), directory)
  if not tables:
    return dict(tau_ops.DEFAULT_HYBRID)
  nearest = min(tables, key=lambda b: (abs(np.log2(b) - np.log2(max(batch, 1))), b))
  known = set(tau_ops.names())
  return {q: n for q, n in tables[nearest].items() if n in known}
