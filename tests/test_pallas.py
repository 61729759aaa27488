"""Pallas tau kernels against tau.reference and a float64 numpy expectation.

`PallasTauTest` runs the compiled (Triton) kernels and skips without a GPU; the one-line
`PallasTauInterpretTest` runs the same cases in interpret mode on any backend.
"""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from conftest import KernelTestCase, level_shape_cases, lower_for_cuda
from flash_lcsm_jax.ops import pallas_dft
from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import tau

# Max abs error over max |expected| (float64 on the same, dtype-rounded inputs): both kernels
# accumulate in float32, so bfloat16 inputs keep the float32 bound.
TOLERANCE = {np.float32: 2e-6, jnp.bfloat16: 2e-6}

# (M, B, D): odd M, B = 1 and 3, D needing padding (20, 40) or not (48, batch block 4).
SHAPES = ((3, 1, 20), (1, 3, 40), (2, 4, 48))
KERNELS = {
    "direct": (pallas_direct.prepare, pallas_direct.direct_conv, pallas_direct.MAX_LEVEL),
    "dft": (pallas_dft.prepare, pallas_dft.dft_conv, pallas_dft.MAX_LEVEL),
}


def expected64(filters: np.ndarray, seg: np.ndarray) -> np.ndarray:
  """out[m, b, d, j] = sum_{k<U} h[m, d, U+j-k] seg[m, b, d, k] in float64."""
  U = seg.shape[-1]
  h = np.zeros(filters.shape[:2] + (2 * U,))
  n = min(2 * U, filters.shape[-1])
  h[..., :n] = filters[..., :n]
  out = np.zeros(seg.shape)
  for k in range(U):
    out += h[:, None, :, U - k:2 * U - k] * seg[..., k:k + 1]
  return out


def relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


class PallasTauTest(KernelTestCase):
  def random_inputs(self, shape, level, dtype=np.float32, filter_length=None):
    M, B, D = shape
    U = 1 << level
    filters = self.rng.standard_normal((M, D, filter_length or 2 * U + 5)).astype(np.float32)
    seg = jnp.asarray(self.rng.standard_normal((M, B, D, U)), dtype)
    return filters, seg

  def check(self, kernel, shape, level, dtype=np.float32, filter_length=None):
    prepare, conv, _ = KERNELS[kernel]
    filters, seg = self.random_inputs(shape, level, dtype, filter_length)
    consts = prepare(jnp.asarray(filters), level)
    out = jax.jit(lambda c, s: conv(c, s, implementation=self.implementation))(consts, seg)
    self.assertEqual(out.shape, seg.shape)
    self.assertEqual(out.dtype, jnp.float32)
    want = expected64(filters.astype(np.float64), np.asarray(seg.astype(jnp.float32), np.float64))
    tol = TOLERANCE[dtype]
    self.assertLess(relative_error(out, want), tol)
    ref = tau.reference(jnp.asarray(filters), seg)
    self.assertLess(relative_error(out, ref), 2 * tol)

  @parameterized.named_parameters(level_shape_cases(range(pallas_direct.MAX_LEVEL + 1), SHAPES))
  def test_direct(self, level, shape):
    self.check("direct", shape, level)

  @parameterized.named_parameters(level_shape_cases(range(pallas_dft.MAX_LEVEL + 1), SHAPES))
  def test_dft(self, level, shape):
    self.check("dft", shape, level)

  @parameterized.product(kernel=("direct", "dft"), level=(2, 5))
  def test_bfloat16_inputs(self, kernel, level):
    self.check(kernel, (2, 3, 24), level, dtype=jnp.bfloat16)

  @parameterized.product(kernel=("direct", "dft"), level=(3, 6))
  def test_filter_shorter_than_taps(self, kernel, level):
    # Taps beyond the filter's end are zero (the last tiles of a generation at L = l_max).
    self.check(kernel, (1, 2, 16), level, filter_length=(1 << level) + 1)

  @parameterized.parameters("pallas", "pallas_dft")
  def test_registered_tau_inside_jit_on_a_buffer_slice(self, name):
    # As engine.mixers.gray_tile calls it: a dynamic slice of a (M, B, D, Lb) buffer, level static.
    impl = tau.get(name)
    level, (M, B, D) = 5, (3, 2, 20)
    filters, _ = self.random_inputs((M, B, D), level)
    buf = jnp.asarray(self.rng.standard_normal((M, B, D, 96)), jnp.float32)
    consts = impl.prepare(jnp.asarray(filters), level)

    @jax.jit
    def step(consts, buf, t):
      seg = jax.lax.dynamic_slice_in_dim(buf, t - 31, 32, axis=3)
      return impl.apply(consts, seg)

    out = step(consts, buf, jnp.int32(40))
    want = expected64(filters.astype(np.float64), np.asarray(buf[..., 9:41], np.float64))
    self.assertLess(relative_error(out, want), TOLERANCE[np.float32])


class PallasTauInterpretTest(PallasTauTest):
  INTERPRET = True


class TritonLoweringTest(parameterized.TestCase):
  """Cross-lowers the compiled kernels for CUDA on any host: runs the Pallas -> Triton lowering
  (power-of-two blocks, supported primitives, dot shapes and precisions) without a GPU."""

  def lower_for_cuda(self, fn, *args, **static):
    return lower_for_cuda(self, fn.trace(*args, **static))

  @parameterized.parameters((1, 864), (3, 20), (8, 864))  # each batch; padded or not
  def test_direct(self, batch, channels):
    M = 18
    for level in range(pallas_direct.MAX_LEVEL + 1):
      U = 1 << level
      config = pallas_direct.resolve_blocks(pallas_direct.DIRECT_CONFIGS[level], channels, batch)
      Dp = pallas_direct.padded_channels(channels, config.channel_block)
      text = self.lower_for_cuda(
          pallas_direct.direct_pallas, jax.ShapeDtypeStruct((M, Dp, 2 * U), jnp.float32),
          jax.ShapeDtypeStruct((M, batch, channels, U), jnp.float32), config=config,
          interpret=False)
      self.assertIn("triton", text)

  @parameterized.parameters(  # each precision, the batches in turn
      *[(batch, precision) for batch, precision in zip((1, 8, 3, 1), pallas_dft.PRECISIONS)])
  def test_dft(self, batch, precision):
    M, D = 18, 864
    for level in range(pallas_dft.MIN_LEVEL, pallas_dft.MAX_LEVEL + 1):
      U = 1 << level
      config = pallas_dft.resolve_blocks(pallas_dft.DFT_CONFIGS[level], D, batch, U)
      Dp = pallas_direct.padded_channels(D, config.channel_block)
      consts = tuple(jax.ShapeDtypeStruct(s, jnp.float32) for s in [(M, Dp, U)] * 3 + [(U, U)] * 4)
      text = self.lower_for_cuda(
          pallas_dft.dft_pallas, consts, jax.ShapeDtypeStruct((M, batch, D, U), jnp.float32),
          config=config, precision=precision, interpret=False)
      self.assertIn("triton", text)


class DispatchTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.filters = jnp.asarray(rng.standard_normal((2, 20, 64)), jnp.float32)
    self.seg = jnp.asarray(rng.standard_normal((2, 3, 20, 16)), jnp.float32)

  def test_registered(self):
    self.assertIn("pallas", tau.names())
    self.assertIn("pallas_dft", tau.names())
    self.assertEqual(tau.get("pallas").max_level, pallas_direct.MAX_LEVEL)
    self.assertEqual(tau.get("pallas_dft").max_level, pallas_dft.MAX_LEVEL)

  def test_default_choice_is_recorded(self):
    pallas_direct.direct_conv(pallas_direct.prepare(self.filters, 4), self.seg)
    want = "interpret" if jax.default_backend() == "cpu" else "pallas"
    self.assertEqual(pallas_direct.CHOSEN["direct U=16"], want)

  @parameterized.parameters("direct", "dft")
  def test_xla_fallback_matches(self, kernel):
    prepare, conv, _ = KERNELS[kernel]
    consts = prepare(self.filters, 4)
    out = conv(consts, self.seg, implementation="xla")
    self.assertLess(relative_error(out, tau.reference(self.filters, self.seg)), 2e-6)

  def test_falls_back_to_xla_when_triton_fails(self):
    # Pretend to be on a GPU where the kernel does not compile (on CPU it cannot): the default
    # dispatch, traced inside an outer jit as in the engine, must fall back to XLA and say so.
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    with mock.patch.object(pallas_direct, "_backend", return_value="gpu"):
      taps = pallas_direct.prepare(self.filters, 4)
      out = jax.jit(pallas_direct.direct_conv)(taps, self.seg)
      self.assertEqual(pallas_direct.CHOSEN["direct U=16"], "xla")
      self.assertIn("failed to compile", pallas_direct.REASONS["direct U=16"])
      with self.assertRaisesRegex(ValueError, "does not compile"):
        pallas_direct.direct_conv(taps, self.seg, implementation="pallas")
    self.assertLess(relative_error(out, tau.reference(self.filters, self.seg)), 2e-6)

  def test_unknown_implementation(self):
    with self.assertRaisesRegex(ValueError, "implementation must be"):
      pallas_direct.direct_conv(pallas_direct.prepare(self.filters, 4), self.seg,
                                implementation="cuda")

  def test_compiled_pallas_without_gpu_raises(self):
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    with self.assertRaisesRegex(ValueError, "need a GPU"):
      pallas_direct.direct_conv(pallas_direct.prepare(self.filters, 4), self.seg,
                                implementation="pallas")

  def test_direct_rejects_large_tiles_and_mismatched_taps(self):
    seg = jnp.zeros((2, 1, 20, 128), jnp.float32)
    with self.assertRaisesRegex(ValueError, "supports U <= 64"):
      pallas_direct.direct_conv(jnp.zeros((2, 20, 256)), seg, implementation="interpret")
    with self.assertRaisesRegex(ValueError, "do not match"):
      pallas_direct.direct_conv(jnp.zeros((2, 20, 8)), self.seg)

  def test_dft_rejects_unknown_precision(self):
    with self.assertRaisesRegex(ValueError, "precision must be"):
      pallas_dft.dft_conv(pallas_dft.prepare(self.filters, 4), self.seg, precision="fp16")


if __name__ == "__main__":
  absltest.main()
