"""How each engine keeps and advances the long-convolution state.

An engine owns one buffer per layer (stacked on M) and three pure functions used around the
shared per-token path (`hyena.token_step`):

  read(consts, buffer, t, window) -> acc_t (M, B, D): contribution of positions < t at t
  write_and_read_next(consts, buffer, t, u_t, level, window) -> (buffer, acc_{t+1} or None):
         store / push u_t (M, B, D), and the next position's acc where the write produced it
         on the way (flash levels on the fused step kernel)

  lazy   buffer = history u (M, L, B, D). read sums h[t-s] u_s over the whole history every step
         (the standard approach, O(t) per step); write stores u_t.
  eager  buffer = pending outputs (M, Lb, B, D). read takes acc_t; write adds h[j-t] u_t to
         every future j (O(L - t) per step).
  flash  buffer = (M, B, D, Lb), time minor, holding u at positions <= t and pending outputs
         at positions > t. read takes acc_t; write stores u_t and runs the gray tile of level
         `level` for every layer in one batched call (tau).

The two quadratic baselines keep time major and the batch inside it, (M, L, B, D): each filter
tap then multiplies the B rows next to it, which XLA's fusions read once for all rows. With the
batch outside, (M, B, L, D), lazy's read at B = 8 took 1.7x longer on an H100 (filter window
fetched once per row; session 15, experiments/baselines_gpu.py). At B = 1 both are one layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from flash_lcsm_jax.engine import schedule
from flash_lcsm_jax.ops import baseline_kernels, fftconv, tau as tau_ops

METHODS = ("flash", "lazy", "eager")
# How lazy reads its history and eager updates its future: "xla" (XLA's fusions) or
# ops/baseline_kernels, which load each filter tile once for every batch row ("pallas": Triton on
# a GPU, XLA elsewhere; "interpret": the kernels' bodies as XLA ops, for tests). Windows the
# kernels do not tile run "xla".
BASELINE_KERNELS = ("xla", "pallas", "interpret")


def check_method(method: str):
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")


@dataclasses.dataclass(frozen=True)
class Plan:
  """Static description of one generation: what buffers look like and which blocks run."""
  method: str
  start: int  # first position fed step by step (= prompt length)
  stop: int  # total positions
  buffer_length: int
  filter_length: int  # taps the engine's constants hold
  blocks: tuple[schedule.Block, ...]
  tau_by_level: tuple[tuple[int, str], ...] = ()  # flash only
  baseline_kernels: str = "xla"  # lazy / eager: BASELINE_KERNELS

  @property
  def levels(self) -> list[int]:
    return sorted({q for b in self.blocks for q in b.levels if q != schedule.NO_TILE})


def make_plan(method: str, start: int, stop: int, block_size: int, tau: str = "hybrid",
              hybrid_table: dict[int, str] | None = None) -> Plan:
  check_method(method)
  if method == "flash":
    blocks = schedule.flash_blocks(start, stop, block_size)
    levels = sorted({q for b in blocks for q in b.levels if q != schedule.NO_TILE})
    by_level = tuple((q, tau_ops.resolve(tau, q, hybrid_table)) for q in levels)
    # Rounded up (to 2^k or 3 * 2^(k-1), at most 1.5x, usually far less) so that generations of
    # nearby lengths share one buffer shape, and with it every compiled block (see
    # Generator._block_static): a new length or prompt length then compiles nothing.
    length = schedule.window_bucket(schedule.flash_buffer_length(start, stop))
    return Plan(method, start, stop, length, stop, tuple(blocks), by_level)
  blocks = schedule.quadratic_blocks(start, stop, block_size, method)
  if method == "lazy":
    # Reversed filter hr[j] = h[stop-1-j], zero-padded so every window slice stays in range.
    pad = max([b.window - b.first for b in blocks] + [0])
    length = max([b.window for b in blocks] + [stop])
    return Plan(method, start, stop, length, stop + pad, tuple(blocks))
  # eager: pending outputs t+1..t+window and taps h_1..h_window must stay in range.
  length = max([b.first + b.num_steps + b.window for b in blocks] + [stop])
  taps = max([b.window + 1 for b in blocks] + [1])
  return Plan(method, start, stop, length, taps, tuple(blocks))


# ----------------------------------------------------------------------------- constants


def make_consts(plan: Plan, filters: jax.Array) -> Any:
  """Per-model constants of the engine, from filters (M, D, >=stop); built once per plan."""
  M, D = filters.shape[:2]
  h = filters[..., :plan.stop]
  if plan.method == "lazy":
    h_rev = jnp.flip(h, -1)
    h_rev = jnp.pad(h_rev, ((0, 0), (0, 0), (0, plan.filter_length - plan.stop)))
    return jnp.swapaxes(h_rev, 1, 2)  # (M, Lh, D)
  if plan.method == "eager":
    h_pad = jnp.pad(h, ((0, 0), (0, 0), (0, max(0, plan.filter_length - h.shape[-1]))))
    return jnp.swapaxes(h_pad[..., :plan.filter_length], 1, 2)  # (M, taps, D)
  return {q: tau_ops.get(name).prepare(h, q) for q, name in plan.tau_by_level}


def buffer_shape(plan: Plan, batch: int, n_layers: int, width: int) -> tuple[int, ...]:
  """Shape of the engine buffer: time minor for flash (FFT tiles), time major with the batch
  inside otherwise (see the module docstring)."""
  if plan.method == "flash":
    return (n_layers, batch, width, plan.buffer_length)
  return (n_layers, plan.buffer_length, batch, width)


def time_axis(method: str) -> int:
  """The buffer's time axis (see buffer_shape)."""
  check_method(method)
  return 3 if method == "flash" else 1


def init_buffer(plan: Plan, filters: jax.Array, batch: int,
                prompt_inputs: jax.Array | None) -> jax.Array:
  """Buffer after the prompt: history (lazy) or the prompt's contribution to the future.

  Built with one concatenation (no zero buffer updated out of place), so the transient memory
  is the buffer plus the prompt's pieces.

  Args:
    prompt_inputs: (M, B, P, D) mixer inputs of the prompt (P = plan.start), or None if P == 0.
  """
  M, D = filters.shape[:2]
  P, L, Lb = plan.start, plan.stop, plan.buffer_length
  shape = buffer_shape(plan, batch, M, D)
  if P == 0:
    return jnp.zeros(shape, jnp.float32)
  axis = time_axis(plan.method)

  def zeros(length):
    return jnp.zeros(shape[:axis] + (length,) + shape[axis + 1:], jnp.float32)

  if plan.method == "lazy":
    return jnp.concatenate([jnp.swapaxes(prompt_inputs, 1, 2), zeros(Lb - P)], axis=axis)
  u = jnp.swapaxes(prompt_inputs, -1, -2)  # (M, B, D, P)
  future = fftconv.future_contribution(u, filters[:, None, :, :L], P, L)  # (M, B, D, L - P)
  if plan.method == "eager":
    return jnp.concatenate([zeros(P), jnp.transpose(future, (0, 3, 1, 2)), zeros(Lb - L)],
                           axis=axis)
  return jnp.concatenate([u, future, zeros(Lb - L)], axis=axis)


# ----------------------------------------------------------------------------- per step


def _baseline_impl(plan: Plan, buf: jax.Array, window: int) -> str | None:
  """The implementation argument of ops/baseline_kernels for this plan and window. "pallas" is
  the dispatcher's own choice (None: Triton on a GPU, XLA where the window does not tile);
  "interpret", an explicit request that would raise there, becomes "xla" for such windows
  (early, short ones)."""
  impl = plan.baseline_kernels
  if impl == "pallas":
    return None
  if impl == "interpret" and baseline_kernels.tiles(
      buf.shape, window, baseline_kernels.default_splits(window)) is not None:
    return "xla"
  return impl


def read(plan: Plan, consts, buf: jax.Array, t: jax.Array, window: int) -> jax.Array:
  """acc_t (M, B, D): the long-convolution contribution of positions < t at position t."""
  if plan.method == "lazy":
    # sum_{s < window} u_s h[t - s]; hr[stop-1-t+s] = h[t-s], zero for s > t (and u_t is not
    # stored yet, so s = t adds nothing). Memory bound, no matmul.
    return baseline_kernels.history_read(buf, consts, plan.stop - 1 - t, window,
                                         implementation=_baseline_impl(plan, buf, window))
  return jax.lax.dynamic_index_in_dim(buf, t, axis=time_axis(plan.method), keepdims=False)


def write_and_read_next(plan: Plan, consts, buf: jax.Array, t: jax.Array, u: jax.Array,
                        level: int, window: int, tau_table: dict[int, str],
                        offset: int = 0) -> tuple[jax.Array, jax.Array | None]:
  """Stores / propagates u_t (M, B, D) once the token has passed every layer; also returns
  acc_{t+1} where the write produced it on the way (None otherwise). The position is t + offset
  (offset a static int: see `pallas_inplace.gray_tile` for why a compiled block passes its first
  position and each step's index).

  Flash levels whose tau has `apply_step` (the fused Pallas step) store u_t, run the tile and
  read position t+1 in one launch; the next step then skips its own `read` (two launches less
  per step, which is what a step of the long convolutions alone is made of).
  """
  if plan.method == "lazy":
    return jax.lax.dynamic_update_index_in_dim(buf, u, t + offset, axis=1), None
  if plan.method == "eager":
    return baseline_kernels.future_update(buf, consts, u, t + offset, window,
                                          implementation=_baseline_impl(plan, buf, window)), None
  if level != schedule.NO_TILE:
    tau = tau_ops.get(tau_table[level])
    if tau.apply_step is not None:
      return tau.apply_step(consts[level], buf, u, t, level, offset)
  buf = jax.lax.dynamic_update_index_in_dim(buf, u, t + offset, axis=3)
  if level == schedule.NO_TILE:
    return buf, None
  return gray_tile(consts[level], buf, t, level, tau_table[level], offset), None


def gray_tile(level_consts, buf: jax.Array, t: jax.Array, level: int, impl: str,
              offset: int = 0) -> jax.Array:
  """Flash: adds the contribution of u at s-U+1..s to the pending outputs s+1..s+U, where
  s = t + offset (offset a static int)."""
  tau = tau_ops.get(impl)
  if tau.apply_inplace is not None:  # one in-place kernel for the whole tile
    return tau.apply_inplace(level_consts, buf, t, level, offset)
  t = t + offset
  U = 1 << level
  M, B, D, _ = buf.shape
  if tau.layer_consts is not None and tau_ops.by_layer(M, B, D, U):
    # One layer at a time, the buffer updated in place: all layers at once hold the tile's
    # segment and output (M*B*D*U floats each: 16 GB at the paper model, B = 8, U = 2^15) and
    # the FFT's spectra next to the buffer.
    return jax.lax.fori_loop(0, M, lambda m, b: tau_ops.add_tile(
        tau.apply, tau.layer_consts(level_consts, m), b, t, U, m), buf)
  return tau_ops.add_tile(tau.apply, level_consts, buf, t, U)
