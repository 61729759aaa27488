"""One layer as four kernels: K1 "mix", K2 "out", K3 "up", K4 "down" (`fused_layer`)."""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops.pallas_inplace import _load
from flash_lcsm_jax.ops.pallas_layer.config import (batch_block, _chunks, KernelBlocks, LayerConfig,
                                                    LayerSpec)
from flash_lcsm_jax.ops.pallas_layer.pieces import (_Act, _at, _batch_rows, _gelu_tanh, _ld,
                                                    _load_bcast, _load_cols, _load_rep, _matvec,
                                                    _matvec_tile, _Operands, _row_mask, _st,
                                                    _stats, _tile_rows, _weight_cast,
                                                    _whole_call)
from flash_lcsm_jax.ops.pallas_layer.weights import LayerWeights

pl = pd.pl


# ----------------------------------------------------------------------------- K1 "mix"


class _MixRefs(NamedTuple):
  """K1's operands: x (B, D) (an _Act); norm1 (M, 2, Dk); w (M, Dm/bc, 3, bc, Dk); wb (M, 3,
  Dm); cw (M, K, 3, Dm); cb (M, 3, Dm); red (M, D); acc (M, B, D); conv_in (M, B, K-1, 3D) or
  None | y (B, D) (an _Act); u (M, B, D); conv (M, B, K-1, 3D) or None (u and conv aliased to
  their inputs)."""
  x: object
  norm: object
  w: object
  wb: object
  cw: object
  cb: object
  red: object
  acc: object
  conv_in: object
  y: object
  u: object
  conv: object


def _mix_chunks(spec: LayerSpec) -> tuple[int, int]:
  """(chunk, count) of K1's reduction over D."""
  return _chunks(spec.dk, spec.config.mix.chunk_for(jnp.dtype(spec.dtype)))


def _mix_tiles(r: _MixRefs, p, m, rows: list, spec: LayerSpec):
  """tiles(c) -> the x0 / x1 / v weight rows of channel block p, chunk c: (bc, chunk) each, or
  (1, bc, chunk) when the batch rows run in the tile order."""
  chunk, _ = _mix_chunks(spec)
  if _tile_rows(rows, spec.config.mix.order)[0] is not None:
    bc = spec.config.mix.rows
    return lambda c: [_load_bcast(r.w, (m, p, g), 0, bc, 1, c * chunk, chunk, spec.dk)
                      for g in range(3)]
  return lambda c: [_load_cols(r.w, (m, p, g, slice(None)), c * chunk, chunk, spec.dk)
                    for g in range(3)]


def _norm_chunk(norm_ref, m, c: int, chunk: int, rows: int, width: int, tiled: bool):
  """Layer m's layer-norm scale and shift (norm_ref (M, 2, width)), column chunk c, in the shape
  the products take: (1, 1, chunk) in the tile order, else (rows, chunk) tiles of equal rows."""
  off = c * chunk
  if tiled:
    return [_load_bcast(norm_ref, (m,), g, 1, 0, off, chunk, width) for g in range(2)]
  return [_load_rep(norm_ref, (m,), g, rows, off, chunk, width) for g in range(2)]


def _row_loaders(name: str, load, rows: list, tile_b) -> dict:
  """{(name, i): load of batch row rows[i]}, or {(name, 0): load of the whole block of rows
  tile_b} in the tile order (_Operands keys)."""
  blocks = rows if tile_b is None else [tile_b]
  return {(name, i): functools.partial(load, b) for i, b in enumerate(blocks)}


def _mix_operands(r: _MixRefs, p, m, rows: list, spec: LayerSpec,
                  preload: bool = False) -> _Operands:
  """Channel block p's loads at layer m that do not depend on x (see _Operands): "params" (the
  in_proj bias, the short convolution's taps and bias, red), ("norm", c) (layer_norm1's scale
  and shift, chunk c), ("state", i) (acc and the short convolution's K - 1 older window entries
  of batch row rows[i], or of the whole block of rows in the tile order: i = 0)."""
  K = spec.short_order
  D, dk, bc = spec.d_model, spec.dk, spec.config.mix.rows
  chunk, count = _mix_chunks(spec)
  j0 = p * bc
  chans = pl.ds(j0, bc)
  cmask = _row_mask(j0, bc, D)
  tile_b, _ = _tile_rows(rows, spec.config.mix.order)

  def params():
    in_b = [r.wb[m, g, chans] for g in range(3)]  # (bc,) each; padded: no mask
    taps = [[r.cw[m, k, g, chans] for g in range(3)] for k in range(K)]
    conv_b = [r.cb[m, g, chans] for g in range(3)]
    return in_b, taps, conv_b, _load(_at(r.red, m, chans), cmask)

  def state(b):
    acc = _ld(_at(r.acc, m, b, chans), cmask)
    window = [[_ld(_at(r.conv_in, m, b, k, pl.ds(g * D + j0, bc)), cmask) for g in range(3)]
              for k in range(K - 1)]
    return acc, window

  loaders = {"params": params}
  loaders.update({("norm", c): functools.partial(_norm_chunk, r.norm, m, c, chunk, bc, dk,
                                                 tile_b is not None) for c in range(count)})
  loaders.update(_row_loaders("state", state, rows, tile_b))
  return _Operands(loaders, preload)


def _mix_block(r: _MixRefs, p, m, rows: list, spec: LayerSpec, tiles=None, ops=None):
  """Channel block p of K1 at layer m for batch rows `rows` (tiles: preloaded weight tiles; ops:
  its _mix_operands, default loaded where used)."""
  K = spec.short_order
  D, bc = spec.d_model, spec.config.mix.rows
  wdtype = jnp.dtype(spec.dtype)
  chunk, count = _mix_chunks(spec)
  j0 = p * bc
  chans = pl.ds(j0, bc)
  cmask = _row_mask(j0, bc, D)
  tiles = tiles or _mix_tiles(r, p, m, rows, spec)
  ops = ops or _mix_operands(r, p, m, rows, spec)

  def row_vector(i):  # layer_norm1(x[b]) chunks, rounded to the weight dtype, as (bc, chunk)
    b = rows[i]
    xs = r.x.read(lambda a: [a.rep(b, bc, c * chunk, chunk, D) for c in range(count)], b, 1, D)
    mean, rstd = _stats(xs, chunk, D, spec.eps)

    def vector(c):
      scale, shift = ops(("norm", c))
      # polled rows are used as read; otherwise re-read (an L1 hit: fewer live registers)
      x = xs[c] if r.x.poll else r.x.rep(b, bc, c * chunk, chunk, D)
      return _weight_cast((x - mean) * rstd * scale + shift, wdtype)
    return vector

  in_b, taps, conv_b, red = ops("params")

  def emit(i, b, sums):
    """Batch row b = rows[i] (sums (bc,) per group), or the pl.ds b of all rows (i = 0, sums
    (rows_b, bc))."""
    acc, older = ops(("state", i))
    proj = [sums[g] + in_b[g] for g in range(3)]
    window = older + [proj]
    c = []
    for g in range(3):  # sum_k window[k] * kernel[k] + bias, in hyena._token_layer's order
      total = window[0][g] * taps[0][g]
      for k in range(1, K):
        total = total + window[k][g] * taps[k][g]
      c.append(total + conv_b[g])
    x0, x1, v = c
    u = x1 * v
    z = acc + red * u
    _st(r.y.at(b, chans), x0 * z, cmask)
    _st(_at(r.u, m, b, chans), u, cmask)
    for k in range(K - 1):  # the new window: window[1:]
      for g in range(3):
        _st(_at(r.conv, m, b, k, pl.ds(g * D + j0, bc)), window[k + 1][g], cmask)

  b, order = _tile_rows(rows, spec.config.mix.order)
  if b is not None:
    xs = r.x.read(lambda a: [a.bcast(rows[0], len(rows), c * chunk, chunk, D)
                             for c in range(count)], rows[0], len(rows), D)
    mean, rstd = _stats(xs, chunk, D, spec.eps)  # (rows_b, 1, 1)

    def vector(c):  # layer_norm1(x[rows]) chunk c, cast to the weight dtype: (rows_b, 1, chunk)
      scale, shift = ops(("norm", c))
      return _weight_cast((xs[c] - mean) * rstd * scale + shift, wdtype)
    emit(0, b, _matvec_tile(tiles, vector, count))
  else:
    _matvec(tiles, row_vector, lambda i, sums: emit(i, rows[i], sums), len(rows), chunk, count,
            bc, order)


def _mix_kernel(*refs, spec: LayerSpec, batch: int, bb: int):
  """One (channel block, batch block) program of K1.

  refs: m (1,) int32; x; norm1; mix_w; mix_b; conv_w; conv_b; red; acc; [conv_in]; u_in | y; u;
  [conv] (see _MixRefs; [..] only when the short conv has K > 1 taps).
  """
  if spec.short_order > 1:
    m_ref, x, norm, w, wb, cw, cb, red, acc, conv_in, _, y, u, conv = refs
  else:
    (m_ref, x, norm, w, wb, cw, cb, red, acc, _, y, u), conv_in, conv = refs, None, None
  _mix_block(_MixRefs(_Act(x), norm, w, wb, cw, cb, red, acc, conv_in, _Act(y), u, conv),
             pl.program_id(0), m_ref[0], _batch_rows(bb, batch), spec)


def _mix_call(w: LayerWeights, m, x, acc, conv_state, red, u_buf, spec: LayerSpec,
              interpret: bool):
  B, D = x.shape
  bb = batch_block(B, spec.config)
  blocks = spec.config.mix
  has_conv = spec.short_order > 1
  ins = [m, x, w.norm1, w.mix_w, w.mix_b, w.conv_w, w.conv_b, red, acc]
  ins += [conv_state] if has_conv else []
  ins += [u_buf]
  outs = [jax.ShapeDtypeStruct((B, D), jnp.float32), jax.ShapeDtypeStruct(u_buf.shape,
                                                                           jnp.float32)]
  aliases = {len(ins) - 1: 1}
  if has_conv:
    outs.append(jax.ShapeDtypeStruct(conv_state.shape, jnp.float32))
    aliases[len(ins) - 2] = 2
  res = _whole_call(functools.partial(_mix_kernel, spec=spec, batch=B, bb=bb), ins, outs,
                    (spec.dm // blocks.rows, B // bb), aliases, blocks, interpret,
                    "hyena_layer_mix")
  if has_conv:
    return res
  return res[0], res[1], conv_state


# ----------------------------------------------------------------------------- K2, K3, K4


@dataclasses.dataclass(frozen=True)
class _Dense:
  """What is static about one of out / up / down (hashable)."""
  n_in: int
  n_out: int
  blocks: KernelBlocks
  k_width: int
  wdtype: str
  eps: float | None  # layer norm of the input (with norm's scale / shift) if not None
  gelu: bool
  residual: bool

  def chunks(self) -> tuple[int, int]:
    return _chunks(self.k_width, self.blocks.chunk_for(jnp.dtype(self.wdtype)))


def _dense_tiles(w_ref, p, m, rows: list, d: _Dense):
  """tiles(c) -> [the (rows, chunk) weight tile of row block p, chunk c], or (1, rows, chunk)
  when the batch rows run in the tile order."""
  chunk, _ = d.chunks()
  if _tile_rows(rows, d.blocks.order)[0] is not None:
    return lambda c: [_load_bcast(w_ref, (m,), p * d.blocks.rows, d.blocks.rows, 1, c * chunk,
                                  chunk, d.k_width)]
  rows_sl = pl.ds(p * d.blocks.rows, d.blocks.rows)
  return lambda c: [_load_cols(w_ref, (m, rows_sl), c * chunk, chunk, d.k_width)]


def _dense_operands(norm_ref, b_ref, res: _Act | None, p, m, rows: list, d: _Dense,
                    preload: bool = False) -> _Operands:
  """Row block p's loads at layer m that do not depend on the input v (see _Operands): "bias",
  ("norm", c) (the input layer norm's scale and shift, chunk c, if d.eps is set), ("res", i)
  (the residual rows of batch row rows[i], or of the whole block of rows in the tile order:
  i = 0, if d.residual)."""
  rows_per = d.blocks.rows
  chunk, count = d.chunks()
  r0 = p * rows_per
  rows_sl = pl.ds(r0, rows_per)
  rmask = _row_mask(r0, rows_per, d.n_out)
  tile_b, _ = _tile_rows(rows, d.blocks.order)

  def residual(b):
    return res.read(lambda a: [_ld(a.at(b, rows_sl), rmask, a.poll)])[0]

  loaders = {"bias": lambda: b_ref[m, rows_sl]}
  if d.eps is not None:
    loaders.update({("norm", c): functools.partial(_norm_chunk, norm_ref, m, c, chunk, rows_per,
                                                   d.k_width, tile_b is not None)
                    for c in range(count)})
  if d.residual:
    loaders.update(_row_loaders("res", residual, rows, tile_b))
  return _Operands(loaders, preload)


def _dense_block(v: _Act, norm_ref, w_ref, b_ref, res: _Act | None, out: _Act, p, m, rows: list,
                 d: _Dense, tiles=None, ops=None):
  """Row block p of out / up / down at layer m for batch rows `rows`:

    out[b, r] = [res[b, r] +] act(sum_k cast(prologue(v[b]))[k] * W^T[m, r, k] + bias[m, r])

  v (B, n_in); norm (M, 2, k_width) or None; w (M, rows_p, k_width); bias (M, rows_p); res
  (B, n_out) or None | out (B, n_out) (v, res and out as _Act views); tiles: preloaded weight
  tiles (default: loaded here); ops: its _dense_operands (default: loaded where used).
  """
  rows_per, wdtype = d.blocks.rows, jnp.dtype(d.wdtype)
  chunk, count = d.chunks()
  r0 = p * rows_per
  rows_sl = pl.ds(r0, rows_per)
  rmask = _row_mask(r0, rows_per, d.n_out)
  tiles = tiles or _dense_tiles(w_ref, p, m, rows, d)
  ops = ops or _dense_operands(norm_ref, b_ref, res, p, m, rows, d)

  def row_vector(i):  # (rows, chunk) tiles, every row the same activation chunk
    b = rows[i]
    vs = None
    if v.poll or d.eps is not None:  # polled: every chunk at once, before the products
      vs = v.read(lambda a: [a.rep(b, rows_per, c * chunk, chunk, d.n_in) for c in range(count)],
                  b, 1, d.n_in)
    if d.eps is not None:
      mean, rstd = _stats(vs, chunk, d.n_in, d.eps)

    def vector(c):
      x = vs[c] if v.poll else v.rep(b, rows_per, c * chunk, chunk, d.n_in)
      if d.eps is not None:
        scale, shift = ops(("norm", c))
        x = (x - mean) * rstd * scale + shift
      return _weight_cast(x, wdtype)
    return vector

  bias = ops("bias")

  def emit(i, b, sums):
    """Batch row b = rows[i] (sums (rows,)) or the pl.ds b of all rows (i = 0, sums (rows_b,
    rows))."""
    y = sums[0] + bias
    if d.gelu:
      y = _gelu_tanh(y)
    if d.residual:
      y = ops(("res", i)) + y
    _st(out.at(b, rows_sl), y, rmask)

  b, order = _tile_rows(rows, d.blocks.order)
  if b is not None:
    vs = v.read(lambda a: [a.bcast(rows[0], len(rows), c * chunk, chunk, d.n_in)
                           for c in range(count)], rows[0], len(rows), d.n_in)
    if d.eps is not None:
      mean, rstd = _stats(vs, chunk, d.n_in, d.eps)  # (rows_b, 1, 1)

    def vector(c):  # (rows_b, 1, chunk): chunk c of every batch row's (normalised) activation
      x = vs[c]
      if d.eps is not None:
        scale, shift = ops(("norm", c))
        x = (x - mean) * rstd * scale + shift
      return _weight_cast(x, wdtype)
    emit(0, b, _matvec_tile(tiles, vector, count))
  else:
    _matvec(tiles, row_vector, lambda i, sums: emit(i, rows[i], sums), len(rows), chunk, count,
            rows_per, order)


def _dense_kernel(*refs, d: _Dense, batch: int, bb: int):
  """One (row block, batch block) program of out / up / down.

  refs: m (1,); v; [norm if d.eps is not None]; w; bias; [res if d.residual] | out.
  """
  refs = list(refs)
  m_ref, v_ref = refs.pop(0), refs.pop(0)
  norm_ref = refs.pop(0) if d.eps is not None else None
  w_ref, b_ref = refs.pop(0), refs.pop(0)
  res_ref = refs.pop(0) if d.residual else None
  (out_ref,) = refs
  res = None if res_ref is None else _Act(res_ref)
  _dense_block(_Act(v_ref), norm_ref, w_ref, b_ref, res, _Act(out_ref), pl.program_id(0),
               m_ref[0], _batch_rows(bb, batch), d)


def _dense_call(m, v, norm, w, bias, res, *, n_out: int, blocks: KernelBlocks, wdtype: str,
                eps: float | None, gelu: bool, interpret: bool, config: LayerConfig, name: str):
  B, n_in = v.shape
  bb = batch_block(B, config)
  ins = [m, v] + ([norm] if eps is not None else []) + [w, bias] + (
      [res] if res is not None else [])
  d = _Dense(n_in=n_in, n_out=n_out, blocks=blocks, k_width=w.shape[-1], wdtype=wdtype, eps=eps,
             gelu=gelu, residual=res is not None)
  kernel = functools.partial(_dense_kernel, d=d, batch=B, bb=bb)
  out, = _whole_call(kernel, ins, [jax.ShapeDtypeStruct((B, n_out), jnp.float32)],
                     (w.shape[1] // blocks.rows, B // bb), {}, blocks, interpret, name)
  return out


# ----------------------------------------------------------------------------- one layer


@functools.partial(jax.jit, static_argnames=("spec", "interpret"))
def fused_layer(w: LayerWeights, m: jax.Array, x: jax.Array, acc: jax.Array,
                conv_state: jax.Array, red: jax.Array, u_buf: jax.Array, *, spec: LayerSpec,
                interpret: bool = False):
  """Layer m at one position: the four kernels (jitted on its own, so repeated calls inside an
  outer jit share one lowering and one Triton compile per kernel; XLA inlines it).

  Args:
    w: PreparedLayers.weights.
    m: (1,) int32 layer index.
    x: (B, D) float32 residual.
    acc: (M, B, D) float32 long-convolution contributions (read at layer m).
    conv_state: (M, B, K-1, 3D) float32 (layer m is replaced by its new window, in place).
    red: (M, D) float32 red-cell taps h_0 + bias.
    u_buf: (M, B, D) float32 (layer m is overwritten with u_t, in place).
    spec: PreparedLayers.spec.
    interpret: run the kernel bodies as XLA ops (any backend) instead of compiling with Triton.

  Returns:
    x (B, D) after the layer, u_buf, conv_state.
  """
  cfg = spec.config
  y, u_buf, conv_state = _mix_call(w, m, x, acc, conv_state, red, u_buf, spec, interpret)
  x1 = _dense_call(m, y, None, w.out_w, w.out_b, x, n_out=spec.d_model, blocks=cfg.out,
                   wdtype=spec.dtype, eps=None, gelu=False, interpret=interpret, config=cfg,
                   name="hyena_layer_out")
  h = _dense_call(m, x1, w.norm2, w.up_w, w.up_b, None, n_out=spec.d_inner, blocks=cfg.up,
                  wdtype=spec.dtype, eps=spec.eps, gelu=True, interpret=interpret, config=cfg,
                  name="hyena_layer_up")
  x2 = _dense_call(m, h, None, w.down_w, w.down_b, x1, n_out=spec.d_model, blocks=cfg.down,
                   wdtype=spec.dtype, eps=None, gelu=False, interpret=interpret, config=cfg,
                   name="hyena_layer_down")
  return x2, u_buf, conv_state


def layer_index(m) -> jax.Array:
  return jnp.reshape(jnp.asarray(m, jnp.int32), (1,))


def reference_layer(cfg: HyenaConfig, lp, x, acc_m, conv_m, red_m):
  """The plain-jnp layer (hyena._token_layer): x, u, new conv window of one layer."""
  return hyena._token_layer(cfg, lp, x, acc_m, conv_m, red_m)  # pylint: disable=protected-access
