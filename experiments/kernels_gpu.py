"""Checks and times every tau implementation (one gray tile of all layers) on the device.

  PYTHONPATH=. python experiments/kernels_gpu.py [--out=PATH] [--levels=0,1,...] [--batches=1,8]

(a) correctness: each Pallas tau, forced to its compiled kernel (no silent XLA fallback), against
    tau.reference on fresh random data at the paper shape (M = 18, D = 864) for every level it
    supports and every batch: relative error (max abs difference over max |reference|), the same
    against float64 numpy on a slice (layer 0, 64 channels), and whether every output is finite
    after the allocator was handed a freed NaN-filled buffer (best-effort poisoning: a kernel that
    skips part of its output shows NaN or stale values).
(b) speed: per level q = 0..10 and batch, every registered tau's `apply` (what the engine runs)
    under jax.jit, after warm-up; median (and min) of >= 20 calls, each blocked on, rotating over
    several input sets; plus the per-application time inside one jit that applies the tau to all
    input sets back to back (no per-call dispatch: closer to the cost inside the decode loop).
(b') whole gray tiles (slice, tau, update, on a donated (M, B, D, Lb) buffer, levels <= 6): the
    engine's `mixers.gray_tile` with each of TILE_TAUS, named "tile:<tau>" (for "pallas_inplace"
    that is ONE in-place kernel, for the others three launches); the same median / min of >= 20
    calls, each blocked on, rotating over as many tile positions as input sets (the buffer is
    passed back in, donated, so nothing is copied), and the per-tile time inside one jit that runs
    the tile at every position back to back. Levels above 6 are not timed this way (the buffer
    would be large); the calibration (experiments/calibrate.py) times real gray tiles of every tau.
(c) JSON to --out (default $OUT/kernels.json when OUT is set, else results/kernels.json) with the
    device kind, jax version, matmul precision and per (impl, level, batch) medians in
    microseconds; a compact table is printed last.

A failing implementation never stops the run: its error string is recorded. --budget_s bounds the
whole run (entries past it are recorded as skipped).
"""

from __future__ import annotations

import statistics
import sys
import time
import traceback

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import calibration
from flash_lcsm_jax.ops import pallas_dft
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import pallas_inplace
from flash_lcsm_jax.ops import tau as tau_ops
from experiments import common

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/kernels.json or "
                           "results/kernels.json).")
_LEVELS = flags.DEFINE_list("levels", [str(q) for q in range(11)], "Tile levels q (U = 2^q).")
_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes.")
_LAYERS = flags.DEFINE_integer("layers", 18, "M (paper: 18).")
_CHANNELS = flags.DEFINE_integer("channels", 864, "D (paper: 864).")
_REPEATS = flags.DEFINE_integer("repeats", 30, "Timed calls per entry (>= 20).")
_INPUT_SETS = flags.DEFINE_integer("input_sets", 4, "Distinct inputs rotated through.")
_IMPLS = flags.DEFINE_list("impls", [], "Implementations to time (default: all registered plus "
                           "the DFT kernel's other precisions, and tile:<tau> for TILE_TAUS).")
_PRECISION = flags.DEFINE_enum("precision", "highest", ["default", "high", "highest"],
                               "jax_default_matmul_precision for the XLA implementations.")
_DFT_PRECISIONS = flags.DEFINE_list("dft_precisions", ["highest"], "Extra precisions of the "
                                    "pallas_dft kernel to check and time (it runs tf32x3 as tau).")
_TOLERANCE = flags.DEFINE_float("tolerance", 1e-5, "Pass bound on the relative error.")
_BUDGET = flags.DEFINE_float("budget_s", 210.0, "Wall-clock budget for checks + timings.")
_SKIP_CHECK = flags.DEFINE_bool("skip_check", False, "Only time.")
_IMPLEMENTATION = flags.DEFINE_enum("implementation", "pallas", ["pallas", "interpret"],
                                    "How the checked Pallas kernels run (interpret: CPU smoke).")

_START = time.perf_counter()

# Taus timed as whole gray tiles ("tile:<name>"): the XLA defaults of the hybrid, the Pallas
# direct kernel between XLA slice / update, and the single in-place kernel.
TILE_TAUS = ("direct", "matmul", "pallas", "pallas_inplace")


def _elapsed() -> float:
  return time.perf_counter() - _START


# ----------------------------------------------------------------------------- implementations


def _dft_variant(precision: str):
  return (pallas_dft.prepare,
          lambda c, s: pallas_dft.dft_conv(c, s, implementation=_IMPLEMENTATION.value,
                                           precision=precision),
          pallas_dft.MAX_LEVEL)


def checked_variants() -> dict[str, tuple]:
  """Pallas kernels forced to the compiled path: name -> (prepare, apply, max_level)."""
  variants = {
      "pallas": (pallas_direct.prepare,
                 lambda c, s: pallas_direct.direct_conv(c, s,
                                                        implementation=_IMPLEMENTATION.value),
                 pallas_direct.MAX_LEVEL),
      "pallas_dft": _dft_variant("tf32x3"),
      # The in-place kernel on the buffer [seg | zeros] at t = U-1 (its tau `apply`).
      "pallas_inplace": (pallas_inplace.prepare,
                         lambda c, s: pallas_inplace.apply(c, s,
                                                           implementation=_IMPLEMENTATION.value),
                         pallas_inplace.MAX_LEVEL),
  }
  for p in _DFT_PRECISIONS.value:
    variants[f"pallas_dft[{p}]"] = _dft_variant(p)
  return variants


def _segment_variants() -> dict[str, tuple]:
  variants = {name: (impl.prepare, impl.apply, impl.max_level)
              for name in tau_ops.names() for impl in [tau_ops.get(name)]}
  for p in _DFT_PRECISIONS.value:
    variants[f"pallas_dft[{p}]"] = _dft_variant(p)
  return variants


def timed_variants() -> dict[str, tuple]:
  """Registered taus' `apply` on segments plus the extra DFT precisions."""
  return _selected(_segment_variants())


def tile_variants() -> dict[str, str]:
  """Whole gray tiles as the engine runs them (mixers.gray_tile): "tile:<tau>" -> tau name."""
  return _selected({f"tile:{name}": name for name in TILE_TAUS if name in tau_ops.names()})


def _selected(variants: dict) -> dict:
  """The --impls subset (names of either kind)."""
  if not _IMPLS.value:
    return variants
  known = set(_segment_variants()) | {f"tile:{name}" for name in TILE_TAUS}
  unknown = sorted(set(_IMPLS.value) - known)
  if unknown:
    raise app.UsageError(f"--impls: unknown {unknown}; choose from {sorted(known)}")
  return {k: v for k, v in variants.items() if k in _IMPLS.value}


def ran_as(name: str, U: int) -> str:
  """Which path a Pallas tau took at this tile size (the dispatcher may fall back to XLA)."""
  name = name.removeprefix("tile:")
  if not name.startswith("pallas"):
    return "xla"
  if name.startswith("pallas_inplace"):
    kernel = f"inplace U={U}"
  elif name.startswith("pallas_dft") and U >= 16:
    kernel = f"dft U={U}"
  else:
    kernel = f"direct U={U}"
  choice = pallas_direct.CHOSEN.get(kernel, "?")
  if choice != "pallas":
    return f"{choice} ({pallas_direct.REASONS.get(kernel, '')})"
  return choice


# ----------------------------------------------------------------------------- inputs


def random_filters(key, M: int, D: int, level: int) -> jax.Array:
  # Decaying like an implicit Hyena filter, so long taps carry realistic weight.
  U2 = 2 << level
  h = jax.random.normal(key, (M, D, U2), jnp.float32)
  return h * jnp.exp(-jnp.arange(U2) / max(U2, 64.0))


def random_segments(key, count: int, M: int, B: int, D: int, level: int) -> list[jax.Array]:
  keys = jax.random.split(key, count)
  return [jax.random.normal(k, (M, B, D, 1 << level), jnp.float32) for k in keys]


def poison(nbytes: int):
  """Fill and free a NaN buffer so the allocator likely hands its memory to the next output."""
  junk = jnp.full((max(nbytes // 4, 1),), jnp.nan, jnp.float32)
  junk.block_until_ready()
  del junk


def expected64(h: np.ndarray, seg: np.ndarray) -> np.ndarray:
  """float64 numpy: out[.., j] = sum_k h[.., U+j-k] seg[.., k]; h (D, 2U), seg (B, D, U)."""
  U = seg.shape[-1]
  out = np.zeros(seg.shape)
  for k in range(U):
    out += h[None, :, U - k:2 * U - k] * seg[..., k:k + 1]
  return out


# ----------------------------------------------------------------------------- (a) correctness


def check_all(levels, batches, M, D) -> list[dict]:
  variants = checked_variants()
  reference = jax.jit(tau_ops.reference)
  rows = []
  for level in levels:
    for B in batches:
      if _elapsed() > 0.4 * _BUDGET.value:
        rows.append(dict(level=level, batch=B, skipped="time budget"))
        continue
      key = jax.random.PRNGKey(1000 * level + B)
      filters = random_filters(key, M, D, level)
      seg = random_segments(jax.random.fold_in(key, 1), 1, M, B, D, level)[0]
      ref = None
      for name, (prepare, apply, max_level) in variants.items():
        if level > max_level:
          continue
        row = dict(impl=name, level=level, batch=B)
        try:
          if ref is None:
            ref = np.asarray(reference(filters, seg))
            h64 = np.asarray(filters[0, :64], np.float64)
            want64 = expected64(h64, np.asarray(seg[0, :, :64], np.float64))
          consts = prepare(filters, level)
          fn = jax.jit(apply).lower(consts, seg).compile()  # compile before poisoning
          poison(seg.size * 4 * 2)
          out = np.asarray(fn(consts, seg))
          row.update(finite=bool(np.isfinite(out).all()),
                     rel_err_vs_reference=common.max_relative_error(out, ref),
                     rel_err_vs_float64=common.max_relative_error(out[0, :, :64], want64),
                     ref_rel_err_vs_float64=common.max_relative_error(ref[0, :, :64], want64))
          row["ok"] = row["finite"] and row["rel_err_vs_reference"] <= _TOLERANCE.value
        except Exception as e:  # pylint: disable=broad-except
          row.update(ok=False, error=common.error_text(e, 600))
          traceback.print_exc(limit=2, file=sys.stderr)
        rows.append(row)
        err = row.get("rel_err_vs_reference", float("nan"))
        print(f"check {name:22s} q={level:2d} B={B}: {'ok  ' if row['ok'] else 'FAIL'} "
              f"rel_err={err:.2e} {row.get('error', '')[:120]}", flush=True)
  return rows


# ----------------------------------------------------------------------------- (b) timing


def _median_us(fn, args_list, repeats: int, per: int = 1) -> tuple[float, float]:
  for args in args_list:  # warm-up on every input set
    jax.block_until_ready(fn(*args))
  times = []
  for r in range(repeats):
    args = args_list[r % len(args_list)]
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append((time.perf_counter() - t0) / per)
  return 1e6 * statistics.median(times), 1e6 * min(times)


def _chained_us(fn, consts, buf, positions, repeats: int, per: int = 1):
  """As _median_us for a call that takes the buffer donated and returns it: each call gets the
  previous call's output (nothing is copied), rotating over the tile positions."""
  for t in positions:  # warm-up at every position
    buf = fn(consts, buf, t)
  buf.block_until_ready()
  times = []
  for r in range(repeats):
    t = positions[r % len(positions)]
    t0 = time.perf_counter()
    buf = fn(consts, buf, t)
    buf.block_until_ready()
    times.append((time.perf_counter() - t0) / per)
  return 1e6 * statistics.median(times), 1e6 * min(times)


def time_tiles(level: int, B: int, filters, M: int, D: int, repeats: int) -> list[dict]:
  """(b') whole gray tiles on a donated buffer at `input_sets` distinct positions."""
  U, count = 1 << level, max(1, _INPUT_SETS.value)
  rows = []
  for name, tau_name in tile_variants().items():
    impl = tau_ops.get(tau_name)
    if level > min(impl.max_level, pallas_inplace.MAX_LEVEL):
      continue
    row = dict(impl=name, level=level, batch=B, tile=U)
    if _elapsed() > _BUDGET.value:
      row["skipped"] = "time budget"
      rows.append(row)
      continue
    try:
      consts = jax.block_until_ready(jax.jit(impl.prepare, static_argnums=1)(filters, level))
      # Segments at [2jU, (2j+1)U), pending outputs right after: tiles never read each other.
      length = 2 * count * U + U
      buf = jax.random.normal(jax.random.PRNGKey(B), (M, B, D, length), jnp.float32)
      positions = list(calibration.tile_positions(level, count))
      tile = jax.jit(lambda c, b, t, n=tau_name: mixers.gray_tile(c, b, t, level, n),
                     donate_argnums=(1,))
      t0 = time.perf_counter()
      tile = tile.lower(consts, buf, positions[0]).compile()
      row["compile_s"] = round(time.perf_counter() - t0, 3)
      row["ran_as"] = ran_as(name, U)
      row["median_us"], row["min_us"] = _chained_us(tile, consts, buf, positions, repeats)
      del buf  # donated

      def all_positions(c, b, ts, n=tau_name):  # one jit: every position back to back
        for j in range(count):
          b = mixers.gray_tile(c, b, ts[j], level, n)
        return b
      chain = jax.jit(all_positions, donate_argnums=(1,))
      buf = jax.random.normal(jax.random.PRNGKey(B), (M, B, D, length), jnp.float32)
      # One scalar per tile, not slices of one array (each slice would cost a Pallas tile a
      # copy of its scalar operand that XLA's tile fuses away; session 16).
      ts = calibration.tile_positions(level, count)
      chain = chain.lower(consts, buf, ts).compile()
      row["in_jit_us"], _ = _chained_us(chain, consts, buf, [ts], repeats, per=count)
    except Exception as e:  # pylint: disable=broad-except
      row["error"] = common.error_text(e, 600)
      traceback.print_exc(limit=2, file=sys.stderr)
    rows.append(row)
    _print_timing(row)
  return rows


def _print_timing(row: dict):
  print(f"time  {row['impl']:22s} q={row['level']:2d} B={row['batch']}: "
        + (f"{row['median_us']:10.1f} us (in jit {row['in_jit_us']:10.1f} us) "
           f"[{row['ran_as']}]" if "in_jit_us" in row else row.get("error", "")[:160]),
        flush=True)


def time_all(levels, batches, M, D) -> list[dict]:
  variants = timed_variants()
  repeats = max(20, _REPEATS.value)
  rows = []
  for level in levels:
    U = 1 << level
    key = jax.random.PRNGKey(level)
    filters = random_filters(key, M, D, level)
    for B in batches:
      segs = random_segments(jax.random.fold_in(key, B), max(1, _INPUT_SETS.value), M, B, D, level)
      for name, (prepare, apply, max_level) in variants.items():
        if level > max_level:
          continue
        row = dict(impl=name, level=level, batch=B, tile=U)
        if _elapsed() > _BUDGET.value:
          row["skipped"] = "time budget"
          rows.append(row)
          continue
        try:
          consts = jax.block_until_ready(jax.jit(prepare, static_argnums=1)(filters, level))
          t0 = time.perf_counter()
          call = jax.jit(apply).lower(consts, segs[0]).compile()
          row["compile_s"] = round(time.perf_counter() - t0, 3)
          row["ran_as"] = ran_as(name, U)
          row["median_us"], row["min_us"] = _median_us(call, [(consts, s) for s in segs], repeats)
          # One jit applying the tau to every input set: per-application time without dispatch.
          chain = jax.jit(lambda c, ss, apply=apply: [apply(c, s) for s in ss])
          chain = chain.lower(consts, segs).compile()
          row["in_jit_us"], _ = _median_us(chain, [(consts, segs)], repeats, per=len(segs))
        except Exception as e:  # pylint: disable=broad-except
          row["error"] = common.error_text(e, 600)
          traceback.print_exc(limit=2, file=sys.stderr)
        rows.append(row)
        _print_timing(row)
      rows += time_tiles(level, B, filters, M, D, repeats)
  return rows


# ----------------------------------------------------------------------------- report


def table(timings: list[dict], levels, batches) -> str:
  impls = list(dict.fromkeys(r["impl"] for r in timings))
  by_key = {(r["impl"], r["level"], r["batch"]): r for r in timings}
  width = max([14] + [len(name) + 2 for name in impls])
  lines = []
  for B in batches:
    lines.append(f"median us per call (in-jit us per application), B={B}; '-' = unsupported level")
    lines.append("  q " + "".join(f"{name:>{width}s}" for name in impls))
    for q in levels:
      cells = []
      for name in impls:
        r = by_key.get((name, q, B))
        if r is None:
          cells.append("-")
        elif "median_us" in r:
          fallback = "" if r.get("ran_as", "xla") in ("xla", "pallas") else "!"
          cells.append(f"{r['median_us']:.0f} ({r.get('in_jit_us', float('nan')):.0f}){fallback}")
        else:
          cells.append("ERR" if "error" in r else "skip")
      lines.append(f"{q:3d} " + "".join(f"{c:>{width}s}" for c in cells))
  lines.append("'!' = a Pallas tau that did not run its compiled kernel (see ran_as in the JSON)")
  return "\n".join(lines)


def main(argv):
  del argv
  jax.config.update("jax_default_matmul_precision", _PRECISION.value)
  levels = [int(q) for q in _LEVELS.value]
  batches = [int(b) for b in _BATCHES.value]
  M, D = _LAYERS.value, _CHANNELS.value
  device = jax.devices()[0]
  print(f"device {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
        f"M={M} D={D} levels={levels} batches={batches}", flush=True)

  checks = [] if _SKIP_CHECK.value else check_all(
      [q for q in levels if q <= pallas_dft.MAX_LEVEL], batches, M, D)
  timings = time_all(levels, batches, M, D)

  median_us: dict = {}
  for r in timings:
    if "median_us" in r:
      median_us.setdefault(r["impl"], {}).setdefault(str(r["level"]), {})[str(r["batch"])] = (
          round(r["median_us"], 2))
  result = dict(
      experiment="kernels_gpu",
      device_kind=device.device_kind, platform=jax.default_backend(),
      jax_version=jax.__version__, jaxlib_version=common.jaxlib_version(),
      dtype="float32", matmul_precision=_PRECISION.value,
      pallas_dft_precision="tf32x3 (tau); extra: " + ",".join(_DFT_PRECISIONS.value),
      shape=dict(layers=M, channels=D), levels=levels, batches=batches,
      repeats=max(20, _REPEATS.value), input_sets=_INPUT_SETS.value, tolerance=_TOLERANCE.value,
      poisoning="best effort: a freed NaN buffer before each checked call",
      checks_passed=all(c.get("ok", True) for c in checks),
      checks=checks, timings=timings, median_us=median_us,
      pallas_choices=dict(pallas_direct.CHOSEN), pallas_reasons=dict(pallas_direct.REASONS),
      elapsed_s=round(_elapsed(), 1))
  path = common.output_path(_OUT.value, "kernels.json")
  common.write_json_file(path, result)
  failed = [f"{c['impl']} q={c['level']} B={c['batch']}" for c in checks if not c.get("ok", True)]
  print(f"\nwrote {path} in {result['elapsed_s']} s; checks "
        + ("all passed" if not failed else f"FAILED: {failed}"))
  print(table(timings, levels, batches))


if __name__ == "__main__":
  app.run(main)
