"""Is the lazy baseline's history read as fast at B = 8 as at B = 1?

  PYTHONPATH=. python experiments/lazy_read_gpu.py [--out=PATH]
  PYTHONPATH=. python experiments/lazy_read_gpu.py --tiny      # CPU smoke run (interpret mode)

Lazy's read at position t (engine/mixers.read) is one multiply-reduce,
  z[m, b, d] = sum_{s < W} buf[m, b, s, d] * hr[m, off + s, d],     off = stop - 1 - t,
over the (M, B, Lb, D) history and the reversed filter (M, Lh, D). Its least traffic is
(B + 1) * M * W * D * 4 bytes: every history row once and the filter window once. At B = 1
it reads at 4.2-4.4 TB/s on an H200 (above the 3.4 TB/s read+write copy), at B = 8 at
2.2-2.5 TB/s by that count (experiments/NOTES.md). If XLA's reduction re-reads the filter
window for every batch row, its traffic is 2 * B rows instead of B + 1, and a read that loads
each filter tile once for all rows would make the lazy baseline up to ~1.8x faster at B = 8:
the honest baseline for #3's B = 8 ratio. Forms timed on the paper shape (M = 18, D = 864):

  xla_bsd   the engine's form today (history (M, B, W, D));
  xla_sdb   history (M, W, D, B): batch minor, so a reduction block holds every row of its channels;
  xla_sbd   history (M, W, B, D);
  pallas    flash_lcsm_jax/ops/lazy_read.py on today's layout: a program loads a (chunk,
            channels) filter tile once and the B history tiles at the same positions, for one of
            `splits` ranges of the window; XLA sums the splits.

Each form is checked against float64 on a small random case first; each timing is the median of
--repeats calls (one call reads GBs: host overhead is negligible).
"""

from __future__ import annotations

import functools
import statistics
import time
import traceback

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from flash_lcsm_jax.ops import lazy_read

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT or results/).")
_CASES = flags.DEFINE_list("cases", ["1:32768", "1:65536", "8:16384", "8:32768"],
                           "B:W pairs (batch rows, window).")
_FORMS = flags.DEFINE_list("forms", ["xla_bsd", "xla_sdb", "xla_sbd", "pallas"], "Forms.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed calls per entry (median).")
_SPLITS = flags.DEFINE_list("splits", ["8", "32"], "Window splits of the Pallas form.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run: small shapes, Pallas in interpret mode.")

FORMS = ("xla_bsd", "xla_sdb", "xla_sbd", "pallas")


def history_layout(form: str) -> str:
  return {"xla_sdb": "sdb", "xla_sbd": "sbd"}.get(form, "bsd")


def to_layout(hist_bsd: jax.Array, layout: str) -> jax.Array:
  """(M, B, W, D) -> the form's history layout."""
  return {"bsd": hist_bsd, "sdb": jnp.transpose(hist_bsd, (0, 2, 3, 1)),
          "sbd": jnp.transpose(hist_bsd, (0, 2, 1, 3))}[layout]


def xla_read(hist: jax.Array, hr: jax.Array, off: jax.Array, layout: str, window: int):
  """The multiply-reduce in the given history layout; returns (M, B, D)."""
  if layout == "bsd":
    return lazy_read.reference(hist, hr, off, window)
  h = jax.lax.dynamic_slice_in_dim(hr, off, window, axis=1)  # (M, W, D)
  if layout == "sdb":
    return jnp.transpose(jnp.sum(hist[:, :window] * h[..., None], axis=1), (0, 2, 1))
  return jnp.sum(hist[:, :window] * h[:, :, None], axis=1)


def read_fn(form: str, window: int, splits: int, interpret: bool):
  if form == "pallas":
    return jax.jit(functools.partial(lazy_read.history_read, window=window, splits=splits,
                                     implementation="interpret" if interpret else "pallas"))
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")
  return jax.jit(functools.partial(xla_read, layout=history_layout(form), window=window))


def check(form: str, splits: int, interpret: bool, rng) -> float:
  """Max relative error of the form against float64 on a fresh random case."""
  M, B, W, D, extra = 2, 3, 8 * splits * lazy_read.CHUNK, 2 * lazy_read.CHANNELS, 37
  hist = rng.standard_normal((M, B, W, D)).astype(np.float32)
  hr = rng.standard_normal((M, W + extra, D)).astype(np.float32)
  off = int(rng.integers(0, extra + 1))
  want = np.einsum("mbsd,msd->mbd", hist.astype(np.float64),
                   hr[:, off:off + W].astype(np.float64))
  fn = read_fn(form, W, splits, interpret)
  got = np.asarray(fn(to_layout(jnp.asarray(hist), history_layout(form)), jnp.asarray(hr),
                      jnp.int32(off)))
  return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def time_form(form: str, batch: int, window: int, splits: int, repeats: int, M: int, D: int,
              interpret: bool) -> float:
  key = jax.random.PRNGKey(batch * 7 + window)
  shape = {"bsd": (M, batch, window, D), "sdb": (M, window, D, batch),
           "sbd": (M, window, batch, D)}[history_layout(form)]
  hist = jax.random.normal(key, shape, jnp.float32)
  hr = jax.random.normal(jax.random.fold_in(key, 1), (M, 2 * window, D), jnp.float32)
  fn = read_fn(form, window, splits, interpret)
  off = jnp.int32(window // 3)
  jax.block_until_ready(fn(hist, hr, off))
  times = []
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(hist, hr, off + i))
    times.append(time.perf_counter() - start)
  del hist, hr
  return statistics.median(times)


def main(argv):
  del argv
  started = time.perf_counter()
  tiny = _TINY.value
  interpret = tiny or jax.default_backend() != "gpu"
  M, D = (2, 64) if tiny else (18, 864)
  cases = [(1, 1024), (4, 2048)] if tiny else [
      tuple(int(v) for v in c.split(":")) for c in _CASES.value]
  splits_list = [int(s) for s in _SPLITS.value]
  rng = np.random.default_rng()
  rows, checks = [], []
  for form in _FORMS.value:
    for splits in (splits_list if form == "pallas" else [splits_list[0]]):
      try:
        err = check(form, splits, interpret, rng)
        checks.append(dict(form=form, splits=splits, rel_err=err, ok=err <= 1e-5))
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc()
        checks.append(dict(form=form, splits=splits, ok=False, error=common.error_text(e)))
      common.log("lazy_read", f"check {checks[-1]}")
  passed = {(c["form"], c["splits"]) for c in checks if c["ok"]}
  for batch, window in cases:
    for form in _FORMS.value:
      for splits in (splits_list if form == "pallas" else [splits_list[0]]):
        if (form, splits) not in passed:
          continue
        row = dict(form=form, batch=batch, window=window, splits=splits if form == "pallas"
                   else None)
        try:
          seconds = time_form(form, batch, window, splits, _REPEATS.value, M, D, interpret)
          least = (batch + 1) * M * window * D * 4
          row.update(ms=seconds * 1e3, least_bytes=least, TBps_least=least / seconds / 1e12,
                     TBps_if_filter_per_row=2 * batch * M * window * D * 4 / seconds / 1e12)
        except Exception as e:  # pylint: disable=broad-except
          traceback.print_exc()
          row["error"] = common.error_text(e)
        rows.append(row)
        common.log("lazy_read", str(row))
  data = dict(experiment="lazy_read", environment=common.environment("cpu" if tiny else "gpu"),
              shape=dict(M=M, D=D), chunk=lazy_read.CHUNK, channels=lazy_read.CHANNELS,
              checks=checks, rows=rows,
              checks_passed=all(c["ok"] for c in checks), complete=True,
              wall_s=time.perf_counter() - started)
  path = common.write_json_file(common.output_path(_OUT.value, "lazy_read.json"), data)
  print(f"[lazy_read] wrote {path}")


if __name__ == "__main__":
  app.run(main)
