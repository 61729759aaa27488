"""Do the lazy and eager baselines stream their buffers as fast at B = 8 as at B = 1?

  PYTHONPATH=. python experiments/baselines_gpu.py [--out=PATH]
  PYTHONPATH=. python experiments/baselines_gpu.py --tiny      # CPU smoke run (interpret mode)

Each step of the baselines streams a window of W positions of its buffer against a window of
the filter (flash_lcsm_jax/ops/baseline_kernels.py), written here with the buffer as
(M, B, W, D):
  lazy read    z[m, b, d] = sum_{s < W} hist[m, b, s, d] * hr[m, off + s, d]
  eager write  buf[m, b, t+1+j, d] += h[m, 1+j, d] * u[m, b, d]
Least traffic: B + 1 (lazy) and 2B + 1 (eager) rows of M * W * D words. Until session 15 the
engine kept (M, B, W, D) ("bsd"), and XLA's fusions fetched the filter window once per batch
row (lazy at B = 8 read at 1.6-1.7 TB/s by the B + 1 count on an H100, 2.9-3.0 by the 2B
count). Since then it keeps (M, W, B, D) ("sbd": time major, the batch inside). Forms timed on
the paper shape (M = 18, D = 864); the layout is the form's suffix:

  lazy:xla_sbd    the engine's lazy read (bk.lazy_reference on (M, W, B, D));
  lazy:xla_bsd    the same multiply-reduce on (M, B, W, D) (the engine before session 15);
  lazy:xla_sdb    on (M, W, D, B): batch minor;
  lazy:pallas     ops/baseline_kernels' read on the engine's layout: each (chunk, channels)
                  filter tile loaded once for the B history tiles at the same positions;
  eager:xla_sbd   the engine's eager write (slice, multiply-add, in-place update);
  eager:xla_bsd   the same on (M, B, W, D) (the engine before session 15; "eager:xla" in
                  session 15's first call);
  eager:pallas    ops/baseline_kernels' in-place update on the engine's layout.

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
FORMS = ("lazy:xla_sbd", "lazy:xla_bsd", "lazy:xla_sdb", "lazy:pallas", "eager:xla_sbd",
         "eager:xla_bsd", "eager:pallas")
_FORMS = flags.DEFINE_list("forms", list(FORMS), "Forms.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed calls per entry (median).")
_SPLITS = flags.DEFINE_list("splits", ["8", "32"], "Window splits of the Pallas forms.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run: small shapes, Pallas in interpret mode.")
# The buffer's axes in each layout, as a permutation of (M, B, W, D).
LAYOUTS = {"bsd": (0, 1, 2, 3), "sbd": (0, 2, 1, 3), "sdb": (0, 2, 3, 1)}


def layout(form: str) -> str:
  """The form's buffer layout (the kernels run on the engine's, "sbd")."""
  suffix = form.rsplit("_", 1)[-1]
  return suffix if suffix in LAYOUTS else "sbd"


def to_layout(buf_bsd, name: str):
  """(M, B, W, D) -> the layout's axis order (numpy or jax arrays)."""
  return buf_bsd.transpose(LAYOUTS[name])


def xla_read(hist: jax.Array, hr: jax.Array, off: jax.Array, layout_name: str, window: int):
  """Lazy's multiply-reduce on a history in the given layout; returns (M, B, D)."""
  h = jax.lax.dynamic_slice_in_dim(hr, off, window, axis=1)  # (M, W, D)
  if layout_name == "bsd":
    return jnp.sum(hist[:, :, :window] * h[:, None], axis=2)
  if layout_name == "sdb":
    return jnp.transpose(jnp.sum(hist[:, :window] * h[..., None], axis=1), (0, 2, 1))
  return bk.lazy_reference(hist, hr, off, window)


def xla_update_bsd(buf: jax.Array, h: jax.Array, u: jax.Array, t: jax.Array, window: int):
  """Eager's update on (M, B, Lb, D), as the engine did before session 15."""
  future = jax.lax.dynamic_slice_in_dim(buf, t + 1, window, axis=2)
  future = future + h[:, None, 1:window + 1] * u[:, :, None]
  return jax.lax.dynamic_update_slice_in_dim(buf, future, t + 1, axis=2)


def form_fn(form: str, window: int, splits: int, interpret: bool):
  """The jitted step: lazy (hist, hr, off) -> z; eager (buf, h, u, t) -> buf (donated)."""
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")
  kernel = "interpret" if interpret else "pallas"
  if form == "lazy:pallas":
    return jax.jit(functools.partial(bk.history_read, window=window, splits=splits,
                                     implementation=kernel))
  if form.startswith("lazy:"):
    return jax.jit(functools.partial(xla_read, layout_name=layout(form), window=window))
  if form == "eager:xla_bsd":
    return jax.jit(functools.partial(xla_update_bsd, window=window), donate_argnums=0)
  impl = kernel if form == "eager:pallas" else "xla"
  return jax.jit(functools.partial(bk.future_update, window=window, splits=splits,
                                   implementation=impl), donate_argnums=0)


def check(form: str, splits: int, interpret: bool, rng) -> float:
  """Max relative error of the form against float64 on a fresh random case."""
  M, B, W, D, extra = 2, 3, 8 * splits * bk.CHUNK, 2 * bk.CHANNELS, 37
  fn = form_fn(form, W, splits, interpret)
  name = layout(form)
  if form.startswith("lazy:"):
    hist = rng.standard_normal((M, B, W, D)).astype(np.float32)
    hr = rng.standard_normal((M, W + extra, D)).astype(np.float32)
    off = int(rng.integers(0, extra + 1))
    want = np.einsum("mbsd,msd->mbd", hist.astype(np.float64),
                     hr[:, off:off + W].astype(np.float64))
    got = np.asarray(fn(jnp.asarray(to_layout(hist, name)), jnp.asarray(hr), jnp.int32(off)))
  else:
    buf = rng.standard_normal((M, B, W + extra, D)).astype(np.float32)
    h = rng.standard_normal((M, W + 1, D)).astype(np.float32)
    u = rng.standard_normal((M, B, D)).astype(np.float32)
    t = int(rng.integers(0, extra))
    want = buf.astype(np.float64)
    want[:, :, t + 1:t + 1 + W] += h[:, None, 1:].astype(np.float64) * u[:, :, None]
    got = np.asarray(fn(jnp.asarray(to_layout(buf, name)), jnp.asarray(h), jnp.asarray(u),
                        jnp.int32(t)))
    want = to_layout(want, name)
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
  def shape(length):
    return tuple((M, batch, length, D)[i] for i in LAYOUTS[layout(form)])

  if form.startswith("lazy:"):
    hist = jax.random.normal(key, shape(window), jnp.float32)
    off = jnp.int32(window // 3)
    jax.block_until_ready(fn(hist, filt, off))  # compile
    return _median(lambda i: fn(hist, filt, off + i), repeats)
  state = {"buf": jax.random.normal(key, shape(2 * window), jnp.float32)}
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
