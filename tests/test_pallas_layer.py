"""Fused per-token layer kernels (ops/pallas_layer) against hyena._token_layer / token_step.

`LayerInterpretTest` runs the four kernels in interpret mode (any backend) on fresh random inputs:
every output (x, u, the conv state; logits for whole token steps), B in {1, 3}, M in {1, 2}, odd
widths (D = 40 / 24, I = 2D) with block configs that need masking (partial last channel / row
blocks, last column chunks crossing the activations' end, a reduction width padded to 16),
several batch blocks, both layer loops, both reduction orders, short-conv orders 1..4, default and
explicit chunks, float32 and bfloat16 weights. `LayerCompiledTest` runs the same compiled with
Triton and skips without a GPU. `TritonLoweringTest` cross-lowers the kernels for CUDA on any host
at the paper shape (D = 864, I = 1728, B in {1, 8}) and at a masked odd shape. `DispatchTest`
covers the dispatcher, its fallbacks and the input checks.

Bounds (max |diff| / max |reference| per output). float32: 1e-5 (only the summation order
differs; measured ~2e-7). bfloat16 weights: the reference runs on the SAME bfloat16 weights, and
both round the activation to bfloat16 before each product (hyena.dense's x.astype(w.dtype)); an
activation that differs by one float32 ulp (the layer norm's sums are taken in another order) can
round to the neighbouring bfloat16 value, a 2^-8 relative change of one input of a product, which
then propagates through the layers: measured up to 6e-4 at D = 40, hence 5e-3.
"""

import ast
import dataclasses
import pathlib
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import HyenaConfig
from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import pallas_layer as pal

from conftest import (  # pylint: disable=g-bad-import-order
    KernelTestCase, lower_for_cuda, random_params, triton_ir)

TOLERANCE = {"float32": 1e-5, "bfloat16": 5e-3}
KB = pal.KernelBlocks


def masked_config(batch_block: int = 8, order: str = "batch",
                  chunks=(32, 16, 32, 64)) -> pal.LayerConfig:
  """Blocks for D = 40 / 24, I = 80 / 48 that leave partial channel / row blocks everywhere and
  last column chunks that cross the end of the activations and of the padded weights."""
  rows = (16, 16, 32, 16)
  return pal.LayerConfig(*[KB(r, chunk=c, order=order) for r, c in zip(rows, chunks)],
                         batch_block=batch_block)


def relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def model(d_model=40, n_layers=2, dtype="float32", short=3, seed=0):
  cfg = HyenaConfig(vocab_size=37, d_model=d_model, n_layers=n_layers, d_inner=2 * d_model,
                    l_max=64, filter_order=8, emb_dim=5, filter_inner_mlps=1,
                    short_filter_order=short, dtype=dtype)
  return hyena.cast_params(random_params(cfg, seed), cfg), cfg


class LayerCompiledTest(KernelTestCase):
  def state(self, cfg, batch):
    M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
    f32 = lambda *s: jnp.asarray(self.rng.standard_normal(s), jnp.float32)
    tokens = jnp.asarray(self.rng.integers(0, cfg.vocab_size, batch), jnp.int32)
    return (tokens, f32(M, batch, D), f32(M, batch, K - 1, 3 * D),
            hyena.StepConsts(f32(M, D)))

  def check_step(self, params, cfg, batch, config=None, layer_loop="unroll"):
    prepared = pal.prepare_layer_weights(params, cfg, config)
    tokens, acc, conv, consts = self.state(cfg, batch)
    with jax.default_matmul_precision("highest"):
      got = jax.jit(lambda p, w, c, t, a, s: pal.token_step_fused(
          p, w, cfg, c, t, a, s, implementation=self.implementation, layer_loop=layer_loop))(
              params, prepared, consts, tokens, acc, conv)
      want = hyena.token_step(params, cfg, consts, tokens, acc, conv)
    tol = TOLERANCE[cfg.dtype]
    for name, g, w in zip(("logits", "u", "conv_state"), got, want):
      self.assertEqual(g.shape, w.shape, name)
      self.assertEqual(g.dtype, jnp.float32, name)
      if w.size:
        self.assertLess(relative_error(g, w), tol, name)

  @parameterized.parameters((1, 1, 40), (3, 2, 24))  # B = 1 / 3, one / two layers, D 40 / 24
  def test_token_step_float32_masked(self, batch, n_layers, d_model):
    params, cfg = model(d_model, n_layers)
    self.check_step(params, cfg, batch, masked_config())

  @parameterized.parameters((1, "unroll"), (3, "scan"))
  def test_token_step_bfloat16(self, batch, layer_loop):
    params, cfg = model(dtype="bfloat16", seed=1)
    self.check_step(params, cfg, batch, masked_config(), layer_loop)

  def test_token_step_scan_and_batch_blocks(self):
    # B = 6 in batch blocks of 3 (two blocks, dynamic batch rows), layers as a fori_loop.
    params, cfg = model(seed=2)
    self.check_step(params, cfg, 6, masked_config(batch_block=4), layer_loop="scan")

  @parameterized.parameters("float32", "bfloat16")
  def test_chunk_order_and_default_chunks(self, dtype):
    # order="chunk" (every row's accumulators at once) with the default warp-wide chunks (one
    # masked 64-column chunk at D = 40).
    params, cfg = model(dtype=dtype, seed=6)
    self.check_step(params, cfg, 3, masked_config(order="chunk", chunks=(None,) * 4))

  # order="tile": all batch rows of a program as one (rows_b, 1, chunk) activation tile. B = 4 in
  # blocks of 2 (traced first rows), B = 3 (not a power of two: the "chunk" order),
  # masked channel / row blocks and column chunks, both dtypes, layers scanned or unrolled.
  @parameterized.parameters((4, 2, "float32", "scan"), (3, 8, "float32", "unroll"),
                            (2, 8, "bfloat16", "unroll"))
  def test_tile_order(self, batch, batch_block, dtype, layer_loop):
    params, cfg = model(dtype=dtype, seed=10)
    self.check_step(params, cfg, batch, masked_config(batch_block=batch_block, order="tile"),
                    layer_loop)

  @parameterized.parameters((4, 1), (2, 4))
  def test_tile_order_persistent(self, batch, programs):
    params, cfg = model(seed=11)
    config = pal.persistent_config(cfg.d_model, cfg.d_inner, programs=programs)
    config = config.replace_blocks(order="tile")
    self.check_step(params, cfg, batch, config, layer_loop="persistent")

  @parameterized.parameters(1, 2, 4)
  def test_short_conv_orders(self, short):
    params, cfg = model(short=short, seed=3)
    self.check_step(params, cfg, 3, masked_config(batch_block=1))

  def test_default_config_unmasked_width(self):
    # D = 64, I = 128: no padding anywhere; default blocks (1 row per program at this size).
    params, cfg = model(d_model=64, n_layers=1, seed=4)
    self.check_step(params, cfg, 3)

  @parameterized.parameters((1, "float32"), (3, "bfloat16"))
  def test_each_layer_against_token_layer(self, batch, dtype):
    # fused_layer at every m against hyena._token_layer: x, u, conv window; other layers of the
    # u buffer and the conv state are left untouched (in-place writes at layer m only).
    params, cfg = model(dtype=dtype, seed=5)
    prepared = pal.prepare_layer_weights(params, cfg, masked_config())
    _, acc, conv, consts = self.state(cfg, batch)
    x = jnp.asarray(self.rng.standard_normal((batch, cfg.d_model)), jnp.float32)
    u_buf = jnp.full(acc.shape, 7.0, jnp.float32)
    interpret = self.implementation == "interpret"
    tol = TOLERANCE[dtype]
    for m, lp in enumerate(hyena.split_layers(params)):
      got_x, got_u, got_conv = pal.fused_layer(prepared.weights, pal.layer_index(m), x, acc, conv,
                                               consts.red_tap, u_buf, spec=prepared.spec,
                                               interpret=interpret)
      with jax.default_matmul_precision("highest"):
        want = pal.reference_layer(cfg, lp, x, acc[m], conv[m], consts.red_tap[m])
      for name, g, w in zip(("x", "u", "conv"), (got_x, got_u[m], got_conv[m]), want):
        self.assertLess(relative_error(g, w), tol, f"layer {m} {name}")
      others = [k for k in range(cfg.n_layers) if k != m]
      np.testing.assert_array_equal(np.asarray(got_u)[others], np.asarray(u_buf)[others])
      np.testing.assert_array_equal(np.asarray(got_conv)[others], np.asarray(conv)[others])


  # The persistent loop (one launch for all layers, a grid-wide barrier between phases). In
  # interpret mode the grid is one program that walks every block of each phase (programs run
  # one after the other there, so a wider grid would wait at its first barrier forever); on a
  # GPU the grid is the most blocks of any phase. programs=1: one block per phase (the prefetch
  # path); 4: 3-5 blocks per phase (the block loop in interpret mode); masked_config: partial
  # blocks and column chunks crossing the ends.
  @parameterized.parameters((1, "float32", 1, 3), (3, "float32", 4, 4), (3, "bfloat16", None, 3),
                            (2, "float32", None, 1))
  def test_persistent_token_step(self, batch, dtype, programs, short):
    params, cfg = model(dtype=dtype, short=short, seed=8)
    config = (masked_config() if programs is None else
              pal.persistent_config(cfg.d_model, cfg.d_inner, programs=programs))
    self.check_step(params, cfg, batch, config, layer_loop="persistent")

  # persistent_config's batch_tiles: float32 B = 4 runs the tile order without the prefetch
  # (LayerConfig.for_batch), bfloat16 B = 4 the batch order; both against the reference.
  @parameterized.parameters("float32", "bfloat16")
  def test_persistent_batch_tiles(self, dtype):
    params, cfg = model(dtype=dtype, seed=11)
    config = pal.persistent_config(cfg.d_model, cfg.d_inner, programs=1)
    self.check_step(params, cfg, 4, config, layer_loop="persistent")

  def test_persistent_batch_chunks(self):
    # bfloat16 B = 1 runs BATCH_CHUNKS' 128-column chunks through batch_tiles (at D = 40 one
    # masked chunk), two programs per SM as the engine runs it; against the reference.
    params, cfg = model(dtype="bfloat16", seed=16)
    config = pal.persistent_config(cfg.d_model, cfg.d_inner, programs=1, programs_per_sm=2)
    self.assertEqual(config.for_batch(1, "bfloat16").up.chunk, pal.BATCH_CHUNKS["bfloat16"][1])
    self.check_step(params, cfg, 1, config, layer_loop="persistent")

  @parameterized.parameters(dict(prefetch=False), dict(arrive_early=False))
  def test_persistent_barrier_variants(self, **change):
    params, cfg = model(seed=9)
    config = dataclasses.replace(pal.persistent_config(40, 80, programs=1), **change)
    self.check_step(params, cfg, 2, config, layer_loop="persistent")

  # prefetch_operands: each block's norm scale / shift, biases, short-convolution taps and
  # window, acc and residual rows loaded before the barrier's wait. The batch order with and
  # without the weight prefetch, with the short convolution (K = 3) and without (K = 1), the
  # tile order (float32 B = 4 through batch_tiles), bfloat16 with masked blocks and chunks (its
  # phases have several blocks, so they take the block loop instead), and under data sync
  # (where it does not apply).
  @parameterized.parameters((1, "float32", 1, 3, {}), (2, "float32", 1, 1, {}),
                            (1, "bfloat16", 1, 3, dict(prefetch=False)),
                            (4, "float32", 1, 3, {}), (3, "bfloat16", None, 3, {}),
                            (2, "float32", 1, 3, dict(sync="data_l1")))
  def test_persistent_prefetch_operands(self, batch, dtype, programs, short, change):
    params, cfg = model(dtype=dtype, short=short, seed=17)
    config = (masked_config() if programs is None else
              pal.persistent_config(cfg.d_model, cfg.d_inner, programs=programs))
    config = dataclasses.replace(config, prefetch_operands=True, **change)
    self.check_step(params, cfg, batch, config, layer_loop="persistent")

  # barrier_order="release_acquire": releasing arrivals, acquiring polls (ordered_atomics). One
  # block per phase (each phase's arrive / prefetch / wait), blocks over several programs
  # (programs=4: _grid_barrier), masked blocks with the operands prefetched, bfloat16.
  @parameterized.parameters((1, "float32", 1, {}), (3, "float32", 4, {}),
                            (2, "bfloat16", None, dict(prefetch_operands=True)))
  def test_persistent_release_acquire_barriers(self, batch, dtype, programs, change):
    params, cfg = model(dtype=dtype, seed=19)
    config = (masked_config() if programs is None else
              pal.persistent_config(cfg.d_model, cfg.d_inner, programs=programs))
    config = dataclasses.replace(config, barrier_order="release_acquire", **change)
    self.check_step(params, cfg, batch, config, layer_loop="persistent")

  # sync="data": no barriers, every phase a write-once buffer read with polling loads. Batch
  # order with and without the prefetch, the tile order (B = 4 through batch_tiles), bfloat16,
  # one block per phase and 3-5 blocks per phase (programs=4), masked blocks; "data_l1" (a
  # compact poll, then ordinary loads) on the batch and the tile order.
  @parameterized.parameters((2, "bfloat16", 1, True, "data"), (3, "float32", 4, False, "data"),
                            (4, "float32", 1, True, "data"), (1, "bfloat16", 4, True, "data_l1"),
                            (3, "float32", None, False, "data_l1"))
  def test_persistent_data_sync(self, batch, dtype, programs, prefetch, sync):
    params, cfg = model(dtype=dtype, seed=12)
    config = (masked_config() if programs is None else
              pal.persistent_config(cfg.d_model, cfg.d_inner, programs=programs))
    config = dataclasses.replace(config, sync=sync, prefetch=prefetch)
    self.check_step(params, cfg, batch, config, layer_loop="persistent")

  def test_data_sync_input_nan(self):
    # A NaN in the token's input rows (however its bits read) is canonicalised, so it never
    # reads as PENDING: the step finishes and the rows with the NaN come out NaN, the others
    # unchanged.
    params, cfg = model(seed=13)
    config = dataclasses.replace(pal.persistent_config(cfg.d_model, cfg.d_inner, programs=1),
                                 sync="data")
    prepared = pal.prepare_layer_weights(params, cfg, config)
    _, acc, conv, consts = self.state(cfg, 2)
    x = jnp.asarray(self.rng.standard_normal((2, cfg.d_model)), jnp.float32)
    x = x.at[1, 3].set(pal.pending_fill(()))
    interpret = self.implementation == "interpret"
    got, _, _ = pal.persistent._persistent_call(  # pylint: disable=protected-access
        prepared.weights, x, acc, conv, consts.red_tap, jnp.zeros_like(acc), prepared.spec,
        interpret)
    want, _, _ = pal.persistent._persistent_call(  # pylint: disable=protected-access
        prepared.weights, x.at[1].set(0.0), acc, conv, consts.red_tap, jnp.zeros_like(acc),
        prepared.spec, interpret)
    self.assertTrue(np.all(np.isnan(np.asarray(got[1]))))
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))


class LayerInterpretTest(LayerCompiledTest):
  INTERPRET = True


class PrepareTest(absltest.TestCase):

  def test_layout_and_padding(self):
    params, cfg = model(d_model=40, n_layers=2)
    prepared = pal.prepare_layer_weights(params, cfg, masked_config())
    w, spec = prepared.weights, prepared.spec
    D, I, bc = 40, 80, 16
    self.assertEqual((spec.dk, spec.ik, spec.dm, spec.do, spec.iu, spec.dd),
                     (48, 80, 48, 48, 96, 48))
    self.assertEqual(w.mix_w.shape, (2, 3, 3, bc, 48))
    w_in = np.asarray(params["layers"]["in_proj"]["kernel"])
    mix = np.asarray(w.mix_w)
    for m, p, g, i, k in ((1, 0, 0, 3, 5), (0, 2, 2, 7, 39), (1, 1, 1, 15, 0)):
      self.assertEqual(mix[m, p, g, i, k], w_in[m, k, g * D + p * bc + i])
    self.assertTrue(np.all(mix[:, 2, :, D - 2 * bc:] == 0))  # channels 40..47: padding
    self.assertTrue(np.all(mix[..., D:] == 0))
    np.testing.assert_array_equal(w.out_w[:, :D, :D],
                                  np.swapaxes(params["layers"]["out_proj"]["kernel"], 1, 2))
    np.testing.assert_array_equal(w.down_w[:, :D, :I],
                                  np.swapaxes(params["layers"]["mlp"]["fc2"]["kernel"], 1, 2))
    self.assertTrue(np.all(np.asarray(w.up_w)[:, I:] == 0))
    np.testing.assert_array_equal(w.norm1[:, 0, :D], params["layers"]["norm1"]["scale"])
    self.assertTrue(np.all(np.asarray(w.norm1)[:, :, D:] == 0))

  def test_bfloat16_weights_stay_bfloat16(self):
    params, cfg = model(dtype="bfloat16")
    w = pal.prepare_layer_weights(params, cfg).weights
    for name in ("mix_w", "out_w", "up_w", "down_w"):
      self.assertEqual(getattr(w, name).dtype, jnp.bfloat16, name)
    for name in ("mix_b", "conv_w", "conv_b", "norm1", "out_b", "norm2", "up_b", "down_b"):
      self.assertEqual(getattr(w, name).dtype, jnp.float32, name)

  def test_pytree(self):
    params, cfg = model()
    prepared = pal.prepare_layer_weights(params, cfg)
    leaves, treedef = jax.tree_util.tree_flatten(prepared)
    self.assertLen(leaves, len(pal.LayerWeights._fields))
    doubled = jax.tree_util.tree_map(lambda a: 2 * a, prepared)
    self.assertEqual(doubled.spec, prepared.spec)
    self.assertEqual(jax.tree_util.tree_unflatten(treedef, leaves).spec, prepared.spec)
    self.assertEqual(jax.jit(lambda p: p)(prepared).spec, prepared.spec)

  def test_default_config_paper_shape(self):
    config = pal.default_config(864, 1728)
    self.assertEqual((config.mix.rows, config.out.rows, config.up.rows, config.down.rows),
                     (4, 4, 8, 4))
    for n, blocks in ((864, config.mix), (864, config.out), (1728, config.up),
                      (864, config.down)):
      self.assertGreaterEqual(n // blocks.rows, pal.TARGET_PROGRAMS)
      self.assertEqual(n % blocks.rows, 0)  # no masks at the paper shape
    self.assertEqual(config.mix.chunk_for(jnp.float32), 128)
    self.assertEqual(config.mix.chunk_for(jnp.bfloat16), 256)
    self.assertEqual(pal.config._chunks(864, 128), (128, 7))  # the last chunk is masked
    self.assertEqual(pal.config._chunks(1728, 256), (256, 7))
    self.assertEqual(pal.config._chunks(48, 128), (64, 1))
    self.assertEqual(pal.batch_block(6, pal.LayerConfig(*[KB(4)] * 4, batch_block=4)), 3)
    self.assertEqual(pal.batch_block(8, config), 8)
    self.assertEqual(pal.batch_block(16, config), 8)

  def test_weight_bytes(self):
    cfg = HyenaConfig(vocab_size=50257, d_model=864, n_layers=18, d_inner=1728)
    got = pal.weight_bytes_per_token(cfg)
    self.assertEqual(got["layers"], 18 * (4 * 864**2 + 2 * 864 * 1728) * 4)
    self.assertAlmostEqual(got["total"] / 1e6, 604.0, delta=1.0)


class TritonLoweringTest(parameterized.TestCase):
  """Cross-lowers the compiled kernels for CUDA on any host: the Pallas -> Triton lowering of
  every primitive, block shape, mask and in-place alias, without a GPU."""

  def lower_for_cuda(self, fn, *args, **static):
    return lower_for_cuda(self, fn.trace(*args, **static))

  @parameterized.parameters((1, "bfloat16"), (8, "float32"))
  def test_paper_shape(self, batch, dtype):
    spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, dtype, pal.default_config(864, 1728))
    text = self.lower_for_cuda(pal.fused_layer, *pal.layer_avals(spec, batch), spec=spec,
                               interpret=False)
    self.assertIn("triton", text)

  @parameterized.parameters(*pal.ORDERS)
  def test_masked_odd_shape_in_batch_blocks(self, order):
    spec = pal.LayerSpec(2, 40, 80, 3, 1e-5, "float32", masked_config(batch_block=1,
                                                                       order=order))
    text = self.lower_for_cuda(pal.fused_layer, *pal.layer_avals(spec, 3), spec=spec,
                               interpret=False)
    self.assertIn("triton", text)

  @parameterized.parameters(("unroll", 2), ("persistent", 8))
  def test_tile_order_lowers_at_paper_shape(self, layer_loop, batch):
    # (rows_b, rows, chunk) products of (rows_b, 1, chunk) and (1, rows, chunk) tiles, Triton.
    persistent = layer_loop == "persistent"
    blocks = (pal.persistent_config if persistent else pal.default_config)(864, 1728)
    blocks = blocks.replace_blocks(order="tile")
    spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, "float32", blocks)
    avals = pal.layer_avals(spec, batch)
    with mock.patch.object(pal.config, "gpu_core_count", return_value=132):
      if persistent:
        w, _, x, acc, conv, red, u = avals
        call = jax.jit(pal.persistent._persistent_call, static_argnames=("spec", "interpret"))
        text = self.lower_for_cuda(call, w, x, acc, conv, red, u, spec=spec, interpret=False)
      else:
        text = self.lower_for_cuda(pal.fused_layer, *avals, spec=spec, interpret=False)
    self.assertIn("triton", text)

  @parameterized.parameters((1, "bfloat16"), (8, "float32"))
  def test_barrier_order_reaches_the_persistent_kernel(self, batch, dtype):
    # The paper shape's persistent kernel: every arrival and poll acquire-release by default;
    # with "release_acquire" the same atomics, the arrivals releasing and the polls acquiring.
    counts = {}
    for order in pal.BARRIER_ORDERS:
      blocks = dataclasses.replace(pal.persistent_config(864, 1728), barrier_order=order)
      spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, dtype, blocks)
      w, _, x, acc, conv, red, u = pal.layer_avals(spec, batch)
      call = jax.jit(pal.persistent._persistent_call, static_argnames=("spec", "interpret"))
      with mock.patch.object(pal.config, "gpu_core_count", return_value=132):
        (ir,) = triton_ir(self, call.trace(w, x, acc, conv, red, u, spec=spec, interpret=False))
      atomics = [line for line in ir.splitlines() if "tt.atomic_rmw add" in line]
      counts[order] = {sem: sum(f"add, {sem}, gpu" in a for a in atomics)
                       for sem in ("acq_rel", "release", "acquire")}
      self.assertEqual(sum(counts[order].values()), len(atomics))
    default, split = counts["acq_rel"], counts["release_acquire"]
    self.assertGreater(default["acq_rel"], 0)
    self.assertEqual((default["release"], default["acquire"], split["acq_rel"]), (0, 0, 0))
    self.assertEqual(split["release"], split["acquire"])  # an arrival and a poll per barrier
    self.assertEqual(split["release"] + split["acquire"], default["acq_rel"])

  @parameterized.parameters(  # each layer loop once, batches 1 and 8 in turn
      *[(loop, (1, 8)[i % 2]) for i, loop in enumerate(pal.LAYER_LOOPS +
                                                         ("persistent_arrive_late",))])
  def test_token_step_lowers_each_kernel_once(self, layer_loop, batch):
    # 18 unrolled layers share one lowering of the per-layer function: 4 Triton kernels in the
    # module, not 72 (one Triton compile each); the persistent loop is one kernel for all layers.
    cfg = HyenaConfig(vocab_size=50257, d_model=864, n_layers=18, d_inner=1728, l_max=2**17,
                      filter_order=64, emb_dim=33)
    params = jax.eval_shape(lambda: hyena.init_params(jax.random.PRNGKey(0), cfg))
    persistent = layer_loop.startswith("persistent")
    blocks = (pal.persistent_config if persistent else pal.default_config)(864, 1728)
    if layer_loop == "persistent_arrive_late":
      layer_loop, blocks = "persistent", dataclasses.replace(blocks, arrive_early=False)
    spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, "float32", blocks)
    sds, f32, B = jax.ShapeDtypeStruct, jnp.float32, batch
    with mock.patch.object(pal.config, "gpu_core_count", return_value=132):
      text = self.lower_for_cuda(
          pal.step._token_step, params, pal.layer_avals(spec, B)[0], sds((18, 864), f32),
          sds((B,), jnp.int32), sds((18, B, 864), f32), sds((18, B, 2, 3 * 864), f32), cfg=cfg,
          spec=spec, interpret=False, layer_loop=layer_loop)
    kernels = text.count("xla.gpu.triton") or text.count("triton_kernel_call")
    self.assertEqual(kernels, 1 if persistent else 4)


class BatchTilesTest(parameterized.TestCase):

  def test_for_batch(self):
    config = pal.persistent_config(864, 1728)
    self.assertTrue(config.batch_tiles)
    for batch in pal.TILE_BATCHES["float32"]:
      tiled = config.for_batch(batch, "float32")
      self.assertEqual({tiled.mix.order, tiled.out.order, tiled.up.order, tiled.down.order},
                       {"tile"})
      self.assertFalse(tiled.prefetch)
      self.assertEqual(tiled.mix.rows, config.mix.rows)  # the prepared layout is unchanged
    for batch, dtype in ((1, "float32"), (3, "float32"), (6, "float32"), (4, "bfloat16"),
                         (8, "bfloat16")):
      self.assertIs(config.for_batch(batch, dtype), config)
    # BATCH_CHUNKS (bfloat16 B = 1): its column chunk where the blocks leave the default,
    # nothing else changed, at either number of programs per SM; an explicit chunk is kept.
    chunk = pal.BATCH_CHUNKS["bfloat16"][1]
    for base in (config, pal.persistent_config(864, 1728, programs_per_sm=2)):
      got = base.for_batch(1, "bfloat16")
      self.assertEqual({got.mix.chunk, got.out.chunk, got.up.chunk, got.down.chunk}, {chunk})
      self.assertEqual(got.replace_blocks(chunk=None), base)
    explicit = config.replace_blocks(chunk=64)
    self.assertEqual(explicit.for_batch(1, "bfloat16").mix.chunk, 64)
    # DATA_SYNC_BATCHES poll instead of the barriers, at either number of programs per SM, and
    # keep everything else; an explicit sync is kept.
    paired = pal.persistent_config(864, 1728, programs_per_sm=2)
    for base in (config, paired):
      for dtype, batches in pal.DATA_SYNC_BATCHES.items():
        for batch in batches:
          self.assertEqual(base.for_batch(batch, dtype),
                           dataclasses.replace(base, sync="data_l1"))
    explicit = dataclasses.replace(config, sync="data")
    self.assertIs(explicit.for_batch(2, "float32"), explicit)
    manual = dataclasses.replace(config, batch_tiles=False)
    self.assertIs(manual.for_batch(8, "float32"), manual)
    self.assertIs(manual.for_batch(2, "float32"), manual)
    self.assertFalse(pal.default_config(864, 1728).batch_tiles)

  def test_persistent_call_runs_the_batch_config(self):
    # The order reaches the kernel: the lowered Triton kernel at B = 8 differs from B = 8 with
    # batch_tiles off, and equals the explicit tile order without the prefetch.
    base = pal.persistent_config(864, 1728)
    texts = {}
    for name, config in (("auto", base), ("off", dataclasses.replace(base, batch_tiles=False)),
                         ("manual", dataclasses.replace(base.replace_blocks(order="tile"),
                                                        prefetch=False, batch_tiles=False))):
      spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, "float32", config)
      w, _, x, acc, conv, red, u = pal.layer_avals(spec, 8)
      with mock.patch.object(pal.config, "gpu_core_count", return_value=132):
        call = jax.jit(pal.persistent._persistent_call, static_argnames=("spec", "interpret"))
        texts[name] = lower_for_cuda(self, call.trace(w, x, acc, conv, red, u, spec=spec,
                                                      interpret=False))
    self.assertEqual(texts["auto"], texts["manual"])
    self.assertNotEqual(texts["auto"], texts["off"])

  def lowered_persistent(self, config, batch, ir: bool = False):
    """The persistent kernel at the paper shape lowered for CUDA: StableHLO text, or (ir) its
    Triton IR."""
    spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, "float32", config)
    w, _, x, acc, conv, red, u = pal.layer_avals(spec, batch)
    with mock.patch.object(pal.config, "gpu_core_count", return_value=132):
      call = jax.jit(pal.persistent._persistent_call, static_argnames=("spec", "interpret"))
      traced = call.trace(w, x, acc, conv, red, u, spec=spec, interpret=False)
      return triton_ir(self, traced) if ir else lower_for_cuda(self, traced)

  def test_two_programs_per_sm(self):
    # Half the rows give 216 programs: more than 132 SMs, so the call refuses them unless two
    # programs share an SM.
    paired = pal.persistent_config(864, 1728, programs_per_sm=2)
    self.assertEqual([(b.rows, b.num_warps) for b in (paired.mix, paired.out, paired.up,
                                                      paired.down)],
                     [(4, 4), (4, 4), (8, 4), (4, 4)])
    spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, "float32", paired)
    self.assertEqual(pal.persistent_grid(spec), 216)
    self.assertIs(paired.for_batch(8, "float32"), paired)  # keeps its order at B = 8
    self.lowered_persistent(paired, 1)
    with self.assertRaisesRegex(ValueError, "needs all 216 programs resident at once"):
      self.lowered_persistent(dataclasses.replace(paired, programs_per_sm=1), 1)
    self.assertEqual([pal.programs_per_sm_for(b, d) for b, d in (
        (1, "bfloat16"), (2, "bfloat16"), (8, "bfloat16"), (1, "float32"), (2, "float32"),
        (8, "float32"))], [2, 2, 1, 1, 2, 1])

  def test_pending_fill(self):
    # PENDING is a NaN whose bits survive the fill, and only those bits read as pending.
    bits = jax.lax.bitcast_convert_type(pal.pending_fill((3, 5)), jnp.int32)
    self.assertTrue(np.all(np.asarray(bits) == pal.PENDING_BITS))
    self.assertTrue(np.isnan(np.asarray(pal.pending_fill(()))))
    values = jnp.asarray(np.random.default_rng(0).standard_normal((4, 8)), jnp.float32)
    self.assertFalse(bool(pal.pieces._any_pending([values, values.at[0, 0].set(jnp.nan)])))  # pylint: disable=protected-access
    self.assertTrue(bool(pal.pieces._any_pending([values, values.at[2, 5].set(pal.pending_fill(()))])))  # pylint: disable=protected-access

  @parameterized.parameters(False, True)
  def test_polled_read(self, compact):
    # _Act.read with spin on (the GPU's path, a while loop over volatile loads; compact: over one
    # compact tile, then ordinary loads) returns the written values of layer slab 1 once none is
    # PENDING (here at once; interpret mode).
    data = jnp.asarray(np.random.default_rng(1).standard_normal((3, 2, 40)), jnp.float32)

    def kernel(ref, out_ref):
      act = pal.pieces._Act(ref, (jnp.int32(1),), poll=True, spin=True, compact=compact)  # pylint: disable=protected-access
      chunks = act.read(lambda a: [a.rep(1, 4, c * 32, 32, 40) for c in range(2)], 1, 1, 40)
      out_ref[:, 0:32] = chunks[0]
      out_ref[:, 32:64] = chunks[1]
    got = pal.pieces.pl.pallas_call(kernel, out_shape=jax.ShapeDtypeStruct((4, 64), jnp.float32),
                                    interpret=True)(data)
    want = np.zeros((4, 64), np.float32)
    want[:, :40] = np.asarray(data[1, 1])
    np.testing.assert_array_equal(np.asarray(got), want)

  def test_data_sync_lowers(self):
    # The data-synchronised persistent kernel lowers at the paper shape (B = 1 batch order with
    # the prefetch, B = 8 tile order): polled loads are volatile, and there is no atomic.
    # (Both data modes have volatile loads: data_l1's compact polls.)
    for batch in (1, 8):
      for sync in pal.SYNCS:
        config = dataclasses.replace(pal.persistent_config(864, 1728), sync=sync)
        (ir,) = self.lowered_persistent(config, batch, ir=True)
        self.assertEqual("isVolatile = true" in ir, sync != "barrier")
        self.assertEqual("atomic_rmw" in ir, sync == "barrier")


class DispatchTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.params, self.cfg = model(d_model=24, n_layers=1)
    self.prepared = pal.prepare_layer_weights(self.params, self.cfg, masked_config())
    rng = np.random.default_rng(0)
    B, M, D = 2, 1, 24
    self.tokens = jnp.asarray(rng.integers(0, 37, B), jnp.int32)
    self.acc = jnp.asarray(rng.standard_normal((M, B, D)), jnp.float32)
    self.conv = jnp.asarray(rng.standard_normal((M, B, 2, 3 * D)), jnp.float32)
    self.consts = hyena.StepConsts(jnp.asarray(rng.standard_normal((M, D)), jnp.float32))
    self.key = "layer D=24 I=48 float32 B=2"

  def step(self, **kw):
    return pal.token_step_fused(self.params, self.prepared, self.cfg, self.consts, self.tokens,
                                self.acc, self.conv, **kw)

  def want(self):
    return hyena.token_step(self.params, self.cfg, self.consts, self.tokens, self.acc, self.conv)

  def test_default_choice_is_recorded(self):
    self.step()
    want = "interpret" if jax.default_backend() == "cpu" else "pallas"
    self.assertEqual(pallas_direct.CHOSEN[self.key], want)

  def test_xla_is_the_reference(self):
    for g, w in zip(self.step(implementation="xla"), self.want()):
      np.testing.assert_array_equal(g, w)

  def test_falls_back_to_xla_when_triton_fails(self):
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    with mock.patch.object(pallas_direct, "_backend", return_value="gpu"):
      got = jax.jit(lambda p, w, c, t, a, s: pal.token_step_fused(p, w, self.cfg, c, t, a, s))(
          self.params, self.prepared, self.consts, self.tokens, self.acc, self.conv)
      self.assertEqual(pallas_direct.CHOSEN[self.key], "xla")
      self.assertIn("failed to compile", pallas_direct.REASONS[self.key])
      with self.assertRaisesRegex(ValueError, "does not compile"):
        self.step(implementation="pallas")
    for g, w in zip(got, self.want()):
      self.assertLess(relative_error(g, w), 1e-6)

  def test_large_batch_goes_to_xla_by_default(self):
    B = pal.MAX_BATCH + 1
    tokens = jnp.zeros((B,), jnp.int32)
    acc = jnp.zeros((1, B, 24), jnp.float32)
    conv = jnp.zeros((1, B, 2, 72), jnp.float32)
    logits, _, _ = pal.token_step_fused(self.params, self.prepared, self.cfg, self.consts,
                                        tokens, acc, conv)
    key = f"layer D=24 I=48 float32 B={B}"
    self.assertEqual(pallas_direct.CHOSEN[key], "xla")
    self.assertIn("GEMM", pallas_direct.REASONS[key])
    self.assertEqual(logits.shape, (B, 37))

  def test_compiled_pallas_without_gpu_raises(self):
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    with self.assertRaisesRegex(ValueError, "need a GPU"):
      self.step(implementation="pallas")

  def test_rejects_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "implementation must be"):
      self.step(implementation="cuda")
    with self.assertRaisesRegex(ValueError, "layer_loop must be"):
      self.step(layer_loop="while")
    with self.assertRaisesRegex(TypeError, "PreparedLayers"):
      pal.token_step_fused(self.params, self.params["layers"], self.cfg, self.consts,
                           self.tokens, self.acc, self.conv)
    with self.assertRaisesRegex(ValueError, r"acc has shape \(1, 3, 24\), expected \(1, 2, 24\)"):
      pal.token_step_fused(self.params, self.prepared, self.cfg, self.consts, self.tokens,
                           jnp.zeros((1, 3, 24)), self.conv)
    with self.assertRaisesRegex(ValueError, "conv_state has shape"):
      pal.token_step_fused(self.params, self.prepared, self.cfg, self.consts, self.tokens,
                           self.acc, self.conv[:, :, :1])
    with self.assertRaisesRegex(ValueError, "consts.red_tap has shape"):
      pal.token_step_fused(self.params, self.prepared, self.cfg,
                           hyena.StepConsts(jnp.zeros((2, 24))), self.tokens, self.acc,
                           self.conv)
    with self.assertRaisesRegex(ValueError, "tokens must be"):
      pal.token_step_fused(self.params, self.prepared, self.cfg, self.consts,
                           self.tokens[:, None], self.acc, self.conv)
    with self.assertRaisesRegex(ValueError, "tokens must be"):
      pal.token_step_fused(self.params, self.prepared, self.cfg, self.consts,
                           self.tokens.astype(jnp.float32), self.acc, self.conv)
    other = HyenaConfig(**{**self.cfg.to_dict(), "d_inner": 64})
    with self.assertRaisesRegex(ValueError, "prepared weights do not match the config"):
      pal.token_step_fused(self.params, self.prepared, other, self.consts, self.tokens,
                           self.acc, self.conv)

  def test_persistent_needs_every_program_resident(self):
    # On a GPU with fewer SMs than blocks per phase the barrier would wait forever: refused.
    prepared = pal.prepare_layer_weights(self.params, self.cfg,
                                         pal.persistent_config(24, 48, programs=8))
    self.assertEqual(pal.persistent_grid(prepared.spec), 6)
    x = jnp.zeros((2, 24), jnp.float32)
    u = jnp.zeros_like(self.acc)
    with mock.patch.object(pal.config, "gpu_core_count", return_value=4):
      with self.assertRaisesRegex(ValueError, "all 6 programs resident"):
        pal.persistent._persistent_call(  # pylint: disable=protected-access
            prepared.weights, x, self.acc, self.conv, self.consts.red_tap, u, prepared.spec,
            interpret=False)

  def test_device_persistent_config(self):
    # Blocks sized to the SM count; None where they would exceed MAX_PERSISTENT_ROWS.
    with mock.patch.object(pal.config, "gpu_core_count", return_value=132):
      config = pal.device_persistent_config(864, 1728)
    self.assertEqual([b.rows for b in (config.mix, config.out, config.up, config.down)],
                     [8, 8, 16, 8])
    self.assertTrue(config.persistent)
    with mock.patch.object(pal.config, "gpu_core_count", return_value=32):
      self.assertIsNone(pal.device_persistent_config(864, 1728))

  def test_prepare_rejects_mismatched_params(self):
    other = HyenaConfig(**{**self.cfg.to_dict(), "d_inner": 64})
    with self.assertRaisesRegex(ValueError, r"fc1/kernel has shape \(1, 24, 48\)"):
      pal.prepare_layer_weights(self.params, other)
    bf16 = HyenaConfig(**{**self.cfg.to_dict(), "dtype": "bfloat16"})
    with self.assertRaisesRegex(ValueError, "cast with hyena.cast_params"):
      pal.prepare_layer_weights(self.params, bf16)
    with self.assertRaisesRegex(ValueError, "has no mlp/fc2/kernel"):
      layers = dict(self.params["layers"], mlp={"fc1": self.params["layers"]["mlp"]["fc1"]})
      pal.prepare_layer_weights({"layers": layers}, self.cfg)

  def test_config_validation(self):
    with self.assertRaisesRegex(ValueError, "rows must be a power of two"):
      KB(3)
    with self.assertRaisesRegex(ValueError, "chunk must be >= 16"):
      KB(4, chunk=8)
    with self.assertRaisesRegex(ValueError, "num_warps must be a power of two"):
      KB(4, num_warps=6)
    with self.assertRaisesRegex(ValueError, "order must be one of"):
      KB(4, order="rows")
    with self.assertRaisesRegex(ValueError, "batch_block must be"):
      pal.LayerConfig(*[KB(4)] * 4, batch_block=0)
    with self.assertRaisesRegex(ValueError, "programs_per_sm must be 1 or 2"):
      pal.LayerConfig(*[KB(4)] * 4, programs_per_sm=3)
    with self.assertRaisesRegex(ValueError, "needs num_warps <= 4, got 8"):
      pal.LayerConfig(*[KB(4, num_warps=8)] * 4, programs_per_sm=2)
    with self.assertRaisesRegex(ValueError, "sync must be one of"):
      pal.LayerConfig(*[KB(4)] * 4, sync="atomic")


def test_package_modules_import_only_earlier_ones():
  """ops/pallas_layer's modules form a chain (its docstring): none imports a later one."""
  order = ["config", "weights", "pieces", "layer", "persistent", "step"]
  root = pathlib.Path(pal.__file__).parent
  assert sorted(p.stem for p in root.glob("*.py") if p.stem != "__init__") == sorted(order)
  prefix = "flash_lcsm_jax.ops.pallas_layer"
  for i, name in enumerate(order):
    for node in ast.walk(ast.parse((root / f"{name}.py").read_text())):
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(prefix):
        sub = node.module[len(prefix) + 1:] or None
        used = [sub] if sub else [a.name for a in node.names]
        for dep in used:
          assert order.index(dep) < i, f"{name} imports {dep}, which comes after it"


if __name__ == "__main__":
  absltest.main()

