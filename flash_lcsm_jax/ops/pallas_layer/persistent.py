"""Every layer of one token in one launch: the four phases per layer with grid-wide
synchronisation between them (`_persistent_call`)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from flash_lcsm_jax.ops import ordered_atomics
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops.pallas_inplace import _triton_memory_op
from flash_lcsm_jax.ops.pallas_layer import config as layer_config
from flash_lcsm_jax.ops.pallas_layer.config import (LayerSpec, persistent_config, persistent_grid,
                                                    _phase_blocks)
from flash_lcsm_jax.ops.pallas_layer.layer import (_Dense, _dense_block, _dense_operands,
                                                   _dense_tiles, _mix_block, _mix_chunks,
                                                   _mix_operands, _mix_tiles, _MixRefs)
from flash_lcsm_jax.ops.pallas_layer.pieces import _Act, pending_fill, _whole_call
from flash_lcsm_jax.ops.pallas_layer.weights import LayerWeights

pl = pd.pl


def _grid_arrive(count_ref, index, interpret: bool, order: str = "acq_rel"):
  """This program has made every store before barrier `index` (0: no barrier): it adds 1 to the
  arrival count (count_ref (1,) int32 counts arrivals over the whole kernel, so barrier i is
  passed once it holds i * grid). The atomic is GPU-scope, acquire-release or (order
  "release_acquire", LayerConfig.barrier_order) releasing, and runs once per program; the block
  barrier before it orders every warp's stores before the arrival."""
  if not interpret:
    _triton_memory_op("debug_barrier")()
  ordered_atomics.atomic_add(count_ref, (jnp.int32(0),), jnp.minimum(index, 1).astype(jnp.int32),
                             "acq_rel" if order == "acq_rel" else "release")


def _grid_wait(count_ref, index, grid: int, interpret: bool, order: str = "acq_rel"):
  """Waits until all `grid` programs have arrived at barrier `index`. The count is polled with
  atomic adds of 0, each acquire-release or (order "release_acquire") acquiring (polling with
  volatile loads and one acquiring atomic at the end gave wrong results on an H100: session 6,
  NOTES); the block barrier after it orders every warp's later loads after the wait."""
  poll = "acq_rel" if order == "acq_rel" else "acquire"
  target = (index * grid).astype(jnp.int32)
  jax.lax.while_loop(
      lambda seen: seen < target,
      lambda seen: ordered_atomics.atomic_add(count_ref, (0 * seen,), 0 * seen, poll),
      jnp.int32(0))
  if not interpret:
    _triton_memory_op("debug_barrier")()


def _grid_barrier(count_ref, index, grid: int, interpret: bool, order: str = "acq_rel"):
  """Arrive at barrier `index`, then wait for every program (see _grid_arrive / _grid_wait).
  Only safe when all `grid` programs are resident at once (grid <= SMs, nothing else running).
  """
  _grid_arrive(count_ref, index, interpret, order)
  _grid_wait(count_ref, index, grid, interpret, order)


def _token_kernel(*refs, spec: LayerSpec, batch: int, grid: int, interpret: bool):
  """All M layers of one token in one launch: per layer the four phases of `fused_layer`
  (mix, out, up, down), each program doing the blocks p = program, program + grid, ... of a
  phase, with a grid-wide barrier between phases. When a phase has at most `grid` blocks and
  spec.config.prefetch is set, a program loads its weight tile BEFORE waiting at the barrier
  (weights do not depend on the activations), so streaming weights overlaps the wait; with
  spec.config.prefetch_operands (and barriers) it loads the block's other operands there too
  (norm scale and shift, biases, the short convolution's taps and window, acc, residual rows:
  _Operands), so their round trips do not follow the wait either.

  With spec.config.sync "data" or "data_l1" there are no barriers: every phase writes a buffer
  of its own (x (M + 1, B, D): x[m] the residual entering layer m; y, x1 (M, B, D); h (M, B,
  I)), filled with PENDING beforehand, and reads the previous phases' buffers with polling loads
  (_Act).

  refs: x0; acc; red; norm1; mix_w; mix_b; conv_w; conv_b; [conv_in]; u_in; out_w; out_b;
  norm2; up_w; up_b; down_w; down_b; count_in (1,) int32 zeros; [y0; x10; h0 unless sync is
  "barrier"]
  | x (aliased to x0; sync "barrier": (B, D), the residual, updated in place by every layer's
  down phase); y; x1; h ((B, D), (B, D), (B, I) under sync "barrier", aliased to y0, x10, h0
  otherwise); u; [conv]; count (u, conv, count aliased to their inputs).
  """
  has_conv = spec.short_order > 1
  refs = list(refs)
  _, acc, red, norm1, mix_w, mix_b, conv_w, conv_b = refs[:8]
  del refs[:8]
  conv_in = refs.pop(0) if has_conv else None
  refs.pop(0)  # u_in: written through u
  out_w, out_b, norm2, up_w, up_b, down_w, down_b, _ = refs[:8]
  del refs[:8]
  cfg, D, I = spec.config, spec.d_model, spec.d_inner
  data_sync = cfg.sync != "barrier"
  if data_sync:
    del refs[:3]  # y0, x10, h0: written through y, x1, h
  x, y, x1, h, u = refs[:5]
  del refs[:5]
  conv = refs.pop(0) if has_conv else None
  (count,) = refs
  rows = list(range(batch))

  def act(ref, m, read: str | None = None):
    """Buffer `ref` as layer m's phases see it: written (read=None), read with polling loads
    ("poll"), or read once with volatile loads ("done": rows of a buffer this program has
    polled in full before, the residuals)."""
    if not data_sync:
      return _Act(ref)
    return _Act(ref, (m,), poll=read is not None, spin=read == "poll" and not interpret,
                compact=cfg.sync == "data_l1")

  def mix(m):
    return _MixRefs(act(x, m, "poll"), norm1, mix_w, mix_b, conv_w, conv_b, red, acc, conv_in,
                    act(y, m), u, conv)
  d_out = _Dense(D, D, cfg.out, spec.dk, spec.dtype, None, False, True)
  d_up = _Dense(D, I, cfg.up, spec.dk, spec.dtype, spec.eps, True, False)
  d_down = _Dense(I, D, cfg.down, spec.ik, spec.dtype, None, False, True)
  n_mix, n_out, n_up, n_down = _phase_blocks(spec)
  res_out, res_down = (lambda m: act(x, m, "done")), (lambda m: act(x1, m, "done"))
  # Per phase, in order: (blocks, chunks, tiles(p, m), operands(p, m, preload),
  # compute(p, m, tiles, operands)).
  phases = [
      (n_mix, _mix_chunks(spec)[1], lambda p, m: _mix_tiles(mix(m), p, m, rows, spec),
       lambda p, m, pre: _mix_operands(mix(m), p, m, rows, spec, pre),
       lambda p, m, t, o: _mix_block(mix(m), p, m, rows, spec, t, o)),
      (n_out, d_out.chunks()[1], lambda p, m: _dense_tiles(out_w, p, m, rows, d_out),
       lambda p, m, pre: _dense_operands(None, out_b, res_out(m), p, m, rows, d_out, pre),
       lambda p, m, t, o: _dense_block(act(y, m, "poll"), None, out_w, out_b, res_out(m),
                                       act(x1, m), p, m, rows, d_out, t, o)),
      (n_up, d_up.chunks()[1], lambda p, m: _dense_tiles(up_w, p, m, rows, d_up),
       lambda p, m, pre: _dense_operands(norm2, up_b, None, p, m, rows, d_up, pre),
       lambda p, m, t, o: _dense_block(act(x1, m, "poll"), norm2, up_w, up_b, None, act(h, m),
                                       p, m, rows, d_up, t, o)),
      (n_down, d_down.chunks()[1],
       lambda p, m: _dense_tiles(down_w, p, m, rows, d_down),
       lambda p, m, pre: _dense_operands(None, down_b, res_down(m), p, m, rows, d_down, pre),
       lambda p, m, t, o: _dense_block(act(h, m, "poll"), None, down_w, down_b, res_down(m),
                                       act(x, m + 1), p, m, rows, d_down, t, o)),
  ]
  q = pl.program_id(0)
  barrier = not data_sync
  # Operands are loaded before the wait only under barriers: there every residual row was
  # written before the previous phase's barrier, which this program has passed.
  preload = barrier and cfg.prefetch_operands

  def layer(m, carry):
    for k, (n, chunks, tiles, operands, compute) in enumerate(phases):
      index = 4 * m + k
      if n <= grid:
        loaded = ops = None
        if barrier and cfg.arrive_early:
          _grid_arrive(count, index, interpret, cfg.barrier_order)
        mine = jnp.minimum(q, n - 1)  # programs past the phase's blocks load the last one's
        if cfg.prefetch:
          tile_fn = tiles(mine, m)
          loaded = [tile_fn(c) for c in range(chunks)]
        if preload:
          ops = operands(mine, m, True)
        if barrier and not cfg.arrive_early:
          _grid_arrive(count, index, interpret, cfg.barrier_order)
        if barrier:
          _grid_wait(count, index, grid, interpret, cfg.barrier_order)
        tile_arg = None if loaded is None else (lambda c, loaded=loaded: loaded[c])
        if n == grid:
          compute(q, m, tile_arg, ops)
        else:
          pl.when(q < n)(functools.partial(compute, q, m, tile_arg, ops))
      else:
        if barrier:
          _grid_barrier(count, index, grid, interpret, cfg.barrier_order)

        def block(i, c, compute=compute, n=n):
          p = q + i * grid
          pl.when(p < n)(functools.partial(compute, p, m, None, None))
          return c
        jax.lax.fori_loop(0, -(-n // grid), block, 0)
    return carry

  jax.lax.fori_loop(0, spec.n_layers, layer, 0)


def _persistent_call(w: LayerWeights, x, acc, conv_state, red, u_buf, spec: LayerSpec,
                     interpret: bool):
  """Every layer of one token in one pallas_call (see _token_kernel). Returns x, u_buf,
  conv_state (x after the last layer)."""
  B, D = x.shape
  spec = dataclasses.replace(spec, config=spec.config.for_batch(B, spec.dtype))
  has_conv = spec.short_order > 1
  grid = 1 if interpret else persistent_grid(spec)
  if not interpret:
    cores = layer_config.gpu_core_count()  # looked up here, so tests can patch it
    per_sm = spec.config.programs_per_sm
    if cores is not None and grid > cores * per_sm:
      raise ValueError(f"the persistent token kernel needs all {grid} programs resident at once, "
                       f"and this GPU has {cores} SMs ({per_sm} program(s) each): use "
                       f"persistent_config(D, I, programs={cores}, programs_per_sm={per_sm}) for "
                       f"the prepared weights, or another layer_loop")
  ins = [x, acc, red, w.norm1, w.mix_w, w.mix_b, w.conv_w, w.conv_b]
  ins += [conv_state] if has_conv else []
  u_at = len(ins)
  ins += [u_buf, w.out_w, w.out_b, w.norm2, w.up_w, w.up_b, w.down_w, w.down_b,
          jnp.zeros((1,), jnp.int32)]
  M, I, f32 = spec.n_layers, spec.d_inner, jnp.float32
  data_sync = spec.config.sync != "barrier"
  shapes = [(B, D), (B, D), (B, D), (B, I)]  # x, y, x1, h
  aliases = {0: 0, u_at: 4}
  if data_sync:  # write-once buffers, PENDING until written
    shapes = [(M + 1, B, D), (M, B, D), (M, B, D), (M, B, I)]
    ins[0] = pending_fill(shapes[0]).at[0].set(jnp.where(jnp.isnan(x), jnp.nan, x))
    for k, shape in enumerate(shapes[1:], 1):
      aliases[len(ins)] = k
      ins.append(pending_fill(shape))
  outs = [jax.ShapeDtypeStruct(shape, f32) for shape in shapes]
  outs.append(jax.ShapeDtypeStruct(u_buf.shape, f32))
  if has_conv:
    outs.append(jax.ShapeDtypeStruct(conv_state.shape, f32))
    aliases[u_at - 1] = 5
  outs.append(jax.ShapeDtypeStruct((1,), jnp.int32))
  aliases[u_at + 8] = len(outs) - 1  # the arrival count
  res = _whole_call(
      functools.partial(_token_kernel, spec=spec, batch=B, grid=grid, interpret=interpret), ins,
      outs, (grid,), aliases, spec.config.mix, interpret, "hyena_token_layers")
  x, u_buf = res[0], res[4]
  if data_sync:
    x = x[M]
  return x, u_buf, (res[5] if has_conv else conv_state)
