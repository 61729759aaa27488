"""Do the lazy and eager baselines stream their buffers as fast at B = 8 as at B = 1?

  PYTHONPATH=. python experiments/baselines_gpu.py [--out=PATH]
  PYTHONPATH=. python experiments/baselines_gpu.py --tiny      # CPU smoke run (interpret mode)

Each step of the baselines streams a window of W positions of its (M, B, Lb, D) buffer against
a window of the filter (flash_lcsm_jax/ops/baseline_kernels.py):
  lazy read    z[m, b, d] = sum_{s < W} hist[m, b, s, d] * hr[m, off + s, d]
  eager write  buf[m, b, t+1+j, d] += h[m, 1+j, d] * u[m, b, d]
Least traffic: B + 1 (lazy) and 2B + 1 (eager) rows of M * W * D words. At B = 1 lazy reads at
4.2-4.4 TB/s on an H200; at B = 8 at 2.48 TB/s by the B + 1 count, which is 4.41 TB/s if the
filter window is counted once per batch row (experiments/NOTES.md, session 14): XLA's fusions
most likely fetch it once per row. Forms timed on the paper shape (M = 18, D = 864):

  lazy:xla_bsd   the engine's lazy read today (history (M, B, W, D));
  lazy:xla_sdb   history (M, W, D, B): batch minor, a reduction block holds every row of its
                 channels;
  lazy:xla_sbd   history (M, W, B, D);
  lazy:pallas    ops/baseline_kernels on today's layout: each (chunk, channels) filter tile
                 loaded once for the B history tiles at the same positions, per window split;
  eager:xla      the engine's eager write today (slice, multiply-add, in-place update);
  eager:pallas   ops/baseline_kernels' in-place update, filter tiles loaded once per batch.

Every form is checked against float64 on a small random case first (and timed only if it
passes); each timing is the median of --repeats calls (one call moves GBs: host overhead is
negligible). TBps_least counts the least traffic, TBps_filter_per_row the filter once per row.
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
from flash_lcsm_jax.ops import baseline_kernels as bk

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT or results/).")
_CASES = flags.DEFINE_list("cases", ["1:32768", "1:65536", "8:16384", "8:32768"],
                           "B:W pairs (batch rows, window).")
FORMS = ("lazy:xla_bsd", "lazy:xla_sdb", "lazy:xla_sbd", "lazy:pallas", "eager:xla",
         "eager:pallas")
_FORMS = flags.DEFINE_list("forms", list(FORMS), "Forms.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed calls per entry (median).")
_SPLITS = flags.DEFINE_list("splits", ["8", "32"], "Window splits of the Pallas forms.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run: small shapes, Pallas in interpret mode.")


def history_layout(form: str) -> str:
  return {"lazy:xla_sdb": "sdb", "lazy:xla_sbd": "sbd"}.get(form, "bsd")


def to_layout(hist_bsd: jax.Array, layout: str) -> jax.Array:
  """(M, B, W, D) -> the form's history layout."""
  return {"bsd": hist_bsd, "sdb": jnp.transpose(hist_bsd, (0, 2, 3, 1)),
          "sbd": jnp.transpose(hist_bsd, (0, 2, 1, 3))}[layout]


def xla_read(hist: jax.Array, hr: jax.Array, off: jax.Array, layout: str, window: int):
  """Lazy's multiply-reduce in the given history layout; returns (M, B, D)."""
  if layout == "bsd":
    return bk.lazy_reference(hist, hr, off, window)
  h = jax.lax.dynamic_slice_in_dim(hr, off, window, axis=1)  # (M, W, D)
  if layout == "sdb":
    return jnp.transpose(jnp.sum(hist[:, :window] * h[..., None], axis=1), (0, 2, 1))
  return jnp.sum(hist[:, :window] * h[:, :, None], axis=1)


def form_fn(form: str, window: int, splits: int, interpret: bool):
  """The jitted step: lazy (hist, hr, off) -> z; eager (buf, h, u, t) -> buf (donated)."""
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")
  kernel = "interpret" if interpret else "pallas"
  if form == "lazy:pallas":
    return jax.jit(functools.partial(bk.history_read, window=window, splits=splits,
                                     implementation=kernel))
  if form.startswith("lazy:"):
    return jax.jit(functools.partial(xla_read, layout=history_layout(form), window=window))
  impl = kernel if form == "eager:pallas" else "xla"
  return jax.jit(functools.partial(bk.future_update, window=window, splits=splits,
                                   implementation=impl), donate_argnums=0)


def check(form: str, splits: int, interpret: bool, rng) -> float:
  """Max relative error of the form against float64 on a fresh random case."""
  M, B, W, D, extra = 2, 3, 8 * splits * bk.CHUNK, 2 * bk.CHANNELS, 37
  fn = form_fn(form, W, splits, interpret)
  if form.startswith("lazy:"):
    hist = rng.standard_normal((M, B, W, D)).astype(np.float32)
    hr = rng.standard_normal((M, W + extra, D)).astype(np.float32)
    off = int(rng.integers(0, extra + 1))
    want = np.einsum("mbsd,msd->mbd", hist.astype(np.float64),
                     hr[:, off:off + W].astype(np.float64))
    got = np.asarray(fn(to_layout(jnp.asarray(hist), history_layout(form)), jnp.asarray(hr),
                        jnp.int32(off)))
  else:
    buf = rng.standard_normal((M, B, W + extra, D)).astype(np.float32)
    h = rng.standard_normal((M, W + 1, D)).astype(np.float32)
    u = rng.standard_normal((M, B, D)).astype(np.float32)
    t = int(rng.integers(0, extra))
    want = buf.astype(np.float64)
    want[:, :, t + 1:t + 1 + W] += h[:, None, 1:].astype(np.float64) * u[:, :, None]
    got = np.asarray(fn(jnp.asarray(buf), jnp.asarray(h), jnp.asarray(u), jnp.int32(t)))
  return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _median(call, repeats: int) -> float:
  times = []
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(call(i))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def time_form(form: str, batch: int, window: int, splits: int, repeats: int, M: int, D: int,
              interpret: bool) -> float:
  key = jax.random.PRNGKey(batch * 7 + window)
  fn = form_fn(form, window, splits, interpret)
  filt = jax.random.normal(jax.random.fold_in(key, 1), (M, 2 * window, D), jnp.float32)
  if form.startswith("lazy:"):
    shape = {"bsd": (M, batch, window, D), "sdb": (M, window, D, batch),
             "sbd": (M, window, batch, D)}[history_layout(form)]
    hist = jax.random.normal(key, shape, jnp.float32)
    off = jnp.int32(window // 3)
    jax.block_until_ready(fn(hist, filt, off))  # compile
    return _median(lambda i: fn(hist, filt, off + i), repeats)
  state = {"buf": jax.random.normal(key, (M, batch, 2 * window, D), jnp.float32)}
  u = jax.random.normal(jax.random.fold_in(key, 2), (M, batch, D), jnp.float32)

  def call(i):  # the buffer is donated and updated in place, as in the engine
    state["buf"] = fn(state["buf"], filt, u, jnp.int32(i))
    return state["buf"]
  jax.block_until_ready(call(0))  # compile
  return _median(call, repeats)


def traffic_rows(form: str, batch: int) -> tuple[int, int]:
  """(least, filter-once-per-row) traffic in rows of M * W * D words."""
  if form.startswith("lazy:"):
    return batch + 1, 2 * batch
  return 2 * batch + 1, 3 * batch


def main(argv):
  del argv
  started = time.perf_counter()
  tiny = _TINY.value
  interpret = tiny or jax.default_backend() != "gpu"
  M, D = (2, 64) if tiny else (18, 864)
  cases = [(1, 1024), (4, 2048)] if tiny else [
      tuple(int(v) for v in c.split(":")) for c in _CASES.value]
  splits_list = [int(s) for s in _SPLITS.value]
  variants = [(form, s) for form in _FORMS.value
              for s in (splits_list if form.endswith(":pallas") else [splits_list[0]])]
  rng = np.random.default_rng()
  rows, checks = [], []
  for form, splits in variants:
    try:
      err = check(form, splits, interpret, rng)
      checks.append(dict(form=form, splits=splits, rel_err=err, ok=err <= 1e-5))
    except Exception as e:  # pylint: disable=broad-except
      traceback.print_exc()
      checks.append(dict(form=form, splits=splits, ok=False, error=common.error_text(e)))
    common.log("baselines", f"check {checks[-1]}")
  passed = {(c["form"], c["splits"]) for c in checks if c["ok"]}
  for batch, window in cases:
    for form, splits in variants:
      if (form, splits) not in passed:
        continue
      row = dict(form=form, batch=batch, window=window,
                 splits=splits if form.endswith(":pallas") else None)
      try:
        seconds = time_form(form, batch, window, splits, _REPEATS.value, M, D, interpret)
        least, per_row = (r * M * window * D * 4 for r in traffic_rows(form, batch))
        row.update(ms=seconds * 1e3, least_bytes=least, TBps_least=least / seconds / 1e12,
                   TBps_filter_per_row=per_row / seconds / 1e12)
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc()
        row["error"] = common.error_text(e)
      rows.append(row)
      common.log("baselines", str(row))
  data = dict(experiment="baselines", environment=common.environment("cpu" if tiny else "gpu"),
              shape=dict(M=M, D=D), chunk=bk.CHUNK, channels=bk.CHANNELS, checks=checks,
              rows=rows, checks_passed=all(c["ok"] for c in checks), complete=True,
              wall_s=time.perf_counter() - started)
  path = common.write_json_file(common.output_path(_OUT.value, "baselines.json"), data)
  print(f"[baselines] wrote {path}")


if __name__ == "__main__":
  app.run(main)
