"""The in-place gray-tile kernel (ops.pallas_inplace) against its 3-op XLA reference.

Interpret mode runs on any backend (the compiled Triton kernel additionally runs in
`InplaceCompiledTest`, GPU only); `TritonLoweringTest` cross-lowers the compiled kernel for CUDA on
any host; `test_flash_logits_with_inplace_tiles_match_forward` runs whole generations with the
kernel as the engine calls it.
"""

import zlib

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from conftest import level_shape_cases, make_model, max_position_rel_err, rel_err
from flash_lcsm_jax import Generator, forward
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import pallas_inplace
from flash_lcsm_jax.ops import tau

LEVELS = tuple(range(pallas_inplace.MAX_LEVEL + 1))
# (M, B, D): D = 20 / 40 leave a partial (masked) channel block, D = 48 does not (B = 4 gives a
# batch block of 4 rows).
SHAPES = ((1, 1, 20), (2, 3, 40), (1, 4, 48))
TOLERANCE = 2e-6  # max abs error over max |expected|: float32 accumulation of <= 64 products


def expected64(taps: np.ndarray, buf: np.ndarray, t: int, level: int) -> np.ndarray:
  """The gray tile in float64 numpy on the same float32 inputs."""
  U = 1 << level
  D = buf.shape[2]
  h = np.asarray(taps, np.float64)[:, None, :D]  # (M, 1, D, 2U)
  out = np.array(buf, np.float64)
  for k in range(U):
    out[..., t + 1:t + U + 1] += h[..., U - k:2 * U - k] * buf[..., t - U + 1 + k:t - U + 2 + k]
  return out


def relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


class InplaceTest(parameterized.TestCase):
  IMPLEMENTATION = "interpret"

  def setUp(self):
    super().setUp()
    if self.IMPLEMENTATION == "pallas" and jax.default_backend() not in ("gpu", "cuda", "rocm"):
      self.skipTest("the compiled Pallas (Triton) kernel needs a GPU")
    self.rng = np.random.default_rng(zlib.crc32(self.id().encode()))

  def random_case(self, shape, level, extra=7):
    M, B, D = shape
    U = 1 << level
    filters = jnp.asarray(self.rng.standard_normal((M, D, 2 * U + 3)), jnp.float32)
    buf = jnp.asarray(self.rng.standard_normal((M, B, D, 2 * U + extra)), jnp.float32)
    return pallas_inplace.prepare(filters, level), buf

  def check(self, taps, buf, t, level, got):
    U = 1 << level
    want = pallas_inplace.reference(taps, buf, t, level)
    self.assertEqual(got.shape, buf.shape)
    self.assertEqual(got.dtype, buf.dtype)
    self.assertLess(relative_error(got, want), TOLERANCE)
    self.assertLess(relative_error(got, expected64(taps, np.asarray(buf), t, level)), TOLERANCE)
    outside = np.ones(buf.shape[-1], bool)
    outside[t + 1:t + U + 1] = False
    np.testing.assert_array_equal(np.asarray(got)[..., outside], np.asarray(buf)[..., outside])

  @parameterized.named_parameters(level_shape_cases(LEVELS, SHAPES))
  def test_matches_reference_at_first_and_last_t(self, level, shape):
    taps, buf = self.random_case(shape, level)
    U, Lb = 1 << level, buf.shape[-1]
    for t in (U - 1, U + 2, Lb - U - 1):  # smallest, middle, largest legal position
      got = pallas_inplace.gray_tile(taps, buf, t, level, implementation=self.IMPLEMENTATION)
      self.check(taps, buf, t, level, got)

  @parameterized.parameters(0, 3, 6)
  def test_traced_t_inside_jit(self, level):
    # As the engine calls it: t traced, level static, the buffer donated (updated in place).
    taps, buf = self.random_case((2, 3, 20), level, extra=19)
    U = 1 << level
    step = jax.jit(lambda c, b, t: pallas_inplace.gray_tile(
        c, b, t, level, implementation=self.IMPLEMENTATION), donate_argnums=(1,))
    for t in (U - 1, U + 9, buf.shape[-1] - U - 1):  # one compile for every t
      got = step(taps, jnp.array(buf), jnp.int32(t))
      self.check(taps, buf, t, level, got)

  def test_two_tiles_in_one_jit(self):
    # A chain as in calibration: the second tile reads what the first one wrote.
    taps, buf = self.random_case((2, 1, 20), 2, extra=12)
    chain = jax.jit(lambda c, b: pallas_inplace.gray_tile(
        c, pallas_inplace.gray_tile(c, b, 3, 2, implementation=self.IMPLEMENTATION), 7, 2,
        implementation=self.IMPLEMENTATION))
    want = pallas_inplace.reference(taps, pallas_inplace.reference(taps, buf, 3, 2), 7, 2)
    self.assertLess(relative_error(chain(taps, buf), want), TOLERANCE)

  def test_registered_tau(self):
    impl = tau.get("pallas_inplace")
    self.assertEqual(impl.max_level, pallas_inplace.MAX_LEVEL)
    self.assertIsNotNone(impl.apply_inplace)
    level, (M, B, D) = 5, (2, 3, 20)
    filters = jnp.asarray(self.rng.standard_normal((M, D, 80)), jnp.float32)
    consts = impl.prepare(filters, level)
    seg = jnp.asarray(self.rng.standard_normal((M, B, D, 32)), jnp.float32)
    # `apply` (the plain tau interface) and mixers.gray_tile (which takes apply_inplace).
    self.assertLess(relative_error(jax.jit(impl.apply)(consts, seg),
                                   tau.reference(filters, seg)), TOLERANCE)
    buf = jnp.asarray(self.rng.standard_normal((M, B, D, 96)), jnp.float32)
    t = jnp.int32(40)
    got = jax.jit(mixers.gray_tile, static_argnums=(3, 4))(consts, buf, t, level,
                                                          "pallas_inplace")
    want = jax.jit(mixers.gray_tile, static_argnums=(3, 4))(
        tau.get("direct").prepare(filters, level), buf, t, level, "direct")
    self.assertLess(relative_error(got, want), TOLERANCE)


  def check_step(self, taps, buf, u, t, level, got):
    """flash_step: u stored at t, the tile added at t+1..t+U, acc = the result at t+1."""
    U = 1 << level
    new_buf, acc = got
    with_u = np.array(buf)
    with_u[..., t] = np.asarray(u)
    want = expected64(taps, with_u, t, level)
    self.assertEqual(new_buf.shape, buf.shape)
    self.assertEqual(acc.shape, u.shape)
    self.assertLess(relative_error(new_buf, want), TOLERANCE)
    self.assertLess(relative_error(acc, want[..., t + 1]), TOLERANCE)
    ref_buf, ref_acc = pallas_inplace.step_reference(taps, buf, u, t, level)
    self.assertLess(relative_error(new_buf, ref_buf), TOLERANCE)
    self.assertLess(relative_error(acc, ref_acc), TOLERANCE)
    outside = np.ones(buf.shape[-1], bool)
    outside[t:t + U + 1] = False
    np.testing.assert_array_equal(np.asarray(new_buf)[..., outside],
                                  np.asarray(buf)[..., outside])
    np.testing.assert_array_equal(np.asarray(new_buf)[..., t], np.asarray(u))

  @parameterized.named_parameters(level_shape_cases(LEVELS, SHAPES))
  def test_fused_step_matches_reference(self, level, shape):
    taps, buf = self.random_case(shape, level)
    U, Lb = 1 << level, buf.shape[-1]
    u = jnp.asarray(self.rng.standard_normal(shape), jnp.float32)
    for t in (U - 1, U + 2, Lb - U - 1):
      got = pallas_inplace.flash_step(taps, buf, u, t, level, implementation=self.IMPLEMENTATION)
      self.check_step(taps, buf, u, t, level, got)

  @parameterized.parameters(0, 2, 6)
  def test_fused_step_traced_t_donated(self, level):
    taps, buf = self.random_case((2, 3, 20), level, extra=19)
    U = 1 << level
    u = jnp.asarray(self.rng.standard_normal((2, 3, 20)), jnp.float32)
    step = jax.jit(lambda c, b, x, t: pallas_inplace.flash_step(
        c, b, x, t, level, implementation=self.IMPLEMENTATION), donate_argnums=(1,))
    for t in (U - 1, U + 9, buf.shape[-1] - U - 1):
      self.check_step(taps, buf, u, t, level, step(taps, jnp.array(buf), u, jnp.int32(t)))

  @parameterized.product(level=(0, 3), implementation=("kernel", "xla"))
  def test_offset_form_equals_the_summed_position(self, level, implementation):
    # The engine's blocks pass (traced block start, static step index); every split of one
    # position must give the same tile and step, from one compiled kernel per level.
    impl = self.IMPLEMENTATION if implementation == "kernel" else "xla"
    taps, buf = self.random_case((2, 3, 20), level, extra=21)
    U = 1 << level
    u = jnp.asarray(self.rng.standard_normal((2, 3, 20)), jnp.float32)
    tile = jax.jit(lambda c, b, t, offset: pallas_inplace.gray_tile(
        c, b, t, level, offset=offset, implementation=impl), static_argnums=3)
    step = jax.jit(lambda c, b, x, t, offset: pallas_inplace.flash_step(
        c, b, x, t, level, offset=offset, implementation=impl), static_argnums=4)
    position = U + 5
    for start in (position, position - 1, position - 4, U - 1):
      t, offset = jnp.int32(start), position - start
      self.check(taps, buf, position, level, tile(taps, buf, t, offset))
      self.check_step(taps, buf, u, position, level, step(taps, buf, u, t, offset))

  @parameterized.parameters(*LEVELS)
  def test_registered_step_at_every_level(self, level):
    # The engine's hook: the fused kernel at FUSED_STEP_LEVELS, store + tile kernel + read
    # elsewhere; both must be the same step (u at t, the tile, acc = the result at t+1).
    self.assertLessEqual(pallas_inplace.FUSED_STEP_LEVELS, set(LEVELS))
    taps, buf = self.random_case((2, 3, 20), level, extra=19)
    u = jnp.asarray(self.rng.standard_normal((2, 3, 20)), jnp.float32)
    step = jax.jit(tau.get("pallas_inplace").apply_step, static_argnums=(4, 5))
    position = (1 << level) + 3
    self.check_step(taps, buf, u, position, level, step(taps, buf, u, jnp.int32(position - 2),
                                                        level, 2))

  def test_offset_must_be_a_static_int_and_the_sum_in_range(self):
    taps, buf = self.random_case((1, 1, 20), 2, extra=5)  # Lb = 13: t in [3, 8]
    for bad in (1.0, jnp.int32(1), True):
      with self.assertRaisesRegex(ValueError, "offset must be a Python int"):
        pallas_inplace.gray_tile(taps, buf, 4, 2, offset=bad)
    with self.assertRaisesRegex(ValueError, "t = 9 out of range"):
      pallas_inplace.gray_tile(taps, buf, 4, 2, offset=5)
    with self.assertRaisesRegex(ValueError, "t = 2 out of range"):
      pallas_inplace.flash_step(taps, buf, jnp.zeros((1, 1, 20)), 4, 2, offset=-2)


class InplaceCompiledTest(InplaceTest):
  IMPLEMENTATION = "pallas"


class TritonLoweringTest(parameterized.TestCase):
  """Cross-lowers the compiled kernel for CUDA on any host (the Pallas -> Triton lowering:
  power-of-two blocks, masked loads / stores, the aliased buffer) without a GPU."""

  @parameterized.parameters(  # each kernel at each level and each shape, not the product
      ("tile", 0, (18, 8, 864)), ("tile", 3, (18, 1, 864)), ("tile", 6, (2, 3, 20)),
      ("step", 0, (18, 1, 864)), ("step", 3, (2, 3, 20)), ("step", 6, (18, 8, 864)))
  def test_lowers_for_cuda(self, kernel, level, shape):
    M, B, D = shape
    U = 1 << level
    config = pallas_direct.resolve_blocks(pallas_inplace.INPLACE_CONFIGS[level], D, B)
    Dp = pallas_direct.padded_channels(D, config.channel_block)
    taps = jax.ShapeDtypeStruct((M, Dp, 2 * U), jnp.float32)
    buf = jax.ShapeDtypeStruct((M, B, D, 1000), jnp.float32)
    t = jax.ShapeDtypeStruct((), jnp.int32)
    static = dict(level=level, config=config, interpret=False)
    if kernel == "tile":
      traced = pallas_inplace.inplace_pallas.trace(taps, buf, t, **static)
    else:  # the fused step: u (M, B, D) between the buffer and t
      u = jax.ShapeDtypeStruct((M, B, D), jnp.float32)
      traced = pallas_inplace.step_pallas.trace(taps, buf, u, t, **static)
    try:
      text = traced.lower(lowering_platforms=("cuda",)).as_text()
    except TypeError as e:  # a jax without cross-platform lowering
      self.skipTest(f"cannot lower for CUDA here: {e}")
    self.assertIn("triton", text)
    self.assertIn("output_operand_alias", text)  # the buffer is updated in place


class ErrorsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.buf = jnp.zeros((2, 1, 20, 40), jnp.float32)
    self.taps = jnp.zeros((2, 32, 8), jnp.float32)  # level 2

  def test_level_above_max(self):
    with self.assertRaisesRegex(ValueError, "levels <= 6"):
      pallas_inplace.gray_tile(jnp.zeros((2, 20, 256)), jnp.zeros((2, 1, 20, 300)), 127, 7)
    with self.assertRaisesRegex(ValueError, "levels <= 6"):
      pallas_inplace.prepare(jnp.zeros((2, 20, 256)), 7)
    with self.assertRaisesRegex(ValueError, "supports tile levels <= 6"):
      tau.resolve("pallas_inplace", 7)

  def test_wrong_taps_shape(self):
    with self.assertRaisesRegex(ValueError, "do not match"):
      pallas_inplace.gray_tile(self.taps, self.buf, 5, 3)  # taps of level 2 at level 3
    with self.assertRaisesRegex(ValueError, "do not match"):
      pallas_inplace.gray_tile(jnp.zeros((1, 32, 8)), self.buf, 5, 2)  # wrong M
    with self.assertRaisesRegex(ValueError, "do not match"):
      pallas_inplace.gray_tile(jnp.zeros((2, 16, 8)), self.buf, 5, 2)  # fewer channels than D
    with self.assertRaisesRegex(ValueError, "expected taps"):
      pallas_inplace.gray_tile(self.taps[0], self.buf, 5, 2)

  def test_bad_t_buffer_and_implementation(self):
    with self.assertRaisesRegex(ValueError, "out of range"):
      pallas_inplace.gray_tile(self.taps, self.buf, 2, 2)  # t - U + 1 < 0
    with self.assertRaisesRegex(ValueError, "out of range"):
      pallas_inplace.gray_tile(self.taps, self.buf, 36, 2)  # t + U >= Lb
    with self.assertRaisesRegex(ValueError, "shorter than"):
      pallas_inplace.gray_tile(self.taps, self.buf[..., :7], 3, 2)
    with self.assertRaisesRegex(ValueError, "integer scalar"):
      pallas_inplace.gray_tile(self.taps, self.buf, jnp.zeros((2,), jnp.int32), 2)
    with self.assertRaisesRegex(ValueError, "implementation must be"):
      pallas_inplace.gray_tile(self.taps, self.buf, 5, 2, implementation="cuda")
    with self.assertRaisesRegex(ValueError, r"u must have shape \(M, B, D\)"):
      pallas_inplace.flash_step(self.taps, self.buf, jnp.zeros((2, 1, 19)), 5, 2)
    with self.assertRaisesRegex(ValueError, "out of range"):
      pallas_inplace.flash_step(self.taps, self.buf, jnp.zeros((2, 1, 20)), 36, 2)
    with self.assertRaisesRegex(ValueError, "levels <= 6"):
      pallas_inplace.flash_step(jnp.zeros((2, 20, 256)), jnp.zeros((2, 1, 20, 300)),
                                jnp.zeros((2, 1, 20)), 127, 7)
    if jax.default_backend() == "cpu":
      with self.assertRaisesRegex(ValueError, "need a GPU"):
        pallas_inplace.gray_tile(self.taps, self.buf, 5, 2, implementation="pallas")

  def test_default_dispatch_and_xla_fallback(self):
    rng = np.random.default_rng(0)
    taps = jnp.asarray(rng.standard_normal((2, 32, 8)), jnp.float32)
    buf = jnp.asarray(rng.standard_normal((2, 1, 20, 40)), jnp.float32)
    got = pallas_inplace.gray_tile(taps, buf, 9, 2)
    want = "interpret" if jax.default_backend() == "cpu" else "pallas"
    self.assertEqual(pallas_direct.CHOSEN["inplace U=4"], want)
    xla = pallas_inplace.gray_tile(taps, buf, 9, 2, implementation="xla")
    self.assertLess(relative_error(got, xla), TOLERANCE)


def test_flash_logits_with_inplace_tiles_match_forward():
  """Teacher-forced flash logits with levels 0..6 on the in-place kernel (fft above) equal the
  parallel forward (tests/test_engines.py's contract: 1e-5 relative error, float32, HIGHEST)."""
  params, cfg = make_model(seed=204, l_max=160, d_model=12, d_inner=20, vocab_size=40)
  table = {q: "pallas_inplace" for q in LEVELS}  # level 7 -> fft
  gen = Generator(params, cfg, block_size=8, hybrid_table=table)
  L, P = 160, 17  # 143 generated tokens: tile levels 0..7
  plan, _ = gen.plan("flash", "hybrid", P, L, 3)
  assert dict(plan.tau_by_level) == {**table, 7: "fft"}
  rng = np.random.default_rng(5)
  tokens = jnp.asarray(rng.integers(0, cfg.vocab_size, (3, L)), jnp.int32)
  want = jax.jit(forward, static_argnames=("cfg",))(params, cfg, tokens,
                                                    filters=gen.filters(cfg.l_max))
  # Levels inside a block (0..2 for blocks of 8) run as steps (store u, tile, read the next acc):
  # one fused kernel at FUSED_STEP_LEVELS, else the in-place tile kernel between XLA ops; the
  # block-boundary levels (3..6) as separate in-place tiles.
  inline = range(gen.block_size.bit_length() - 1)
  fused = pallas_inplace.FUSED_STEP_LEVELS
  keys = [f"flash step U={1 << q}" if q in inline and q in fused else f"inplace U={1 << q}"
          for q in LEVELS]
  for key in keys:
    pallas_direct.CHOSEN.pop(key, None)
  got = gen.decode_logits(tokens, P, method="flash")
  want_choice = "interpret" if jax.default_backend() == "cpu" else "pallas"
  assert all(pallas_direct.CHOSEN.get(key) == want_choice for key in keys), pallas_direct.CHOSEN
  assert got.shape == want.shape and got.dtype == jnp.float32
  assert rel_err(got, want) <= 1e-5, rel_err(got, want)
  assert max_position_rel_err(got, want) <= 5e-5


if __name__ == "__main__":
  absltest.main()
