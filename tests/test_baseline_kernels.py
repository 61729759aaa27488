"""ops/baseline_kernels: lazy's read and eager's write as Pallas kernels (interpret mode) against
float64 and against XLA's forms, on fresh random inputs. Buffers are (M, L, B, D)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flash_lcsm_jax.ops import baseline_kernels as bk


def _lazy_case(rng, M, B, L, D, extra):
  hist = rng.standard_normal((M, L, B, D)).astype(np.float32)
  hr = rng.standard_normal((M, L + extra, D)).astype(np.float32)
  return hist, hr


def _lazy_want(hist, hr, off, window):
  return np.einsum("msbd,msd->mbd", hist[:, :window].astype(np.float64),
                   hr[:, off:off + window].astype(np.float64))


def _eager_want(buf, h, u, t, window):
  out = buf.astype(np.float64)
  out[:, t + 1:t + 1 + window] += (h[:, 1:window + 1, None].astype(np.float64)
                                   * u[:, None].astype(np.float64))
  return out


@pytest.mark.parametrize("B,window,splits", [(1, 64, 1), (3, 128, 4), (8, 96, 2)])
def test_lazy_read_matches_float64(B, window, splits):
  rng = np.random.default_rng()
  hist, hr = _lazy_case(rng, 2, B, window + 16, 64, 40)  # history longer than the window
  off = int(rng.integers(0, 41))
  got = bk.history_read(jnp.asarray(hist), jnp.asarray(hr), jnp.int32(off), window,
                        implementation="interpret", splits=splits)
  want = _lazy_want(hist, hr, off, window)
  assert got.shape == (2, B, 64) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_lazy_read_takes_a_traced_offset_and_agrees_with_xla():
  rng = np.random.default_rng()
  hist, hr = _lazy_case(rng, 3, 2, 256, 32, 100)
  fn = jax.jit(lambda o: (bk.history_read(hist, hr, o, 256, implementation="interpret"),
                          bk.history_read(hist, hr, o, 256, implementation="xla")))
  for off in rng.integers(0, 101, size=3):
    got, xla = fn(jnp.int32(off))
    np.testing.assert_allclose(np.asarray(got), np.asarray(xla), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("B,window,splits", [(1, 32, 1), (3, 64, 2), (8, 128, 4)])
def test_eager_update_matches_float64_and_touches_only_the_window(B, window, splits):
  rng = np.random.default_rng()
  M, Lb, D = 2, window + 40, 64
  buf = rng.standard_normal((M, Lb, B, D)).astype(np.float32)
  h = rng.standard_normal((M, window + 5, D)).astype(np.float32)
  u = rng.standard_normal((M, B, D)).astype(np.float32)
  t = int(rng.integers(0, Lb - window))  # t + 1 + window <= Lb
  got = np.asarray(bk.future_update(jnp.asarray(buf), jnp.asarray(h), jnp.asarray(u),
                                    jnp.int32(t), window, implementation="interpret",
                                    splits=splits))
  want = _eager_want(buf, h, u, t, window)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  outside = np.ones(Lb, bool)
  outside[t + 1:t + 1 + window] = False
  np.testing.assert_array_equal(got[:, outside], buf[:, outside])  # bit for bit


def test_eager_update_in_place_under_jit_agrees_with_xla():
  rng = np.random.default_rng()
  buf = jnp.asarray(rng.standard_normal((2, 200, 3, 32)), jnp.float32)
  h = jnp.asarray(rng.standard_normal((2, 100, 32)), jnp.float32)
  u = jnp.asarray(rng.standard_normal((2, 3, 32)), jnp.float32)
  step = jax.jit(lambda b, t, impl: bk.future_update(b, h, u, t, 64, implementation=impl),
                 static_argnums=2)
  for t in rng.integers(0, 200 - 64, size=2):
    np.testing.assert_allclose(np.asarray(step(buf, jnp.int32(t), "interpret")),
                               np.asarray(step(buf, jnp.int32(t), "xla")), rtol=1e-6, atol=1e-6)


def test_default_splits_divide_the_window():
  for window in (16, 48, 512, 1024, 3 << 12, 1 << 16):
    s = bk.default_splits(window)
    assert window % (s * bk.CHUNK) == 0 or s == 1
    assert 1 <= s <= bk.MAX_SPLITS
  assert bk.default_splits(1 << 16) == bk.MAX_SPLITS
  assert bk.default_splits(512) == 1


def test_shapes_that_do_not_tile_fall_back_or_raise():
  rng = np.random.default_rng()
  hist, hr = _lazy_case(rng, 1, 2, 64, 48, 8)  # D = 48: not a multiple of the channel block
  want = _lazy_want(hist, hr, 3, 60)
  # The default falls back to XLA (window 60 is not a multiple of CHUNK either) ...
  got = bk.history_read(hist, hr, jnp.int32(3), 60)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)
  # ... an explicit kernel request raises, naming why.
  with pytest.raises(ValueError, match="D = 48"):
    bk.history_read(hist, hr, jnp.int32(3), 64, implementation="interpret")
  with pytest.raises(ValueError, match="not a multiple of splits"):
    bk.history_read(hist[..., :32], hr[..., :32], jnp.int32(3), 60, implementation="interpret")
  with pytest.raises(ValueError, match="D = 48"):
    bk.future_update(hist, hr, hist[:, 0], jnp.int32(0), 32, implementation="interpret")


def test_bad_arguments_raise():
  hist, hr = np.zeros((1, 64, 1, 32), np.float32), np.zeros((1, 64, 32), np.float32)
  with pytest.raises(ValueError, match="window must be in"):
    bk.history_read(hist, hr, 0, 65)
  with pytest.raises(ValueError, match="expected a buffer"):
    bk.history_read(hist[0], hr, 0, 16)
  with pytest.raises(ValueError, match="implementation must be"):
    bk.history_read(hist, hr, 0, 16, implementation="triton")
  with pytest.raises(ValueError, match="taps"):
    bk.future_update(hist, hr, hist[:, 0], 0, 64)
  with pytest.raises(ValueError, match="u must be"):
    bk.future_update(hist, hr, np.zeros((1, 2, 32), np.float32), 0, 16)
