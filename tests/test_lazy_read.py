"""ops/lazy_read: the lazy history read as a Pallas kernel (interpret mode) against float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flash_lcsm_jax.ops import lazy_read


def _case(rng, M, B, L, D, extra):
  hist = rng.standard_normal((M, B, L, D)).astype(np.float32)
  hr = rng.standard_normal((M, L + extra, D)).astype(np.float32)
  return hist, hr


def _want(hist, hr, off, window):
  return np.einsum("mbsd,msd->mbd", hist[:, :, :window].astype(np.float64),
                   hr[:, off:off + window].astype(np.float64))


@pytest.mark.parametrize("B,window,splits", [(1, 64, 1), (3, 128, 4), (8, 96, 2)])
def test_kernel_matches_float64(B, window, splits):
  rng = np.random.default_rng()
  hist, hr = _case(rng, 2, B, window + 16, 64, 40)  # history longer than the window
  off = int(rng.integers(0, 41))
  got = lazy_read.history_read(jnp.asarray(hist), jnp.asarray(hr), jnp.int32(off), window,
                               implementation="interpret", splits=splits)
  want = _want(hist, hr, off, window)
  assert got.shape == (2, B, 64) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_kernel_takes_a_traced_offset_and_agrees_with_xla():
  rng = np.random.default_rng()
  hist, hr = _case(rng, 3, 2, 256, 32, 100)
  fn = jax.jit(lambda o: (lazy_read.history_read(hist, hr, o, 256, implementation="interpret"),
                          lazy_read.history_read(hist, hr, o, 256, implementation="xla")))
  for off in rng.integers(0, 101, size=3):
    got, xla = fn(jnp.int32(off))
    np.testing.assert_allclose(np.asarray(got), np.asarray(xla), rtol=1e-5, atol=1e-4)


def test_default_splits_divide_the_window():
  for window in (16, 48, 512, 1024, 3 << 12, 1 << 16):
    s = lazy_read.default_splits(window)
    assert window % (s * lazy_read.CHUNK) == 0 or s == 1
    assert 1 <= s <= lazy_read.MAX_SPLITS
  assert lazy_read.default_splits(1 << 16) == lazy_read.MAX_SPLITS
  assert lazy_read.default_splits(512) == 1


def test_shapes_that_do_not_tile_fall_back_or_raise():
  rng = np.random.default_rng()
  hist, hr = _case(rng, 1, 2, 64, 48, 8)  # D = 48: not a multiple of the channel block
  want = _want(hist, hr, 3, 60)
  # The default falls back to XLA (window 60 is not a multiple of CHUNK either) ...
  got = lazy_read.history_read(hist, hr, jnp.int32(3), 60)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)
  # ... an explicit kernel request raises, naming why.
  with pytest.raises(ValueError, match="D = 48"):
    lazy_read.history_read(hist, hr, jnp.int32(3), 64, implementation="interpret")
  with pytest.raises(ValueError, match="not a multiple of splits"):
    lazy_read.history_read(hist[..., :32], hr[..., :32], jnp.int32(3), 60,
                           implementation="interpret")


def test_bad_arguments_raise():
  hist, hr = np.zeros((1, 1, 64, 32), np.float32), np.zeros((1, 64, 32), np.float32)
  with pytest.raises(ValueError, match="window must be in"):
    lazy_read.history_read(hist, hr, 0, 65)
  with pytest.raises(ValueError, match="expected hist"):
    lazy_read.history_read(hist[0], hr, 0, 16)
  with pytest.raises(ValueError, match="implementation must be"):
    lazy_read.history_read(hist, hr, 0, 16, implementation="triton")
