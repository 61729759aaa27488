"""The lazy and eager baselines' memory-bound steps as Pallas kernels that load each filter tile
once for every batch row.

Both baselines stream a window of W positions of their (M, Lb, B, D) buffer (time major, the
batch inside: engine/mixers.py) against a window of the filter (M, *, D) every step:

  lazy read    z[m, b, d] = sum_{s < W} hist[m, s, b, d] * hr[m, off + s, d]   (off = stop-1-t)
  eager write  buf[m, t+1+j, b, d] += h[m, 1+j, d] * u[m, b, d],   j < W

Their least traffic is B + 1 (lazy) and 2B + 1 (eager) rows of W x D words per layer. With the
batch outside the time axis, (M, B, Lb, D), XLA's fusions fetched the filter window once per
batch row (2B and 3B rows; lazy at B = 8 read at 2.48 TB/s by the B + 1 count on an H200,
B = 1's rate by the 2B count). With the batch inside, XLA's lazy read comes close to the least
traffic (H100, B = 8: 2.8-2.9 TB/s by the B + 1 count against 1.6-1.7 with the batch outside;
session 15). Here a program (layer m, CHANNELS-channel block, window split) loads a
(CHUNK, CHANNELS) filter tile once and the B buffer tiles at the same positions.

  lazy    float32 sums per split, XLA adds the splits (M * splits * B * D words: nothing next to
          the history);
  eager   updates the buffer in place (input_output_aliases), touching only t+1..t+W.

Three parts per kernel, as for every kernel of the package: the reference (plain jnp), the
kernel (`interpret` static) and the dispatcher (`history_read`, `future_update`: Triton on GPU,
XLA elsewhere and where the shapes do not tile (D not a multiple of CHANNELS, W not a multiple
of CHUNK) or Triton fails; interpret mode only on request, for tests: these are baselines, and
the interpreter would make them slow on a CPU).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops.pallas_direct import pl

CHANNELS, CHUNK = 32, 16  # one load: CHUNK positions x CHANNELS channels (128-byte rows)
MAX_SPLITS = 32
MIN_SPLIT = 512  # positions per split: fewer and the per-program set-up costs more than it saves


def default_splits(window: int) -> int:
  """Window splits: enough programs to fill a GPU at long windows (M * D/32 * splits), at least
  MIN_SPLIT positions each; a power of two dividing window / CHUNK."""
  splits = 1
  while (splits * 2 <= MAX_SPLITS and window % (splits * 2 * CHUNK) == 0
         and window // (splits * 2) >= MIN_SPLIT):
    splits *= 2
  return splits


def tiles(buf_shape: tuple[int, ...], window: int, splits: int) -> str | None:
  """Why the kernels cannot take a (M, Lb, B, D) buffer and this window, or None."""
  D = buf_shape[-1]
  if D % CHANNELS:
    return f"D = {D} is not a multiple of {CHANNELS}"
  if splits < 1 or window % (splits * CHUNK):
    return f"window {window} is not a multiple of splits * {CHUNK} = {splits * CHUNK}"
  if buf_shape[1] < window:
    return f"buffer length {buf_shape[1]} is shorter than the window {window}"
  return None


def _program(window: int, splits: int):
  """(layer m, channel slice, first position of this program's split, loop count)."""
  m, c, s = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  per_split = window // splits
  return m, pl.ds(c * CHANNELS, CHANNELS), s, s * per_split, per_split // CHUNK


def _implementation(name: str, buf: jax.Array, filt: jax.Array, window: int, splits: int | None,
                    implementation: str | None, kernel, extra=()) -> tuple[str, int]:
  """Validated ("xla" | "pallas" | "interpret", splits) for one call of a dispatcher."""
  if implementation is not None and implementation not in pallas_direct.IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {pallas_direct.IMPLEMENTATIONS}, "
                     f"got {implementation!r}")
  if (buf.ndim != 4 or filt.ndim != 3 or filt.shape[0] != buf.shape[0]
      or filt.shape[2] != buf.shape[3]):
    raise ValueError(f"{name}: expected a buffer (M, L, B, D) and a filter (M, L', D), got "
                     f"{buf.shape} and {filt.shape}")
  if not 1 <= window <= min(buf.shape[1], filt.shape[1]):
    raise ValueError(f"{name}: window must be in [1, {min(buf.shape[1], filt.shape[1])}], got "
                     f"{window}")
  splits = default_splits(window) if splits is None else splits
  on_gpu = pallas_direct._backend() in ("gpu", "cuda")  # pylint: disable=protected-access
  if implementation == "xla" or (implementation is None and not on_gpu):
    return "xla", splits
  why = tiles(buf.shape, window, splits)
  if why is not None:
    if implementation is not None:
      raise ValueError(f"{name}: {why}")
    return "xla", splits
  probe = pallas_direct._Probe(  # pylint: disable=protected-access
      kernel, (jax.ShapeDtypeStruct(buf.shape, buf.dtype),
               jax.ShapeDtypeStruct(filt.shape, filt.dtype)) + tuple(extra)
      + (jax.ShapeDtypeStruct((), jnp.int32),),
      (("window", window), ("splits", splits), ("interpret", False)))
  return pallas_direct.resolve_implementation(name, implementation, probe), splits


# ----------------------------------------------------------------------------- lazy: read


def lazy_reference(hist: jax.Array, hr: jax.Array, off: jax.Array, window: int) -> jax.Array:
  """XLA's multiply-reduce: (M, B, D) in float32."""
  h = jax.lax.dynamic_slice_in_dim(hr, off, window, axis=1)  # (M, W, D)
  return jnp.sum(hist[:, :window] * h[:, :, None], axis=1)


def _read_kernel(off_ref, hr_ref, hist_ref, out_ref, *, window: int, splits: int, batch: int):
  m, channels, s, start, count = _program(window, splits)
  off = off_ref[0]

  def body(i, acc):
    pos = start + i * CHUNK
    h = hr_ref[m, pl.ds(off + pos, CHUNK), channels].astype(jnp.float32)  # once for all rows
    return tuple(a + hist_ref[m, pl.ds(pos, CHUNK), b, channels].astype(jnp.float32) * h
                 for b, a in enumerate(acc))

  acc = tuple(jnp.zeros((CHUNK, CHANNELS), jnp.float32) for _ in range(batch))
  acc = jax.lax.fori_loop(0, count, body, acc)
  for b, a in enumerate(acc):
    out_ref[m, s, b, channels] = jnp.sum(a, axis=0)


@functools.partial(jax.jit, static_argnames=("window", "splits", "interpret"))
def lazy_read_pallas(hist: jax.Array, hr: jax.Array, off: jax.Array, *, window: int,
                     splits: int, interpret: bool = False) -> jax.Array:
  """z (M, B, D) float32 from hist (M, >= window, B, D) and hr (M, >= off + window, D).

  off is clamped to [0, Lh - window] (as XLA's dynamic slice clamps it): no read leaves hr.
  """
  M, _, B, D = hist.shape
  why = tiles(hist.shape, window, splits)
  if why:
    raise ValueError(f"lazy_read_pallas: {why}")
  off = jnp.clip(jnp.asarray(off, jnp.int32), 0, hr.shape[1] - window)
  kernel = functools.partial(_read_kernel, window=window, splits=splits, batch=B)
  partial = pl.pallas_call(
      kernel,
      out_shape=jax.ShapeDtypeStruct((M, splits, B, D), jnp.float32),
      grid=(M, D // CHANNELS, splits),
      in_specs=[pl.BlockSpec(), pl.BlockSpec(), pl.BlockSpec()],  # indexed in the kernel
      out_specs=pl.BlockSpec(),
      interpret=interpret,
      compiler_params=None if interpret else pallas_direct.triton_compiler_params(4, 1),
      name="lazy_history_read",
  )(jnp.reshape(off, (1,)), hr, hist)
  return jnp.sum(partial, axis=1)


def history_read(hist: jax.Array, hr: jax.Array, off: jax.Array, window: int, *,
                 implementation: str | None = None, splits: int | None = None) -> jax.Array:
  """Lazy's read: (M, B, D) float32.

  Args:
    hist: (M, Lb >= window, B, D) history.
    hr: (M, Lh >= off + window, D) reversed, zero-padded filter.
    off: int32 scalar (traced or not), stop - 1 - t.
    window: static number of history positions summed.
    implementation: None picks Triton on GPU and XLA elsewhere or where the shapes do not tile
      (logged once); or one of "pallas", "interpret", "xla" (the kernel ones raise where the
      shapes do not tile).
    splits: window splits of the kernel (default `default_splits(window)`).
  """
  choice, splits = _implementation("lazy read", hist, hr, window, splits, implementation,
                                   lazy_read_pallas)
  if choice == "xla":
    return lazy_reference(hist, hr, off, window)
  return lazy_read_pallas(hist, hr, off, window=window, splits=splits,
                          interpret=choice == "interpret")


# ----------------------------------------------------------------------------- eager: write


def eager_reference(buf: jax.Array, h: jax.Array, u: jax.Array, t: jax.Array,
                    window: int) -> jax.Array:
  """XLA's update: buf[:, t+1 : t+1+W] += h[:, 1 : 1+W] * u (slices clamped as XLA's)."""
  future = jax.lax.dynamic_slice_in_dim(buf, t + 1, window, axis=1)
  future = future + h[:, 1:window + 1, None] * u[:, None]
  return jax.lax.dynamic_update_slice_in_dim(buf, future, t + 1, axis=1)


def _update_kernel(t_ref, h_ref, u_ref, buf_ref, out_ref, *, window: int, splits: int,
                   batch: int):
  del buf_ref  # aliased with out_ref
  m, channels, _, start, count = _program(window, splits)
  first = t_ref[0] + 1
  us = [u_ref[m, b, channels].astype(jnp.float32)[None, :] for b in range(batch)]

  def body(i, carry):
    pos = start + i * CHUNK
    h = h_ref[m, pl.ds(1 + pos, CHUNK), channels].astype(jnp.float32)  # once for all rows
    for b in range(batch):
      view = out_ref.at[m, pl.ds(first + pos, CHUNK), b, channels]
      view[...] = (view[...].astype(jnp.float32) + h * us[b]).astype(out_ref.dtype)
    return carry

  jax.lax.fori_loop(0, count, body, 0)


@functools.partial(jax.jit, static_argnames=("window", "splits", "interpret"))
def eager_update_pallas(buf: jax.Array, h: jax.Array, u: jax.Array, t: jax.Array, *,
                        window: int, splits: int, interpret: bool = False) -> jax.Array:
  """buf (M, Lb, B, D) with h[:, 1:1+W] * u (M, B, D) added at t+1..t+W, in place (aliased).

  t + 1 is clamped to [0, Lb - W] (as XLA's dynamic slices clamp it): no write leaves buf.
  """
  M, Lb, B, D = buf.shape
  why = tiles(buf.shape, window, splits)
  if why:
    raise ValueError(f"eager_update_pallas: {why}")
  if h.shape[1] < window + 1:
    raise ValueError(f"eager_update_pallas: the filter holds {h.shape[1]} taps, the window "
                     f"needs {window + 1}")
  t = jnp.clip(jnp.asarray(t, jnp.int32) + 1, 0, Lb - window) - 1
  kernel = functools.partial(_update_kernel, window=window, splits=splits, batch=B)
  return pl.pallas_call(
      kernel,
      out_shape=jax.ShapeDtypeStruct(buf.shape, buf.dtype),
      grid=(M, D // CHANNELS, splits),
      in_specs=[pl.BlockSpec(), pl.BlockSpec(), pl.BlockSpec(), pl.BlockSpec()],
      out_specs=pl.BlockSpec(),
      input_output_aliases={3: 0},
      interpret=interpret,
      compiler_params=None if interpret else pallas_direct.triton_compiler_params(4, 1),
      name="eager_future_update",
  )(jnp.reshape(t, (1,)), h, u, buf)


def future_update(buf: jax.Array, h: jax.Array, u: jax.Array, t: jax.Array, window: int, *,
                  implementation: str | None = None, splits: int | None = None) -> jax.Array:
  """Eager's write: buf with u_t's contribution added to positions t+1..t+W.

  Args:
    buf: (M, Lb, B, D) pending outputs, Lb >= t + 1 + window.
    h: (M, taps > window, D) filter taps h_0, h_1, ...
    u: (M, B, D) the step's mixer input.
    t: int32 scalar (traced or not).
    window: static number of future positions updated.
    implementation, splits: as for `history_read`.
  """
  choice, splits = _implementation("eager write", buf, h, window, splits, implementation,
                                   eager_update_pallas,
                                   (jax.ShapeDtypeStruct(u.shape, u.dtype),))
  if h.shape[1] < window + 1:
    raise ValueError(f"eager write: the filter holds {h.shape[1]} taps, the window needs "
                     f"{window + 1}")
  if u.shape != (buf.shape[0], buf.shape[2], buf.shape[3]):
    want = (buf.shape[0], buf.shape[2], buf.shape[3])
    raise ValueError(f"eager write: u must be (M, B, D) = {want}, got {u.shape}")
  if choice == "xla":
    return eager_reference(buf, h, u, t, window)
  return eager_update_pallas(buf, h, u, t, window=window, splits=splits,
                             interpret=choice == "interpret")
