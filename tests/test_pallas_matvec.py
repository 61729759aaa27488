"""Split-K Pallas matvec against float64 numpy on fresh random inputs.

`MatvecInterpretTest` runs the kernel body in interpret mode (any backend) inside jax.jit for the
five per-token shapes of the paper model (the 50257-column unembedding shrunk to 1105 columns,
with its own block config: neither K = 864 nor N = 1105 is a multiple of the blocks), B in
{1, 3, 8}, float32 and bfloat16 weights and both reductions. `MatvecCompiledTest` runs the same
cases compiled with Triton and skips without a GPU. `TritonLoweringTest` cross-lowers the compiled
kernel for CUDA on any host; `DispatchTest` covers the dispatcher and its fallbacks.
"""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from conftest import KernelTestCase, lower_for_cuda
from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import pallas_matvec as pm

# Max abs error over max |expected| (float64 on the same dtype-rounded inputs): the kernel
# accumulates in float32 whatever the input dtype.
TOLERANCE = 2e-6
SHRUNK_VOCAB = 1105  # 50257 % 128 = 81; 1105 % 128 = 81 too.
# (K, N, config key): the per-token shapes with the table's configs.
SHAPES = ((864, 2592, (864, 2592)), (864, 864, (864, 864)), (864, 1728, (864, 1728)),
          (1728, 864, (1728, 864)), (864, SHRUNK_VOCAB, (864, 50257)))
BATCHES = (1, 3, 8)


def relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def as64(a) -> np.ndarray:
  return np.asarray(jnp.asarray(a).astype(jnp.float32), np.float64)


class MatvecCompiledTest(KernelTestCase):
  def check(self, K, N, B, config=None, w_dtype=jnp.float32, x_dtype=jnp.float32, bias=True,
            lead=()):
    w = jnp.asarray(self.rng.uniform(-1, 1, (K, N)) / np.sqrt(K), w_dtype)
    x = jnp.asarray(self.rng.standard_normal(lead + (B, K)), x_dtype)
    b = jnp.asarray(self.rng.standard_normal(N), jnp.float32) if bias else None
    prepared = pm.prepare_weights(w, config)
    self.assertEqual(prepared.w.dtype, w_dtype)
    out = jax.jit(lambda x, p, b: pm.matvec(x, p, b, implementation=self.implementation))(
        x, prepared, b)
    self.assertEqual(out.shape, lead + (B, N))
    self.assertEqual(out.dtype, jnp.float32)
    want = as64(x) @ as64(w) + (as64(b) if bias else 0.0)
    self.assertLess(relative_error(out, want), TOLERANCE)
    return prepared

  @parameterized.parameters(  # every shape, the batches in turn, and every batch at the first
      *[(shape, BATCHES[i % len(BATCHES)]) for i, shape in enumerate(SHAPES)],
      *[(SHAPES[0], batch) for batch in BATCHES[1:]])
  def test_per_token_shapes(self, shape, batch):
    K, N, key = shape
    prepared = self.check(K, N, batch, pm.MATVEC_CONFIGS[key])
    Kp, Np = prepared.w.shape
    self.assertEqual((prepared.k, prepared.n), (K, N))
    self.assertEqual((Kp % prepared.config.split_k, Np % prepared.config.block_n), (0, 0))

  @parameterized.parameters(((864, 2592), jnp.float32), ((1728, 864), jnp.bfloat16),
                            ((864, SHRUNK_VOCAB), jnp.bfloat16))
  def test_bfloat16_weights(self, shape, x_dtype):
    self.check(*shape, 3, w_dtype=jnp.bfloat16, x_dtype=x_dtype)

  @parameterized.product(
      config=(pm.MatvecConfig(reduction="dot"),
              pm.MatvecConfig(block_n=64, block_k=32, k_steps=4, num_stages=3),
              pm.MatvecConfig(block_n=32, block_k=16, k_steps=2, reduction="dot"),
              pm.MatvecConfig(batch_block=2)),
      batch=(1, 5))
  def test_other_configs(self, config, batch):
    self.check(200, 300, batch, config)

  def test_bfloat16_dot(self):
    self.check(864, 200, 8, pm.MatvecConfig(reduction="dot"), w_dtype=jnp.bfloat16,
               x_dtype=jnp.bfloat16)

  def test_tiny_odd_shape_leading_dims_no_bias(self):
    self.check(37, 5, 3, bias=False, lead=(2,))


class MatvecInterpretTest(MatvecCompiledTest):
  INTERPRET = True


class TritonLoweringTest(parameterized.TestCase):
  """Cross-lowers the compiled kernel for CUDA on any host: runs the Pallas -> Triton lowering
  (power-of-two blocks, supported primitives, dot shapes and precisions) without a GPU."""

  def lower_for_cuda(self, x, w, n, config):
    return lower_for_cuda(
        self, pm.matvec_pallas.trace(x, w, None, n=n, config=config, interpret=False))

  @parameterized.parameters((jnp.float32, 1), (jnp.bfloat16, 3), (jnp.float32, 8),
                            (jnp.bfloat16, 40))
  def test_lowers(self, dtype, batch):
    configs = [((k, n), pm.MATVEC_CONFIGS[(k, n)]) for k, n in pm.MATVEC_CONFIGS]
    configs += [((864, 2592), pm.MatvecConfig(reduction="dot")),
                ((864, 2592), pm.MatvecConfig(block_k=32, k_steps=4, num_stages=3)),
                ((864, 2592), pm.MatvecConfig(reduction="dot", k_steps=2, num_stages=2))]
    for (K, N), config in configs:
      prepared = jax.eval_shape(lambda config=config, K=K, N=N: pm.prepare_weights(
          jnp.zeros((K, N), dtype), config))
      text = self.lower_for_cuda(jax.ShapeDtypeStruct((batch, K), dtype), prepared.w, N, config)
      self.assertIn("triton", text)


class DispatchTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.w = jnp.asarray(rng.standard_normal((40, 70)), jnp.float32)
    self.x = jnp.asarray(rng.standard_normal((3, 40)), jnp.float32)
    self.bias = jnp.asarray(rng.standard_normal(70), jnp.float32)
    self.want = as64(self.x) @ as64(self.w) + as64(self.bias)
    self.key = "matvec 40x70 float32 B=3"

  def test_default_is_xla_off_gpu(self):
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    out = pm.matvec(self.x, pm.prepare_weights(self.w), self.bias)
    self.assertEqual(pallas_direct.CHOSEN[self.key], "xla")
    self.assertIn("interpret mode only on request", pallas_direct.REASONS[self.key])
    self.assertLess(relative_error(out, self.want), TOLERANCE)

  def test_default_is_pallas_on_gpu(self):
    if jax.default_backend() not in pm.GPU_BACKENDS:
      self.skipTest("GPU only")
    pm.matvec(self.x, pm.prepare_weights(self.w), self.bias)
    self.assertEqual(pallas_direct.CHOSEN[self.key], "pallas")

  def test_falls_back_to_xla_when_triton_fails(self):
    # Pretend to be on a GPU where the kernel does not compile (on CPU it cannot): the default
    # dispatch, traced inside an outer jit, must fall back to XLA and say so.
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    with mock.patch.object(pallas_direct, "_backend", return_value="gpu"):
      prepared = pm.prepare_weights(self.w)
      out = jax.jit(pm.matvec)(self.x, prepared, self.bias)
      self.assertEqual(pallas_direct.CHOSEN[self.key], "xla")
      self.assertIn("failed to compile", pallas_direct.REASONS[self.key])
      with self.assertRaisesRegex(ValueError, "does not compile"):
        pm.matvec(self.x, prepared, self.bias, implementation="pallas")
    self.assertLess(relative_error(out, self.want), TOLERANCE)

  def test_large_batch_goes_to_xla_on_gpu(self):
    x = jnp.zeros((pm.MAX_PALLAS_BATCH + 1, 40), jnp.float32)
    with mock.patch.object(pallas_direct, "_backend", return_value="gpu"):
      out = pm.matvec(x, pm.prepare_weights(self.w))
    key = f"matvec 40x70 float32 B={pm.MAX_PALLAS_BATCH + 1}"
    self.assertEqual(pallas_direct.CHOSEN[key], "xla")
    self.assertIn("GEMM", pallas_direct.REASONS[key])
    self.assertEqual(out.shape, (pm.MAX_PALLAS_BATCH + 1, 70))

  @parameterized.parameters(jnp.float32, jnp.bfloat16)
  def test_xla_matches_float64(self, dtype):
    w = self.w.astype(dtype)
    out = jax.jit(lambda x, p: pm.matvec(x, p, implementation="xla"))(self.x.astype(dtype),
                                                                     pm.prepare_weights(w))
    want = as64(self.x.astype(dtype)) @ as64(w)
    self.assertLess(relative_error(out, want), TOLERANCE)

  def test_compiled_pallas_without_gpu_raises(self):
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    with self.assertRaisesRegex(ValueError, "need a GPU"):
      pm.matvec(self.x, pm.prepare_weights(self.w), implementation="pallas")

  def test_rejects_bad_arguments(self):
    prepared = pm.prepare_weights(self.w, pm.MatvecConfig(block_n=32, block_k=16))
    with self.assertRaisesRegex(ValueError, "implementation must be"):
      pm.matvec(self.x, prepared, implementation="cuda")
    with self.assertRaisesRegex(ValueError, "does not match"):
      pm.matvec(self.x[:, :39], prepared)
    with self.assertRaisesRegex(ValueError, "bias must have shape"):
      pm.matvec(self.x, prepared, self.bias[:69])
    with self.assertRaisesRegex(ValueError, "do not fit"):
      pm.matvec(self.x, prepared, config=pm.MatvecConfig(block_n=128))
    with self.assertRaisesRegex(TypeError, "PreparedWeights"):
      pm.matvec(self.x, self.w)
    with self.assertRaisesRegex(ValueError, "power of two"):
      pm.MatvecConfig(block_k=48)
    with self.assertRaisesRegex(ValueError, "reduction"):
      pm.MatvecConfig(reduction="atomic")

  def test_prepared_weights_is_a_pytree_with_static_shape(self):
    prepared = pm.prepare_weights(self.w.astype(jnp.bfloat16))
    leaves, treedef = jax.tree_util.tree_flatten(prepared)
    self.assertLen(leaves, 1)
    self.assertEqual(leaves[0].shape, (64, 128))  # default config for (40, 70): BK 32, BN 128
    self.assertEqual(prepared.shape, (40, 70))
    self.assertEqual(prepared.dtype, jnp.bfloat16)
    np.testing.assert_array_equal(prepared.unpadded(), self.w.astype(jnp.bfloat16))
    np.testing.assert_array_equal(np.asarray(prepared.w[40:], np.float32), 0)
    doubled = jax.tree_util.tree_map(lambda a: 2 * a, prepared)
    self.assertEqual((doubled.k, doubled.n, doubled.config), (40, 70, prepared.config))
    self.assertEqual(jax.tree_util.tree_unflatten(treedef, leaves).n, 70)

  def test_default_config(self):
    for (k, n), config in pm.MATVEC_CONFIGS.items():
      self.assertIs(pm.default_config(k, n), config)
      programs = -(-n // config.block_n) * -(-k // config.split_k)
      self.assertGreaterEqual(programs, 150, (k, n))
    for k, n in ((5, 3), (1000, 1000), (4096, 11008)):
      config = pm.default_config(k, n)
      self.assertLessEqual(config.block_n, max(16, pallas_direct.next_pow2(n)))
      self.assertLessEqual(config.block_k, max(16, pallas_direct.next_pow2(k)))


if __name__ == "__main__":
  absltest.main()
