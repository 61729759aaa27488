"""Every layer of one token in one launch, TWO phases per layer (LayerConfig.phases = 2).

The four-phase persistent kernel (pallas_layer._token_kernel: mix, out, up, down, a grid-wide
barrier after each) spends most of a token waiting: each phase is a chain of dependent memory
round trips (activations in, products, stores, the barrier's atomics), ~4 us per phase on an
H100, 72 phases per token at M = 18. Here out_proj and fc2 are split-K products folded into the
phases that produce their inputs:

  phase A (program p owns mix channels [p bc, (p + 1) bc)):
      x    = R[m] + B2[m] + sum(A2[m])                       (the residual entering layer m)
      y    = the mix kernel's output on those channels       (pallas_layer._mix_block)
      A1[m] += y[chans] @ out_proj[chans, :]                 (partial sums, integer atomics)
  phase B (program p owns fc1 rows [p ru, (p + 1) ru)):
      x1   = x + out_b[m] + sum(A1[m]);  R[m + 1][slice p] = x1[slice p]
      h    = gelu(layer_norm2(x1) @ fc1[:, rows] + b)        (pallas_layer._dense_block)
      A2[m + 1] += h[rows] @ fc2[rows, :]
  with a barrier between the phases: 2 M - 1 barriers per token instead of 4 M - 1.

Deterministic sums. Floating-point atomics would make every token's result depend on the order
the programs arrive in. Each partial product v is instead split into three integer digits,
v * 2^32 = d2 2^42 + d1 2^21 + d0 with |d1|, |d0| < 2^21 (exact float operations: scaling by
powers of two and subtracting integer parts), and each digit is added into its own int32 word;
integer addition is associative, so the sums do not depend on the order, and up to 2^10 programs
cannot overflow the low digits. A reader normalises the carries in integers and forms
(D2 2^10 + D1 2^-11) + D0 2^-32 in float32 (one rounding). The sums are exact to 2^-32 in
absolute terms (partial products below ~1e-9 in magnitude are lost), and a single partial
product must stay below 2^41 in magnitude.

Buffers (zeros but R[0] = x, made per token by XLA): R (M + 1, B, Dp) float32 the x1 part of
each layer's residual; A1 (M, 3, B, Dp) / A2 (M + 1, 3, B, Dp) int32 digit sums of out_proj /
fc2; B2 = prepared down_b (M + 1, Dp), row 0 zero. After the kernel XLA forms the final residual
R[M] + B2[M] + sum(A2[M]). The layer weights are prepared with phases = 2
(pallas_layer._prepare): out_proj and fc2 untransposed (a program's rows are contiguous), their
outputs padded to Dp (a multiple of SPLIT_CHUNK, so no atomic needs a mask).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from flash_lcsm_jax.ops import pallas_layer as pal
from flash_lcsm_jax.ops.pallas_inplace import _store, _triton_memory_op

pl = pal.pl
DIGIT_BITS = 21
_MASK = (1 << DIGIT_BITS) - 1
# v * 2^-10 is the top digit: resolution 2^(10 - 2 * 21) = 2^-32.
_TOP = 2.0 ** -10
_RADIX = float(1 << DIGIT_BITS)


def to_digits(v):
  """Three int32 digits (top, middle, low) of float32 v with v ~= top 2^10 + mid 2^-11 + low 2^-32,
  each truncated toward zero (|mid|, |low| < 2^21): every step is exact in float32 (a power-of-two
  scale, or subtracting a number's own integer part), only the low digit drops bits."""
  t = v * _TOP
  d2 = t.astype(jnp.int32)
  r = (t - d2.astype(jnp.float32)) * _RADIX
  d1 = r.astype(jnp.int32)
  d0 = ((r - d1.astype(jnp.float32)) * _RADIX).astype(jnp.int32)
  return d2, d1, d0


def from_digits(d2, d1, d0):
  """float32 value of digit sums (carries normalised in int32 first, then one rounding)."""
  d1 = d1 + jnp.right_shift(d0, DIGIT_BITS)
  d0 = jnp.bitwise_and(d0, _MASK)
  d2 = d2 + jnp.right_shift(d1, DIGIT_BITS)
  d1 = jnp.bitwise_and(d1, _MASK)
  f32 = jnp.float32
  return (d2.astype(f32) * (1.0 / _TOP) + d1.astype(f32) * (1.0 / (_TOP * _RADIX))) + (
      d0.astype(f32) * (1.0 / (_TOP * _RADIX * _RADIX)))


def _atomic_add_digits(ref, idx: tuple, v):
  """ref[*idx[:1], g, *idx[1:]] += digit g of v, for g = 0, 1, 2 (ref (..., 3, B, Dp) int32)."""
  atomic_add = _triton_memory_op("atomic_add")
  for g, d in enumerate(to_digits(v)):
    atomic_add(ref, (idx[0], jnp.int32(g)) + idx[1:], d)


def _split_tiles(w_ref, m, r0, rows: int, dp: int):
  """The (rows, SPLIT_CHUNK) float32 tiles of w_ref[m, r0:r0 + rows, :] (a split-K product's
  weight rows), one per output chunk."""
  ch = pal.SPLIT_CHUNK
  return [pal._load_cols(w_ref, (m, pl.ds(r0, rows)), c * ch, ch, dp)  # pylint: disable=protected-access
          for c in range(dp // ch)]


def _split_product(tiles, v, acc_ref, m, b: int):
  """acc_ref[m, :, b, :] += digits of v @ W (v: (rows,) float32, W: the tiles' rows)."""
  ch = pal.SPLIT_CHUNK
  for c, w in enumerate(tiles):
    part = jnp.sum(w * v[:, None], axis=0)
    _atomic_add_digits(acc_ref, (m, jnp.int32(b), pl.ds(c * ch, ch)), part)


def _token_kernel(*refs, spec: pal.LayerSpec, batch: int, grid: int, interpret: bool):
  """All layers of one token, two phases per layer (module docstring).

  refs: acc; red; norm1; mix_w; mix_b; conv_w; conv_b; [conv_in]; u_in; out_w; out_b; norm2;
  up_w; up_b; down_w; down_b (= B2); r_in; a1_in; a2_in; count_in | u; [conv]; R; A1; A2; count
  (the last six aliased to their inputs).
  """
  has_conv = spec.short_order > 1
  refs = list(refs)
  acc, red, norm1, mix_w, mix_b, conv_w, conv_b = refs[:7]
  del refs[:7]
  conv_in = refs.pop(0) if has_conv else None
  refs.pop(0)  # u_in: written through u
  out_w, out_b, norm2, up_w, up_b, down_w, b2 = refs[:7]
  del refs[:7 + 4]  # and r_in, a1_in, a2_in, count_in: read and written through the outputs
  u = refs.pop(0)
  conv = refs.pop(0) if has_conv else None
  r_buf, a1, a2, count = refs
  cfg, D, I, dp = spec.config, spec.d_model, spec.d_inner, spec.dp
  bc, ru = cfg.mix.rows, cfg.up.rows
  rows = list(range(batch))
  n_a, n_b = spec.dm // bc, spec.iu // ru
  mix = pal._MixRefs(None, norm1, mix_w, mix_b, conv_w, conv_b, red, acc, conv_in, None, u,  # pylint: disable=protected-access
                     conv)
  d_up = pal._Dense(D, I, cfg.up, spec.dk, spec.dtype, spec.eps, True, False)  # pylint: disable=protected-access
  mix_count = pal._chunks(spec.dk, cfg.mix.chunk_for(jnp.dtype(spec.dtype)))[1]  # pylint: disable=protected-access
  up_count = d_up.chunks()[1]
  q = pl.program_id(0)
  load_rep = pal._load_rep  # pylint: disable=protected-access

  def residual(m, b, rows_, off, size):  # x entering layer m: R[m] + B2[m] + sum(A2[m])
    digits = [load_rep(a2, (m, jnp.int32(g)), b, rows_, off, size, D, cast=False)
              for g in range(3)]
    return (load_rep(r_buf, (m,), b, rows_, off, size, D) + load_rep(b2, (), m, rows_, off, size, D)
            ) + from_digits(*digits)

  def after_out(m, b, rows_, off, size):  # x1 of layer m: x + out_b[m] + sum(A1[m])
    digits = [load_rep(a1, (m, jnp.int32(g)), b, rows_, off, size, D, cast=False)
              for g in range(3)]
    return (residual(m, b, rows_, off, size) + load_rep(out_b, (), m, rows_, off, size, D)
            ) + from_digits(*digits)

  def phase_a(p, m, tiles, split):
    split = split or _split_tiles(out_w, m, p * bc, bc, dp)

    def on_y(i, y):
      _split_product(split, y, a1, m, rows[i])
    pal._mix_block(mix, p, m, rows, spec, tiles, source=functools.partial(residual, m),  # pylint: disable=protected-access
                   on_y=on_y)

  def phase_b(p, m, tiles, split):
    split = split or _split_tiles(down_w, m, p * ru, ru, dp)

    def on_out(i, h):
      _split_product(split, h, a2, m + 1, rows[i])
    pal._dense_block(None, norm2, up_w, up_b, None, None, p, m, rows, d_up, tiles,  # pylint: disable=protected-access
                     source=functools.partial(after_out, m), on_out=on_out)

  # Each program also writes its slice of x1 into R[m + 1] (the next layers read it whole).
  width = 1 << max(0, (-(-D // grid) - 1).bit_length())
  slice_mask = q * width + jax.lax.broadcasted_iota(jnp.int32, (width,), 0) < D

  def store_x1(m):
    for b in rows:
      x1 = after_out(m, b, 1, q * width, width)  # (1, width), through the same gathers and sums
      _store(pal._at(r_buf, m + 1, pl.ds(b, 1), pl.ds(q * width, width)), x1,  # pylint: disable=protected-access
             slice_mask[None, :])

  phases = [
      (n_a, mix_count, lambda p, m: pal._mix_tiles(mix, p, m, spec),  # pylint: disable=protected-access
       lambda p, m: _split_tiles(out_w, m, p * bc, bc, dp), phase_a),
      (n_b, up_count, lambda p, m: pal._dense_tiles(up_w, p, m, d_up),  # pylint: disable=protected-access
       lambda p, m: _split_tiles(down_w, m, p * ru, ru, dp), phase_b),
  ]

  def layer(m, carry):
    for k, (n, chunks, tiles, split_tiles, compute) in enumerate(phases):
      index = 2 * m + k
      if n <= grid:
        loaded = split = None
        if cfg.prefetch:  # weights do not depend on the activations: load before the wait
          own = jnp.minimum(q, n - 1)
          tile_fn = tiles(own, m)
          loaded = [tile_fn(c) for c in range(chunks)]
          split = split_tiles(own, m)
        pal._grid_barrier(count, index, grid, interpret, cfg.poll)  # pylint: disable=protected-access
        if k == 1:
          store_x1(m)
        tile_arg = None if loaded is None else (lambda c, loaded=loaded: loaded[c])
        if n == grid:
          compute(q, m, tile_arg, split)
        else:
          pl.when(q < n)(functools.partial(compute, q, m, tile_arg, split))
      else:
        pal._grid_barrier(count, index, grid, interpret, cfg.poll)  # pylint: disable=protected-access
        if k == 1:
          store_x1(m)

        def block(i, c, compute=compute, n=n):
          p = q + i * grid
          pl.when(p < n)(functools.partial(compute, p, m, None, None))
          return c
        jax.lax.fori_loop(0, -(-n // grid), block, 0)
    return carry

  jax.lax.fori_loop(0, spec.n_layers, layer, 0)


def grid_for(spec: pal.LayerSpec) -> int:
  return max(spec.dm // spec.config.mix.rows, spec.iu // spec.config.up.rows)


def persistent_call(w: pal.LayerWeights, x, acc, conv_state, red, u_buf, spec: pal.LayerSpec,
                    interpret: bool):
  """Every layer of one token in one pallas_call, two phases per layer. Returns x after the
  last layer (B, D), u_buf, conv_state."""
  if spec.config.phases != 2:
    raise ValueError("pallas_token needs weights prepared with LayerConfig.phases = 2")
  B, D = x.shape
  M, dp = spec.n_layers, spec.dp
  has_conv = spec.short_order > 1
  grid = 1 if interpret else grid_for(spec)
  if not interpret:
    pal.check_resident(grid)
  f32, i32 = jnp.float32, jnp.int32
  r_buf = jnp.zeros((M + 1, B, dp), f32).at[0, :, :D].set(x)
  a1 = jnp.zeros((M, 3, B, dp), i32)
  a2 = jnp.zeros((M + 1, 3, B, dp), i32)
  count = jnp.zeros((1,), i32)
  ins = [acc, red, w.norm1, w.mix_w, w.mix_b, w.conv_w, w.conv_b]
  ins += [conv_state] if has_conv else []
  ins += [u_buf, w.out_w, w.out_b, w.norm2, w.up_w, w.up_b, w.down_w, w.down_b]
  first_buf = len(ins)
  ins += [r_buf, a1, a2, count]
  outs = [jax.ShapeDtypeStruct(u_buf.shape, f32)]
  aliases = {7 + has_conv: 0}  # ins: 7 weights / constants, [conv_state], u_buf, ...
  if has_conv:
    outs.append(jax.ShapeDtypeStruct(conv_state.shape, f32))
    aliases[7] = 1
  for k, buf in enumerate((r_buf, a1, a2, count)):
    aliases[first_buf + k] = len(outs)
    outs.append(jax.ShapeDtypeStruct(buf.shape, buf.dtype))
  res = pl.pallas_call(
      functools.partial(_token_kernel, spec=spec, batch=B, grid=grid, interpret=interpret),
      out_shape=tuple(outs),
      grid=(grid,),
      in_specs=pal._whole(len(ins)),  # pylint: disable=protected-access
      out_specs=tuple(pal._whole(len(outs))),  # pylint: disable=protected-access
      input_output_aliases=aliases,
      interpret=interpret,
      compiler_params=pal._compiler_params(spec.config.mix, interpret),  # pylint: disable=protected-access
      name="hyena_token_layers_split",
  )(*ins)
  u_buf = res[0]
  conv_state = res[1] if has_conv else conv_state
  r_buf, a2 = res[-4], res[-2]
  x = (r_buf[M] + w.down_b[M]) + from_digits(a2[M, 0], a2[M, 1], a2[M, 2])
  return x[:, :D], u_buf, conv_state
