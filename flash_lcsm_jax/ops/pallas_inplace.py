"""tau "pallas_inplace": the whole flash gray tile as ONE in-place Pallas kernel.

A level-q gray tile (U = 2^q) at position t adds, for every layer m, batch row b and channel d,

  buf[m, b, d, t+1+j] += sum_{k < U} taps[m, d, U + j - k] * buf[m, b, d, t-U+1+k],   j < U

(taps = h_0..h_{2U-1}, see `tau.taps`) to the engine buffer (M, B, D, Lb) (time minor: inputs u at
positions <= t, pending outputs beyond). The XLA path is three launches (dynamic slice, tau,
dynamic update slice with the add, see `reference`); here one `pallas_call` reads the segment
straight from the buffer at the traced position t, accumulates in float32 and adds into the pending
outputs in place: the buffer is aliased input -> output (`input_output_aliases`), so inside a jit
where the buffer is a loop carry or donated, XLA neither copies nor re-writes it. Positions outside
[t+1, t+U] are not touched.

Layout of the launch: grid (M, channel blocks, batch blocks); a program holds `batch_block` rows of
`channel_block` channels and loops over the U input lags in static Python (as the "pallas" direct
kernel), so one (channels, U) load of lagged taps serves every batch row of the block. The buffer
has no BlockSpec block (the whole array, indexed by program id and pl.ds(t ...)); the taps are
blocked (channels padded once by `prepare`); t reaches the kernel as a (1,) int32 array (the Triton
backend has no scalar prefetch). Channels beyond D in the last block are masked (the buffer is
never padded: that would copy it). t is clamped in the kernel to [U-1, Lb-U-1] so that an
out-of-range t can never read or write outside the buffer (the result is then meaningless, as it
is with XLA's clamped dynamic slices; the contract is t-U+1 >= 0 and t+U < Lb).

The fused flash step (`flash_step`, tau hook `apply_step`) is the same kernel with the rest of a
flash step's buffer work folded in: it stores u_t (M, B, D) at t (taking the newest lag from u,
not from the buffer it just wrote), adds the tile, and returns the pending output at t+1, complete
once this tile has run, as the next step's acc. One launch instead of three (write, tile,
strided read); the engine uses it at every in-block level whose tau is pallas_inplace. Measured
on an H100 (experiments/tile_kernels_gpu.py): the long convolutions alone went from ~55 to ~20
us per step with it and the host-side cuts of session 4 (experiments/NOTES.md).

Three parts, as for every kernel of the package:
  `reference` (the 3-op XLA gray tile, plain jnp; also the fallback), `inplace_pallas` (the
  kernel, frozen block configs per level, `interpret` static) and `gray_tile` (the dispatcher:
  Triton on GPU, interpret mode on CPU, the XLA reference where Pallas cannot run; logged once,
  recorded in pallas_direct.CHOSEN under "inplace U=<U>").

Version notes (jax 0.10 / 0.11): see pallas_direct. Masked loads and stores are
`jax.experimental.pallas.triton.load/store(ref.at[...], mask=..., other=...)` (they left the
top-level `pl` namespace: `pl.load` does not exist in jax 0.10.2; `_masked_load` looks in both).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import tau as tau_ops
from flash_lcsm_jax.ops.pallas_direct import BlockConfig, pl


MAX_LEVEL = 6  # U = 64, as the direct kernel: beyond it the O(U^2) product loses to FFT taus.

# Levels at which the engine takes the fused step kernel; at the others `apply_step` stores u_t
# and reads the next acc with XLA ops around the in-place tile kernel. Session 17 (H100) saw the
# compiled fused step go wrong at U = 4 and 8 (flash 1.7e-4 from the forward at B = 8, rising
# with the batch row): position t+1 was read in one thread layout and written in another with
# no barrier between, a race between warps. Session 18 fixed `_step_kernel`; session 19 (H100,
# experiments/batch_error_gpu.py, L = 4096, P = 777, B = 8) measured the fused step at every
# level at 3.73e-6, the same as this set and lazy (3.74e-6), flat over rows. Every level is now
# safe, but fusing U = 2-8 too made the online convolution slower (7.58 vs 7.30 us/token, one
# run each; results/raw/session19/call1), so the set stays as measured fastest.
FUSED_STEP_LEVELS = frozenset({0, 4, 5, 6})

# Same budget as the direct kernel (about 4K float32 accumulators per program); kept separate so
# the in-place kernel can be tuned on its own. Channel blocks must match `prepare`'s padding.
INPLACE_CONFIGS: dict[int, BlockConfig] = dict(pallas_direct.DIRECT_CONFIGS)


def _triton_memory_op(name: str):
  """pallas.triton.load/store (jax >= 0.8), else the old top-level pl.load/store."""
  try:
    from jax.experimental.pallas import triton as pl_triton  # pylint: disable=g-import-not-at-top
    fn = getattr(pl_triton, name, None)
  except ImportError:  # pragma: no cover
    fn = None
  return fn or getattr(pl, name)


def _load(ref_view, mask, volatile: bool = False):
  """ref_view's values (zero where mask is False); volatile: a volatile load (read from L2 every
  time, pallas_layer's polls)."""
  if mask is None and not volatile:
    return ref_view[...]
  kwargs = {} if mask is None else dict(mask=mask, other=0.0)
  return _triton_memory_op("load")(ref_view, volatile=volatile, **kwargs)


def _store(ref_view, value, mask):
  if mask is None:
    ref_view[...] = value
  else:
    _triton_memory_op("store")(ref_view, value, mask=mask)


# ----------------------------------------------------------------------------- kernel


def _scalar_operand(x) -> jax.Array:
  """A position operand as the kernels take it: (1,) int32 (Triton has no scalar prefetch)."""
  return jnp.reshape(jnp.asarray(x, jnp.int32), (1,))


def _program(t_ref, offset_ref, taps_ref, buf_ref, num_channels: int, batch_block: int):
  """What a (layer, channel block, batch block) program of either kernel works on: (layer m,
  channel slice, clamped t = t_ref[0] + offset_ref[0], (Cb, 1) and (Cb, U) channel masks or None,
  batch rows)."""
  n_channels, tile = taps_ref.shape[0], taps_ref.shape[1] // 2
  length = buf_ref.shape[-1]
  m, c, b_blk = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  c0 = c * n_channels
  # Memory safety for a t outside the contract (see the module docstring).
  t = jnp.minimum(jnp.maximum(t_ref[0] + offset_ref[0], tile - 1), length - tile - 1)
  if num_channels % n_channels:  # last channel block is partial: mask it
    rows = c0 + jax.lax.broadcasted_iota(jnp.int32, (n_channels, 1), 0)
    col_mask = rows < num_channels
    tile_mask = jnp.broadcast_to(col_mask, (n_channels, tile))
  else:
    col_mask = tile_mask = None
  batch = [b_blk * batch_block + i for i in range(batch_block)]
  return m, pl.ds(c0, n_channels), t, col_mask, tile_mask, batch


def _inplace_kernel(t_ref, offset_ref, taps_ref, buf_ref, out_ref, *, num_channels: int,
                    batch_block: int):
  """One (layer, channel block, batch block) program.

  t_ref, offset_ref: (1,) int32, the tile's position is their sum; taps_ref: (Cb, 2U) block; buf_ref / out_ref: the whole (M, B, D, Lb) buffer
  (the same memory on GPU: aliased).
  """
  m, channels, t, col_mask, tile_mask, batch = _program(t_ref, offset_ref, taps_ref, buf_ref,
                                                         num_channels, batch_block)
  n_channels, tile = taps_ref.shape[0], taps_ref.shape[1] // 2
  first = t - (tile - 1)
  acc = [jnp.zeros((n_channels, tile), jnp.float32) for _ in batch]
  for k in range(tile):
    lags = taps_ref[:, pl.ds(tile - k, tile)].astype(jnp.float32)  # taps[U + j - k], j < U
    for i, b in enumerate(batch):
      x = _load(buf_ref.at[m, b, channels, pl.ds(first + k, 1)], col_mask)  # (Cb, 1)
      acc[i] = acc[i] + lags * x.astype(jnp.float32)
  for i, b in enumerate(batch):
    pending = out_ref.at[m, b, channels, pl.ds(t + 1, tile)]
    total = _load(pending, tile_mask).astype(jnp.float32) + acc[i]
    _store(pending, total.astype(out_ref.dtype), tile_mask)


@functools.partial(jax.jit, static_argnames=("level", "config", "interpret"))
def inplace_pallas(taps: jax.Array, buf: jax.Array, t: jax.Array, offset=0, *, level: int,
                   config: BlockConfig, interpret: bool = False) -> jax.Array:
  """The Pallas kernel with resolved blocks.

  Args:
    taps: (M, Dp, 2U) h_0..h_{2U-1}, Dp >= D a multiple of config.channel_block.
    buf: (M, B, D, Lb) engine buffer, Lb >= 2U, B a multiple of config.batch_block.
    t: int32 scalar (traced or not), U-1 <= t + offset <= Lb-U-1.
    offset: int32 scalar added to t in the kernel (see `gray_tile`).
    level: q, U = 2^q.
    config: resolved block config (`pallas_direct.resolve_blocks`).
    interpret: run the kernel body as XLA ops (any backend) instead of compiling with Triton.

  Returns:
    The buffer with the tile's contribution added at t+1..t+U (aliased to `buf`).
  """
  M, B, D, _ = buf.shape
  U = 1 << level
  Dp = taps.shape[1]
  cb, bb = config.channel_block, config.batch_block
  kernel = functools.partial(_inplace_kernel, num_channels=D, batch_block=bb)
  return pl.pallas_call(
      kernel,
      out_shape=jax.ShapeDtypeStruct(buf.shape, buf.dtype),
      grid=(M, Dp // cb, B // bb),
      in_specs=[
          pl.BlockSpec(),  # t: the whole (1,) array
          pl.BlockSpec(),  # offset: the same
          pl.BlockSpec(block_shape=(None, cb, 2 * U), index_map=lambda m, c, b: (m, c, 0)),
          pl.BlockSpec(),  # buf: no block, indexed by program id and t in the kernel
      ],
      out_specs=pl.BlockSpec(),
      input_output_aliases={3: 0},
      interpret=interpret,
      compiler_params=None if interpret else pallas_direct.triton_compiler_params(
          config.num_warps, config.num_stages),
      name=f"gray_tile_inplace_u{U}",
  )(_scalar_operand(t), _scalar_operand(offset), taps, buf)


def reference(taps: jax.Array, buf: jax.Array, t: jax.Array, level: int) -> jax.Array:
  """The 3-op XLA gray tile (dynamic slice, direct multiply-reduce in float32, update with add)."""
  return tau_ops.add_tile(pallas_direct.direct_xla, taps, buf, t, 1 << level)


def _check(taps, buf, t, level, implementation, offset) -> int:
  """Validates a tile's arguments; returns the offset as an int."""
  if implementation is not None and implementation not in pallas_direct.IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {pallas_direct.IMPLEMENTATIONS}, "
                     f"got {implementation!r}")
  if not isinstance(level, int) or level < 0:
    raise ValueError(f"level must be a non-negative int, got {level!r}")
  if buf.ndim != 4 or taps.ndim != 3:
    raise ValueError(f"expected taps (M, D, 2U) and buf (M, B, D, Lb), got {taps.shape} and "
                     f"{buf.shape}")
  if not jnp.issubdtype(buf.dtype, jnp.floating):
    raise ValueError(f"buf must be floating point, got {buf.dtype}")
  M, _, D, Lb = buf.shape
  U = 1 << level
  if taps.shape[0] != M or taps.shape[1] < D or taps.shape[2] != 2 * U:
    raise ValueError(f"taps {taps.shape} do not match buf {buf.shape} at level {level}: need "
                     f"(M, >=D, 2U) = ({M}, >={D}, {2 * U})")
  if Lb < 2 * U:
    raise ValueError(f"buffer length {Lb} is shorter than a level-{level} tile needs (2U = "
                     f"{2 * U})")
  if jnp.ndim(t) != 0 or not jnp.issubdtype(jnp.result_type(t), jnp.integer):
    raise ValueError(f"t must be an integer scalar, got {t!r}")
  if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
    raise ValueError(f"offset must be a Python int (static), got {offset!r}")
  offset = int(offset)
  try:
    tv = int(t) + offset
  except (jax.errors.ConcretizationTypeError, TypeError):
    tv = None  # traced: checked by the caller's schedule (and clamped in the kernel)
  if tv is not None:
    if tv - U + 1 < 0 or tv + U >= Lb:
      raise ValueError(f"t = {tv} out of range for a level-{level} tile on a buffer of length "
                       f"{Lb}: need {U - 1} <= t <= {Lb - U - 1}")
  return offset


def gray_tile(taps: jax.Array, buf: jax.Array, t: jax.Array, level: int, *, offset: int = 0,
              implementation: str | None = None, config: BlockConfig | None = None) -> jax.Array:
  """buf[..., t+1:t+U+1] += direct tile convolution of buf[..., t-U+1:t+1] (float32 accumulation).

  Args:
    taps: (M, D or Dp, 2U) h_0..h_{2U-1} (as from `tau.taps` or this module's `prepare`).
    buf: (M, B, D, Lb) floating buffer.
    t: integer scalar, traced or not; U-1 <= t <= Lb-U-1 (checked when concrete).
    level: static q <= MAX_LEVEL (any level with implementation="xla").
    offset: static int; the tile is at position t + offset. The kernel adds it, taking it as a
      constant operand: steps of a compiled block pass the block's first position as t and their
      index as offset, so no step needs a kernel of its own to compute its position (XLA would
      launch one for each position a Pallas operand needs materialised), and steps of equal
      level share one compiled kernel.
    implementation: None picks Triton on GPU, interpret mode on CPU and XLA where Pallas cannot
      run (logged once); or force one of "pallas", "interpret", "xla".
    config: block config override (defaults to INPLACE_CONFIGS[level]).

  Returns:
    The updated buffer (in place under jit when the buffer is donated or a loop carry).
  """
  offset = _check(taps, buf, t, level, implementation, offset)
  if implementation != "xla":
    choice, taps, config = _launch_plan("inplace", inplace_pallas, taps, buf, (), level,
                                        implementation, config)
    if choice != "xla":
      return inplace_pallas(taps, buf, t, offset, level=level, config=config,
                            interpret=choice == "interpret")
  return reference(taps, buf, t + offset, level)


def _launch_plan(kernel: str, fn, taps, buf, extra, level: int, implementation, config):
  """(implementation choice, taps padded to the channel block, resolved block config) for one of
  this module's kernels; `extra` are the ShapeDtypeStructs of operands between buf and t."""
  if level > MAX_LEVEL:
    raise ValueError(f"the in-place Pallas gray tile supports levels <= {MAX_LEVEL} (U <= "
                     f"{1 << MAX_LEVEL}), got level {level} (U = {1 << level}); use "
                     "implementation='xla' or an FFT tau")
  _, B, D, _ = buf.shape
  config = pallas_direct.resolve_blocks(config or INPLACE_CONFIGS[level], D, B)
  Dp = pallas_direct.padded_channels(D, config.channel_block)
  taps = pallas_direct.pad_axis(taps[:, :Dp], 1, Dp)  # no-op for taps from `prepare`
  probe = pallas_direct._Probe(  # pylint: disable=protected-access
      fn, (jax.ShapeDtypeStruct(taps.shape, taps.dtype), jax.ShapeDtypeStruct(buf.shape, buf.dtype))
      + tuple(extra) + (jax.ShapeDtypeStruct((), jnp.int32),),
      (("level", level), ("config", config), ("interpret", False)))
  label = f"{kernel} U={1 << level}"
  return pallas_direct.resolve_implementation(label, implementation, probe), taps, config


# ----------------------------------------------------------------------------- fused flash step


def _step_kernel(t_ref, offset_ref, taps_ref, u_ref, buf_ref, out_ref, next_ref, *,
                 num_channels: int, batch_block: int):
  """One program of the fused step: store u_t, add the level's gray tile, read acc_{t+1}.

  u_ref / next_ref: (M, B, D, 1) whole arrays; the rest as in `_inplace_kernel`. The newest lag
  is taken from u_ref, not read back from the buffer after the store. No element is written by
  one thread and read by another (programs own disjoint blocks; within a program each element
  is read and written in one layout), so no barrier is needed.
  """
  m, channels, t, col_mask, tile_mask, batch = _program(t_ref, offset_ref, taps_ref, buf_ref,
                                                         num_channels, batch_block)
  n_channels, tile = taps_ref.shape[0], taps_ref.shape[1] // 2
  first = t - (tile - 1)
  acc = [jnp.zeros((n_channels, tile), jnp.float32) for _ in batch]
  # The tile's output at t+1, summed on its own: Triton cannot slice column 0 out of acc.
  head = [jnp.zeros((n_channels, 1), jnp.float32) for _ in batch]
  for k in range(tile):
    lags = taps_ref[:, pl.ds(tile - k, tile)].astype(jnp.float32)  # taps[U + j - k], j < U
    lag0 = taps_ref[:, pl.ds(tile - k, 1)].astype(jnp.float32)  # the same at j = 0
    for i, b in enumerate(batch):
      if k == tile - 1:
        x = _load(u_ref.at[m, b, channels, pl.ds(0, 1)], col_mask)  # (Cb, 1): u_t
        _store(out_ref.at[m, b, channels, pl.ds(t, 1)], x.astype(out_ref.dtype), col_mask)
      else:
        x = _load(buf_ref.at[m, b, channels, pl.ds(first + k, 1)], col_mask)
      acc[i] = acc[i] + lags * x.astype(jnp.float32)
      head[i] = head[i] + lag0 * x.astype(jnp.float32)
  # Position t+1 is read and written only in the (Cb, 1) layout of `head`; the (Cb, U) store of
  # the rest of the tile leaves column 0 out. Storing the whole tile instead let a warp write
  # t+1 (in the (Cb, U) layout) before another warp had read it for acc_{t+1} (in the (Cb, 1)
  # layout): Triton puts no barrier between different threads' accesses to global memory.
  rest = jax.lax.broadcasted_iota(jnp.int32, (n_channels, tile), 1) >= 1
  rest = rest if tile_mask is None else rest & tile_mask
  for i, b in enumerate(batch):
    at_next = out_ref.at[m, b, channels, pl.ds(t + 1, 1)]
    nxt = (_load(at_next, col_mask).astype(jnp.float32) + head[i]).astype(out_ref.dtype)
    _store(next_ref.at[m, b, channels, pl.ds(0, 1)], nxt, col_mask)  # next_ref: buf's dtype
    _store(at_next, nxt, col_mask)
    if tile > 1:
      pending = out_ref.at[m, b, channels, pl.ds(t + 1, tile)]
      total = _load(pending, rest).astype(jnp.float32) + acc[i]
      _store(pending, total.astype(out_ref.dtype), rest)


@functools.partial(jax.jit, static_argnames=("level", "config", "interpret"))
def step_pallas(taps: jax.Array, buf: jax.Array, u: jax.Array, t: jax.Array, offset=0, *,
                level: int, config: BlockConfig,
                interpret: bool = False) -> tuple[jax.Array, jax.Array]:
  """The fused step kernel with resolved blocks (arguments as `inplace_pallas`, plus u (M, B, D)).

  Returns (buffer with u at t and the tile added at t+1..t+U (aliased to `buf`),
  acc_{t+1} = the updated buffer at t+1, (M, B, D) in the buffer's dtype).
  """
  M, B, D, _ = buf.shape
  U = 1 << level
  Dp = taps.shape[1]
  cb, bb = config.channel_block, config.batch_block
  kernel = functools.partial(_step_kernel, num_channels=D, batch_block=bb)
  new_buf, nxt = pl.pallas_call(
      kernel,
      out_shape=(jax.ShapeDtypeStruct(buf.shape, buf.dtype),
                 jax.ShapeDtypeStruct((M, B, D, 1), buf.dtype)),
      grid=(M, Dp // cb, B // bb),
      in_specs=[
          pl.BlockSpec(),  # t
          pl.BlockSpec(),  # offset
          pl.BlockSpec(block_shape=(None, cb, 2 * U), index_map=lambda m, c, b: (m, c, 0)),
          pl.BlockSpec(),  # u: indexed in the kernel, like the buffer
          pl.BlockSpec(),  # buf
      ],
      out_specs=(pl.BlockSpec(), pl.BlockSpec()),
      input_output_aliases={4: 0},
      interpret=interpret,
      compiler_params=None if interpret else pallas_direct.triton_compiler_params(
          config.num_warps, config.num_stages),
      name=f"flash_step_u{U}",
  )(_scalar_operand(t), _scalar_operand(offset), taps, u.astype(buf.dtype)[..., None], buf)
  return new_buf, nxt[..., 0]


def step_reference(taps: jax.Array, buf: jax.Array, u: jax.Array, t: jax.Array,
                   level: int) -> tuple[jax.Array, jax.Array]:
  """The same step in XLA ops: store u_t, the 3-op gray tile, read position t+1."""
  buf = jax.lax.dynamic_update_index_in_dim(buf, u.astype(buf.dtype), t, axis=3)
  buf = reference(taps, buf, t, level)
  return buf, jax.lax.dynamic_index_in_dim(buf, t + 1, axis=3, keepdims=False)


def flash_step(taps: jax.Array, buf: jax.Array, u: jax.Array, t: jax.Array, level: int, *,
               offset: int = 0, implementation: str | None = None,
               config: BlockConfig | None = None) -> tuple[jax.Array, jax.Array]:
  """A flash step's buffer work in one launch: buf[..., t] = u, the level's gray tile, and the
  pending output at t+1 (complete once this tile has run: the next step's acc).

  Args: as `gray_tile` (the step is at position t + offset), plus u (M, B, D) the mixer inputs.
  Returns: (updated buffer, acc_{t+1} (M, B, D)).
  """
  offset = _check(taps, buf, t, level, implementation, offset)
  M, B, D, _ = buf.shape
  if u.shape != (M, B, D):
    raise ValueError(f"u must have shape (M, B, D) = {(M, B, D)}, got {u.shape}")
  if implementation != "xla":
    choice, taps, config = _launch_plan("flash step", step_pallas, taps, buf,
                                        (jax.ShapeDtypeStruct(u.shape, u.dtype),), level,
                                        implementation, config)
    if choice != "xla":
      return step_pallas(taps, buf, u, t, offset, level=level, config=config,
                         interpret=choice == "interpret")
  return step_reference(taps, buf, u, t + offset, level)


# ----------------------------------------------------------------------------- tau registration


def prepare(filters: jax.Array, q: int) -> jax.Array:
  """Taps h_0..h_{2U-1} (M, Dp, 2U) float32, channels padded once to the level's block."""
  if q > MAX_LEVEL:
    raise ValueError(f"tau 'pallas_inplace' supports levels <= {MAX_LEVEL}, got {q}")
  D = filters.shape[1]
  block = pallas_direct.channel_block(D, INPLACE_CONFIGS[q].channel_block)
  return pallas_direct.pad_axis(tau_ops.taps(filters, q).astype(jnp.float32), 1,
                                pallas_direct.padded_channels(D, block))


def apply(taps: jax.Array, seg: jax.Array, *, implementation: str | None = None) -> jax.Array:
  """The plain tau interface (seg (M, B, D, U) -> (M, B, D, U) float32) through the same kernel:
  the tile at t = U-1 of the buffer [seg | zeros]. The engine uses `apply_inplace` instead."""
  U = seg.shape[-1]
  if seg.ndim != 4 or U & (U - 1):
    raise ValueError(f"expected seg (M, B, D, U) with U a power of two, got {seg.shape}")
  buf = jnp.concatenate([seg.astype(jnp.float32), jnp.zeros(seg.shape, jnp.float32)], axis=-1)
  return gray_tile(taps, buf, U - 1, U.bit_length() - 1, implementation=implementation)[..., U:]


def apply_inplace(taps: jax.Array, buf: jax.Array, t: jax.Array, level: int,
                  offset: int = 0) -> jax.Array:
  return gray_tile(taps, buf, t, level, offset=offset)


def apply_step(taps: jax.Array, buf: jax.Array, u: jax.Array, t: jax.Array, level: int,
               offset: int = 0) -> tuple[jax.Array, jax.Array]:
  if level in FUSED_STEP_LEVELS:
    return flash_step(taps, buf, u, t, level, offset=offset)
  buf = jax.lax.dynamic_update_index_in_dim(buf, u.astype(buf.dtype), t + offset, axis=3)
  buf = gray_tile(taps, buf, t, level, offset=offset)
  return buf, jax.lax.dynamic_index_in_dim(buf, t + offset + 1, axis=3, keepdims=False)


tau_ops.register(tau_ops.TauImpl("pallas_inplace", prepare, apply, max_level=MAX_LEVEL,
                                 apply_inplace=apply_inplace, apply_step=apply_step))
