"""Building blocks shared by the kernels: masked loads and stores, activation gathers,
layer-norm statistics, the matrix-vector product loops and the whole-operand pallas_call."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops.pallas_inplace import _load, _store, _triton_memory_op
from flash_lcsm_jax.ops.pallas_layer.config import _is_pow2, KernelBlocks, PENDING_BITS

pl = pd.pl


def _col_mask(off: int, size: int, n: int):
  """(1, size) mask of columns < n for a chunk crossing n, else None (no mask needed)."""
  if off + size <= n:
    return None
  return off + jax.lax.broadcasted_iota(jnp.int32, (1, size), 1) < n


def _row_mask(start, size: int, n: int):
  """(size,) mask of rows < n for a block that may cross n, else None (n a multiple of size)."""
  if n % size == 0:
    return None
  return start + jax.lax.broadcasted_iota(jnp.int32, (size,), 0) < n


def _traced(offset: int, like):
  """`offset` as a traced int32 (offset + 0 * like, `like` a traced int32 scalar such as the layer
  index): JAX rejects a static slice that crosses the array's end even under a mask; Triton folds
  the zero away again. (Not program_id: interpret mode cannot evaluate it inside loops.)"""
  return offset + 0 * like


def _at(ref, *idx):
  """ref.at[idx] with Python-int indices as int32 scalars (the masked load / store of jax 0.10
  rejects plain int indices)."""
  return ref.at[tuple(jnp.int32(i) if isinstance(i, int) else i for i in idx)]


def _load_cols(ref, idx: tuple, off: int, size: int, n: int):
  """ref[*idx, off:off + size] as float32, zero past column n (masked only if it crosses n);
  idx[0] is a traced int32 (the layer index)."""
  mask = _col_mask(off, size, n)
  start = off if mask is None else _traced(off, idx[0])
  return _load(_at(ref, *idx, pl.ds(start, size)), mask).astype(jnp.float32)


def _gather(ref, idx: tuple, row_idx, off: int, size: int, n: int, volatile: bool = False):
  """float32 ref[*idx, row_idx, off:off + size] by integer-vector indices, zero past column n:
  row_idx (..., 1) int32 against the columns (1, ..., size), the result of their broadcast shape.
  Integer-vector indices (no slices) also keep interpret mode's masked loads working. volatile:
  a volatile load (read from L2 every time: sync="data"'s polls)."""
  cols = (1,) * (row_idx.ndim - 1) + (size,)
  col_idx = off + jax.lax.broadcasted_iota(jnp.int32, cols, len(cols) - 1)
  mask = _col_mask(off, size, n)
  load = _triton_memory_op("load")
  view = _at(ref, *idx, row_idx, col_idx)
  if mask is not None and mask.ndim != len(cols):
    mask = mask.reshape(cols)
  kwargs = dict(volatile=True) if volatile else {}
  if mask is not None:
    kwargs.update(mask=mask, other=0.0)
  return load(view, **kwargs).astype(jnp.float32)


def _load_rep(ref, idx: tuple, i, rows: int, off: int, size: int, n: int,
              volatile: bool = False):
  """(rows, size) float32 tile whose every row is ref[*idx, i, off:off + size] (zero past column
  n). Indexed with integer vectors (a gather of one row into each tile row), the load comes out
  in the weight tile's register layout and costs L1 hits; a (1, size) load broadcast to
  (rows, size) would go through shared memory and two barriers per chunk instead."""
  return _gather(ref, idx, jnp.full((rows, 1), i, jnp.int32), off, size, n, volatile)


def _load_bcast(ref, idx: tuple, start, count: int, axis: int, off: int, size: int, n: int,
                volatile: bool = False):
  """float32 rows start .. start + count of ref[*idx], columns off .. off + size (zero past column
  n), shaped for the tile order's (rows_b, rows, chunk) products: (count, 1, size) with axis=0
  (batch rows), (1, count, size) with axis=1 (weight rows). Integer-vector indices load them
  straight into the products' register layout; broadcasting 2-D tiles instead (an expand_dims)
  goes through shared memory, with block barriers (experiments/ptx_broadcast.py: at B = 8, 181
  barriers for 7 chunks instead of 29)."""
  shape = [1, 1, 1]
  shape[axis] = count
  row_idx = start + jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis)
  return _gather(ref, idx, row_idx, off, size, n, volatile)


def _fit(mask, shape):
  """A (n,) row mask made to fit a block of `shape`: broadcast over a (rows_b, n) block of batch
  rows; None and masks of the block's rank as they are."""
  if mask is None or mask.ndim == len(shape):
    return mask
  return jnp.broadcast_to(mask, shape)


def _ld(view, mask, volatile: bool = False):
  """A masked load whose row mask is broadcast to the view's shape."""
  return _load(view, _fit(mask, view.shape), volatile)


def _st(view, value, mask):
  _store(view, value, _fit(mask, view.shape))


class _Operands:
  """The loads of one phase block that do not depend on the phase's input activations (layer-norm
  scale and shift, biases, the short convolution's taps and window, the mixer's acc, residual
  rows), by key: loaded where first used (preload=False: the per-layer kernels, and blocks a
  program loops over) or all at once when made (preload=True: the persistent loop makes them
  before it waits at the phase's barrier, so their round trips overlap the wait instead of
  following it). loaders: key -> a function that loads the value."""

  def __init__(self, loaders: dict, preload: bool):
    self._loaders = loaders
    self._values = {k: load() for k, load in loaders.items()} if preload else None

  def __call__(self, key):
    if self._values is not None:
      return self._values[key]
    return self._loaders[key]()


class _Act(NamedTuple):
  """An activation buffer as a phase reads or writes it: rows ref[*idx, b] (idx = () for the
  buffers the per-layer kernels and sync="barrier" update in place, (layer,) for sync="data"'s
  write-once buffers). poll: reads are volatile and repeated while any value is PENDING (spin;
  without spin, read once: interpret mode runs programs one after another, so a value still
  PENDING there is a bug, and it shows up as a NaN instead of a hang). compact (sync="data_l1"):
  the poll is one compact volatile tile, the reads after it ordinary loads whose layer index has
  the poll's final flag (zero) added, so they cannot be issued before it."""
  ref: object
  idx: tuple = ()
  poll: bool = False
  spin: bool = True
  compact: bool = False

  def at(self, *idx):
    return _at(self.ref, *self.idx, *idx)

  def rep(self, b, rows: int, off: int, size: int, n: int):
    return _load_rep(self.ref, self.idx, b, rows, off, size, n, self.poll)

  def bcast(self, start, count: int, off: int, size: int, n: int):
    return _load_bcast(self.ref, self.idx, start, count, 0, off, size, n, self.poll)

  def read(self, load, start=0, count: int = 1, n: int = 0):
    """load(view) -> a list of arrays read from this buffer through `view`; polled when
    self.poll. start, count, n: the rows (start .. start + count) and columns (< n) load reads,
    which a compact poll waits for."""
    if not self.poll:
      return load(self)
    view = self._replace(poll=False) if self.compact else self  # compact: ordinary loads
    if not self.spin:
      return load(view)
    if not self.compact:
      return jax.lax.while_loop(_any_pending, lambda _: load(view), load(view))
    if n < 1:
      raise ValueError(f"a compact poll needs the columns it waits for (n >= 1), got n={n}")
    n_pow2 = 1 << (n - 1).bit_length()
    rows = start + jax.lax.broadcasted_iota(jnp.int32, (count, 1), 0)
    poll = lambda _: _pending_flag([_gather(self.ref, self.idx, rows, 0, n_pow2, n, True)])
    zero = jax.lax.while_loop(lambda f: f > 0, poll, poll(0))
    return load(view._replace(idx=(self.idx[0] + zero,) + self.idx[1:]))


def _pending_flag(values: list):
  """1 (int32) if any of the float32 arrays `values` holds PENDING_BITS, else 0. Arrays of one
  shape are combined elementwise first, so each shape costs one reduction across the warps
  (Triton has no reduce_or, hence the max)."""
  by_shape = {}
  for v in values:
    flag = (jax.lax.bitcast_convert_type(v, jnp.int32) == PENDING_BITS).astype(jnp.int32)
    by_shape[v.shape] = flag if v.shape not in by_shape else jnp.maximum(by_shape[v.shape], flag)
  return functools.reduce(jnp.maximum, [jnp.max(f) for f in by_shape.values()])


def _any_pending(values: list):
  """Whether any of the float32 arrays `values` holds PENDING_BITS (a scalar bool)."""
  return _pending_flag(values) > 0


def pending_fill(shape) -> jax.Array:
  """A float32 array of `shape` whose every value has the bits PENDING_BITS."""
  return jax.lax.bitcast_convert_type(jnp.full(shape, PENDING_BITS, jnp.int32), jnp.float32)


def _tile_rows(rows: list, order: str):
  """(the batch rows as one pl.ds block, or None; the order for _matvec otherwise): "tile" runs
  for a power-of-two number of rows (Triton blocks are), else falls back to "chunk"."""
  if order != "tile":
    return None, order
  return (pl.ds(rows[0], len(rows)), order) if _is_pow2(len(rows)) else (None, "chunk")


def _stats(xs: list, chunk: int, n: int, eps: float):
  """Mean and 1 / sqrt(var + eps) over the columns < n of the (r, chunk) or (r, 1, chunk) tiles
  xs (column chunks of one row each tile row), as (r, 1) or (r, 1, 1) columns."""
  total = xs[0]
  for x in xs[1:]:
    total = total + x
  mean = jnp.sum(total, axis=-1, keepdims=True) / n
  sq = None
  for c, x in enumerate(xs):
    d = x - mean
    mask = _col_mask(c * chunk, chunk, n)
    if mask is not None:
      d = jnp.where(mask, d, 0.0)
    sq = d * d if sq is None else sq + d * d
  return mean, jax.lax.rsqrt(jnp.sum(sq, axis=-1, keepdims=True) / n + eps)


def _gelu_tanh(x):
  """jax.nn.gelu(x, approximate=True), written out (the same operations)."""
  sqrt_2_over_pi = np.sqrt(2 / np.pi).astype(np.float32)
  return x * (0.5 * (1.0 + jnp.tanh(sqrt_2_over_pi * (x + 0.044715 * (x ** 3)))))


def _weight_cast(x, wdtype):
  """x rounded to the weight dtype, back in float32 (x.astype(w.dtype) in hyena.dense)."""
  return x if wdtype == jnp.float32 else x.astype(wdtype).astype(jnp.float32)


def _batch_rows(bb: int, batch: int):
  q = pl.program_id(1)
  return list(range(bb)) if bb == batch else [q * bb + i for i in range(bb)]


def _matvec(tiles, row_vector, emit, batch_rows: int, chunk: int, count: int, rows: int,
            order: str):
  """sum_k W[r, k] v_b[k] for every weight tile stream and batch row, handed to emit.

  tiles(c) -> list of (rows, chunk) float32 weight tiles of chunk c (one per output group);
  row_vector(i) -> (function c -> (rows, chunk) float32 activation chunk of batch row i, every
  tile row the same values); calling it does the row's prologue (layer-norm statistics).
  emit(i, sums) gets batch row i's [group] -> (rows,) float32 sums and runs its epilogue.
  Products accumulate elementwise over the chunks in (rows, chunk) registers and are reduced over
  the columns once at the end: one in-warp reduction per (batch row, group), not per chunk.
  order "batch": batch rows outer, chunks inner, each row's epilogue (stores) right after its
  sums, so a row's activations live only while it is processed, and the stores keep the compiler
  from holding every weight tile in registers across rows (it re-reads them from L1 instead);
  "chunk": chunks outer (every row's accumulators and statistics live throughout).
  """
  def zeros(n):
    return [jnp.zeros((rows, chunk), jnp.float32) for _ in range(n)]

  def reduce(acc):
    return [jnp.sum(a, axis=1) for a in acc]

  if order == "batch":
    for i in range(batch_rows):
      vector, acc = row_vector(i), None
      for c in range(count):
        ws, v = tiles(c), vector(c)
        acc = acc or zeros(len(ws))
        acc = [a + w * v for a, w in zip(acc, ws)]
      emit(i, reduce(acc))
  else:
    vectors, accs = [row_vector(i) for i in range(batch_rows)], None
    for c in range(count):
      ws = tiles(c)
      accs = accs or [zeros(len(ws)) for _ in vectors]
      for i, vector in enumerate(vectors):
        v = vector(c)
        accs[i] = [a + w * v for a, w in zip(accs[i], ws)]
    for i, acc in enumerate(accs):
      emit(i, reduce(acc))


def _matvec_tile(tiles, vector, count: int):
  """[group] -> (rows_b, rows) float32 sums_k W[r, k] v[b, k] for all batch rows at once.

  tiles(c) -> list of (1, rows, chunk) float32 weight tiles of chunk c (one per output group);
  vector(c) -> the (rows_b, 1, chunk) float32 activation chunk of every batch row (both loaded
  in these shapes: _load_bcast). Products are (rows_b, rows, chunk) broadcasts accumulated
  elementwise over the chunks and reduced over the columns once at the end."""
  acc = None
  for c in range(count):
    ws, v = tiles(c), vector(c)
    prods = [v * w for w in ws]
    acc = prods if acc is None else [a + q for a, q in zip(acc, prods)]
  return [jnp.sum(a, axis=2) for a in acc]


def _compiler_params(blocks: KernelBlocks, interpret: bool):
  return None if interpret else pd.triton_compiler_params(blocks.num_warps, blocks.num_stages)


def _whole(n: int):
  return [pl.BlockSpec() for _ in range(n)]


def _whole_call(kernel, ins: list, outs: list, grid: tuple, aliases: dict, blocks: KernelBlocks,
                interpret: bool, name: str):
  """kernel over `grid` with every operand whole (programs index them by their ids)."""
  return pl.pallas_call(
      kernel, out_shape=tuple(outs), grid=grid, in_specs=_whole(len(ins)),
      out_specs=tuple(_whole(len(outs))), input_output_aliases=aliases, interpret=interpret,
      compiler_params=_compiler_params(blocks, interpret), name=name)(*ins)
