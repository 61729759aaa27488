"""The lazy engine's history read as one Pallas kernel that loads each filter tile once per batch.

Lazy's read at position t (engine/mixers.read) is

  z[m, b, d] = sum_{s < W} hist[m, b, s, d] * hr[m, off + s, d],     off = stop - 1 - t,

over the (M, B, >= W, D) history and the reversed, zero-padded filter hr (M, Lh, D). Its least
traffic is (B + 1) * M * W * D words: every history row once and the filter window once. XLA's
multiply-reduce (`reference`) reaches that at B = 1, but a reduction block serves one batch row,
so at B > 1 the filter window can be fetched from memory once per row. Here a program (layer m,
channel block, window split) loads a (CHUNK, CHANNELS) filter tile once and the B history tiles
at the same positions, accumulates (B, CHUNK, CHANNELS) float32 sums, and writes one partial per
split; XLA adds the splits (M * splits * B * D words: nothing next to the history).

Three parts, as for every kernel of the package: `reference` (plain jnp), `lazy_read_pallas`
(the kernel, `interpret` static) and `history_read` (the dispatcher: Triton on GPU, XLA elsewhere
and where the shapes do not tile (D not a multiple of CHANNELS, W not a multiple of CHUNK) or
Triton fails; interpret mode only on request, for tests: lazy is a baseline, and the interpreter
would make it slow on a CPU).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops.pallas_direct import pl

CHANNELS, CHUNK = 32, 16  # one load: CHUNK positions x CHANNELS channels (128-byte rows)
MAX_SPLITS = 32
MIN_SPLIT = 512  # positions per split: fewer and the partial sums cost more than they save


def default_splits(window: int) -> int:
  """Window splits: enough programs to fill a GPU at long windows (M * D/32 * splits), at least
  MIN_SPLIT positions each; a power of two dividing window / CHUNK."""
  splits = 1
  while (splits * 2 <= MAX_SPLITS and window % (splits * 2 * CHUNK) == 0
         and window // (splits * 2) >= MIN_SPLIT):
    splits *= 2
  return splits


def reference(hist: jax.Array, hr: jax.Array, off: jax.Array, window: int) -> jax.Array:
  """XLA's multiply-reduce: (M, B, D) in float32."""
  h = jax.lax.dynamic_slice_in_dim(hr, off, window, axis=1)  # (M, W, D)
  return jnp.sum(hist[:, :, :window] * h[:, None], axis=2)


def _kernel(off_ref, hr_ref, hist_ref, out_ref, *, window: int, splits: int, batch: int):
  """Program (m, channel block c, split s): the partial sum over [s * W/S, (s+1) * W/S)."""
  m, c, s = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  per_split = window // splits
  channels = pl.ds(c * CHANNELS, CHANNELS)
  start = s * per_split
  off = off_ref[0]

  def body(i, acc):
    pos = start + i * CHUNK
    h = hr_ref[m, pl.ds(off + pos, CHUNK), channels].astype(jnp.float32)  # once for all rows
    return tuple(a + hist_ref[m, b, pl.ds(pos, CHUNK), channels].astype(jnp.float32) * h
                 for b, a in enumerate(acc))

  acc = tuple(jnp.zeros((CHUNK, CHANNELS), jnp.float32) for _ in range(batch))
  acc = jax.lax.fori_loop(0, per_split // CHUNK, body, acc)
  for b, a in enumerate(acc):
    out_ref[m, s, b, channels] = jnp.sum(a, axis=0)


def tiles(hist_shape: tuple[int, ...], window: int, splits: int) -> str | None:
  """Why the kernel cannot take these shapes, or None."""
  D = hist_shape[-1]
  if D % CHANNELS:
    return f"D = {D} is not a multiple of {CHANNELS}"
  if splits < 1 or window % (splits * CHUNK):
    return f"window {window} is not a multiple of splits * {CHUNK} = {splits * CHUNK}"
  if hist_shape[2] < window:
    return f"history length {hist_shape[2]} is shorter than the window {window}"
  return None


@functools.partial(jax.jit, static_argnames=("window", "splits", "interpret"))
def lazy_read_pallas(hist: jax.Array, hr: jax.Array, off: jax.Array, *, window: int,
                     splits: int, interpret: bool = False) -> jax.Array:
  """z (M, B, D) float32 from hist (M, B, >= window, D) and hr (M, >= off + window, D).

  off is clamped to [0, Lh - window] (as XLA's dynamic slice clamps it), so no read leaves hr.
  """
  M, B, _, D = hist.shape
  why = tiles(hist.shape, window, splits)
  if why:
    raise ValueError(f"lazy_read_pallas: {why}")
  off = jnp.clip(jnp.asarray(off, jnp.int32), 0, hr.shape[1] - window)
  kernel = functools.partial(_kernel, window=window, splits=splits, batch=B)
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
    hist: (M, B, Lb >= window, D) history.
    hr: (M, Lh >= off + window, D) reversed, zero-padded filter.
    off: int32 scalar (traced or not), stop - 1 - t.
    window: static number of history positions summed.
    implementation: None picks Triton on GPU and XLA elsewhere (logged once); or one of
      "pallas", "interpret", "xla".
    splits: window splits of the kernel (default `default_splits(window)`).
  """
  if implementation is not None and implementation not in pallas_direct.IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {pallas_direct.IMPLEMENTATIONS}, "
                     f"got {implementation!r}")
  if hist.ndim != 4 or hr.ndim != 3 or hr.shape[0] != hist.shape[0] or hr.shape[2] != hist.shape[3]:
    raise ValueError(f"expected hist (M, B, L, D) and hr (M, Lh, D), got {hist.shape} and "
                     f"{hr.shape}")
  if not 1 <= window <= min(hist.shape[2], hr.shape[1]):
    raise ValueError(f"window must be in [1, {min(hist.shape[2], hr.shape[1])}], got {window}")
  if implementation == "xla" or (implementation is None and
                                 pallas_direct._backend() not in ("gpu", "cuda")):  # pylint: disable=protected-access
    return reference(hist, hr, off, window)
  splits = default_splits(window) if splits is None else splits
  why = tiles(hist.shape, window, splits)
  if why is not None:
    if implementation in ("pallas", "interpret"):
      raise ValueError(f"history_read: {why}")
    return reference(hist, hr, off, window)
  probe = pallas_direct._Probe(  # pylint: disable=protected-access
      lazy_read_pallas, (jax.ShapeDtypeStruct(hist.shape, hist.dtype),
                         jax.ShapeDtypeStruct(hr.shape, hr.dtype),
                         jax.ShapeDtypeStruct((), jnp.int32)),
      (("window", window), ("splits", splits), ("interpret", False)))
  choice = pallas_direct.resolve_implementation("lazy read", implementation, probe)
  if choice == "xla":
    return reference(hist, hr, off, window)
  return lazy_read_pallas(hist, hr, off, window=window, splits=splits,
                          interpret=choice == "interpret")
