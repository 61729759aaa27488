"""ops/ordered_atomics: the atomic add with a chosen memory order, in interpret mode (its value
and its update) and lowered for CUDA on any host (the memory order reaches the Triton IR)."""

import functools
import zlib

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import ordered_atomics
from flash_lcsm_jax.ops import pallas_direct as pd

from conftest import triton_ir  # pylint: disable=g-bad-import-order


def _kernel(count_in, add_ref, count, old_ref, *, order):
  del count_in  # aliased to count
  old_ref[0] = ordered_atomics.atomic_add(count, (jnp.int32(1),), add_ref[0], order)


def _call(count, add, order: str, interpret: bool):
  return pd.pl.pallas_call(
      functools.partial(_kernel, order=order),
      out_shape=(jax.ShapeDtypeStruct(count.shape, jnp.int32),
                 jax.ShapeDtypeStruct((1,), jnp.int32)),
      in_specs=[pd.pl.BlockSpec(), pd.pl.BlockSpec()],
      out_specs=(pd.pl.BlockSpec(), pd.pl.BlockSpec()),
      input_output_aliases={0: 0}, interpret=interpret,
      compiler_params=None if interpret else pd.triton_compiler_params(4, 1))(count, add)


class OrderedAtomicsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    if not ordered_atomics.available():
      self.skipTest("this jax lacks the private Pallas Triton helpers")

  @parameterized.parameters(*ordered_atomics.ORDERS)
  def test_interpret_adds_and_returns_the_old_value(self, order):
    rng = np.random.default_rng(zlib.crc32(order.encode()))
    count = jnp.asarray(rng.integers(-1000, 1000, 3), jnp.int32)
    add = jnp.asarray(rng.integers(-1000, 1000, 1), jnp.int32)
    new, old = jax.jit(_call, static_argnums=(2, 3))(count, add, order, True)
    np.testing.assert_array_equal(np.asarray(old), np.asarray(count[1:2]))
    np.testing.assert_array_equal(np.asarray(new), np.asarray(count.at[1].add(add[0])))

  def test_unknown_order_raises(self):
    with self.assertRaisesRegex(ValueError, "atomic order must be one of"):
      _call(jnp.zeros((3,), jnp.int32), jnp.ones((1,), jnp.int32), "seq_cst", True)

  @parameterized.parameters(*ordered_atomics.ORDERS)
  def test_order_reaches_the_triton_ir(self, order):
    sds = jax.ShapeDtypeStruct
    call = jax.jit(_call, static_argnums=(2, 3))
    (ir,) = triton_ir(self, call.trace(sds((3,), jnp.int32), sds((1,), jnp.int32), order, False))
    atomics = [line for line in ir.splitlines() if "tt.atomic_rmw" in line]
    self.assertLen(atomics, 1)
    self.assertIn(f"add, {order}, gpu", atomics[0])


if __name__ == "__main__":
  absltest.main()
