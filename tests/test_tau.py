"""Tile contributions (tau): every implementation against tau.reference, and the reference
against a float64 numpy middle product.

A level-q tile (U = 2^q) maps seg[k] = y_{i-U+1+k} (k < U) to out[j] = sum_k h[U+j-k] seg[k]
(j < U): the part of the full convolution h * seg at outputs U..2U-1 (a "middle product").
"""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.ops import calibration
from flash_lcsm_jax.ops import tau as tau_ops

# Levels checked per implementation (capped so interpret-mode Pallas and the O(U^2) direct
# products stay cheap on CPU; every level an implementation supports up to the cap).
LEVEL_CAP = 10


def middle_product64(filters: np.ndarray, seg: np.ndarray) -> np.ndarray:
  """Full float64 convolution per channel, outputs U..2U-1; filter taps beyond its end are 0."""
  M, B, D, U = seg.shape
  h = np.zeros((M, D, 2 * U))
  n = min(2 * U, filters.shape[-1])
  h[..., :n] = filters[..., :n]
  out = np.zeros(seg.shape)
  for m in range(M):
    for b in range(B):
      for d in range(D):
        out[m, b, d] = np.convolve(h[m, d], seg[m, b, d])[U:2 * U]
  return out


def random_case(rng, level, M=2, B=3, D=5, filter_length=None):
  U = 1 << level
  L = 2 * U if filter_length is None else filter_length
  decay = np.exp(-np.arange(L) / max(4.0, L / 3))  # filters that decay, as implicit ones do
  filters = (rng.normal(size=(M, D, L)) * decay).astype(np.float32)
  seg = rng.normal(size=(M, B, D, U)).astype(np.float32)
  return filters, seg


def max_rel(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _cases():
  out = []
  for name in tau_ops.names():
    top = min(tau_ops.get(name).max_level, LEVEL_CAP)
    out += [pytest.param(name, q, id=f"{name}-q{q}") for q in range(top + 1)]
  return out


@pytest.mark.parametrize("level", range(11))
def test_reference_matches_float64_middle_product(level):
  rng = np.random.default_rng(level)
  for filter_length in (None, 3 << level, 1 + (1 << level)):  # 2U, longer, shorter than 2U
    filters, seg = random_case(rng, level, filter_length=filter_length)
    got = tau_ops.reference(jnp.asarray(filters), jnp.asarray(seg))
    assert got.shape == seg.shape and got.dtype == jnp.float32
    assert max_rel(got, middle_product64(filters, seg)) < 1e-5


@pytest.mark.parametrize("name,level", _cases())
def test_tau_matches_reference(name, level):
  impl = tau_ops.get(name)
  rng = np.random.default_rng(zlib.crc32(f"{name}{level}".encode()))
  # Odd layer / channel counts; at odd levels a filter shorter than 2U (taps beyond its end
  # are zero), at even levels one longer than 2U (taps beyond 2U must be ignored).
  M, B, D = (3, 2, 17) if level % 2 else (1, 1, 3)
  filter_length = (1 << level) + 1 if level % 2 else 3 << level
  filters, seg = random_case(rng, level, M, B, D, filter_length)
  consts = impl.prepare(jnp.asarray(filters), level)
  got = jax.jit(impl.apply)(consts, jnp.asarray(seg))
  assert got.shape == seg.shape
  assert got.dtype == jnp.float32
  want = tau_ops.reference(jnp.asarray(filters), jnp.asarray(seg))
  assert max_rel(got, want) < 1e-5
  assert max_rel(got, middle_product64(filters, seg)) < 1e-5


@pytest.mark.parametrize("level", [12, 14])
def test_fft_tau_at_large_levels(level):
  """Levels above LEVEL_CAP: fft against a float64 FFT middle product (exact to ~1e-12)."""
  rng = np.random.default_rng(level)
  filters, seg = random_case(rng, level, M=2, B=1, D=3)
  impl = tau_ops.get("fft")
  got = impl.apply(impl.prepare(jnp.asarray(filters), level), jnp.asarray(seg))
  U = 1 << level
  spec = np.fft.rfft(filters.astype(np.float64), n=2 * U)[:, None]
  want = np.fft.irfft(np.fft.rfft(seg.astype(np.float64), n=2 * U) * spec, n=2 * U)[..., U:]
  assert max_rel(got, want) < 1e-5


def test_fft_tau_layer_by_layer_above_the_chunk_size(monkeypatch):
  """Large tiles run one layer at a time (lax.map); same numbers as all layers at once."""
  rng = np.random.default_rng(5)
  filters, seg = random_case(rng, 5, M=3, B=2, D=4)
  impl = tau_ops.get("fft")
  spec, seg = impl.prepare(jnp.asarray(filters), 5), jnp.asarray(seg)
  whole = impl.apply(spec, seg)
  monkeypatch.setattr(tau_ops, "FFT_CHUNK_BYTES", 1)
  assert "while" in jax.jit(impl.apply).lower(spec, seg).as_text()  # the per-layer loop
  chunked = impl.apply(spec, seg)
  assert max_rel(chunked, whole) < 1e-6
  assert max_rel(chunked, middle_product64(filters, np.asarray(seg))) < 1e-5


@pytest.mark.parametrize("name", ["fft", "matmul", "direct"])
def test_large_tiles_run_one_layer_at_a_time_on_the_buffer(monkeypatch, name):
  """engine.mixers.gray_tile above tau.by_layer: a loop over the layers, each adding its tile to
  the buffer in place; the same buffer as all layers at once, and as float64."""
  level, (M, B, D, Lb), t = 3, (3, 2, 5, 40), 20
  U = 1 << level
  rng = np.random.default_rng(zlib.crc32(name.encode()))
  filters, _ = random_case(rng, level, M, B, D, filter_length=2 * U + 3)
  buf = rng.normal(size=(M, B, D, Lb)).astype(np.float32)
  impl = tau_ops.get(name)
  assert impl.layer_consts is not None
  consts = impl.prepare(jnp.asarray(filters), level)
  # A new function per threshold: jit's trace cache is keyed on the function.
  tile = lambda: jax.jit(lambda c, b, t: mixers.gray_tile(c, b, t, level, name))
  whole = tile()(consts, jnp.asarray(buf), jnp.int32(t))
  monkeypatch.setattr(tau_ops, "FFT_CHUNK_BYTES", 1)
  by_layer = tile()
  assert "while" in by_layer.lower(consts, jnp.asarray(buf), jnp.int32(t)).as_text()
  got = np.asarray(by_layer(consts, jnp.asarray(buf), jnp.int32(t)))
  assert max_rel(got, whole) < 1e-6
  want = buf.astype(np.float64)
  want[..., t + 1:t + U + 1] += middle_product64(filters, buf[..., t - U + 1:t + 1])
  assert max_rel(got, want) < 1e-5
  np.testing.assert_array_equal(got[..., :t + 1], buf[..., :t + 1])  # u and earlier untouched


def test_layer_by_layer_tile_holds_a_layer_not_a_copy_of_the_buffer(monkeypatch):
  """Compiled with the buffer donated (as the engine's _run_tile): the tile runs in place (the
  output aliases the buffer) and its temporaries shrink from ~4 whole-tile segments (XLA:CPU
  here) to a layer's worth, well under the buffer's size (no hidden copy of it)."""
  M, B, D, Lb, level = 8, 2, 16, 4096, 10
  U = 1 << level
  consts = jax.eval_shape(lambda f: tau_ops.get("fft").prepare(f, level),
                          jax.ShapeDtypeStruct((M, D, 2 * U), jnp.float32))
  buf = jax.ShapeDtypeStruct((M, B, D, Lb), jnp.float32)

  def memory():
    fn = jax.jit(lambda c, b, t: mixers.gray_tile(c, b, t, level, "fft"), donate_argnums=1)
    return fn.lower(consts, buf, jax.ShapeDtypeStruct((), jnp.int32)).compile().memory_analysis()

  whole = memory()
  if whole is None:
    pytest.skip("this backend reports no memory analysis")
  monkeypatch.setattr(tau_ops, "FFT_CHUNK_BYTES", 1)
  per_layer = memory()
  buffer_bytes, segment_bytes = 4 * M * B * D * Lb, 4 * M * B * D * U
  for analysis in (whole, per_layer):
    assert analysis.alias_size_in_bytes == buffer_bytes  # updated in place
  # A layer's FFT: its segment, spectrum, product and 2U-point inverse (~6 segments' worth).
  assert whole.temp_size_in_bytes >= 2 * segment_bytes
  assert per_layer.temp_size_in_bytes <= 6 * segment_bytes / M
  assert per_layer.temp_size_in_bytes < min(whole.temp_size_in_bytes, buffer_bytes) / 4


def test_every_level_up_to_max_is_registered_sensibly():
  names = tau_ops.names()
  assert {"direct", "fft", "matmul"} <= set(names)
  for name in names:
    impl = tau_ops.get(name)
    assert impl.name == name and impl.max_level >= 0
  assert tau_ops.get("fft").max_level >= 17  # the FFT tau must run every level alone


def test_taps_zero_beyond_filter_end():
  filters = jnp.arange(1, 6, dtype=jnp.float32).reshape(1, 1, 5)
  np.testing.assert_array_equal(tau_ops.taps(filters, 2), [[[1, 2, 3, 4, 5, 0, 0, 0]]])
  np.testing.assert_array_equal(tau_ops.taps(filters, 0), [[[1, 2]]])


def test_toeplitz_layout():
  filters = jnp.arange(8, dtype=jnp.float32).reshape(1, 1, 8)
  T = np.asarray(tau_ops.toeplitz(filters, 2))[0, 0]
  want = np.array([[4 + j - k for k in range(4)] for j in range(4)])  # h[U + j - k]
  np.testing.assert_array_equal(T, want)


def test_dft_factors_invert_the_middle_product():
  """The DFT matrices reproduce the middle product in float64 arithmetic."""
  rng = np.random.default_rng(0)
  for q in (0, 1, 3, 6):
    U = 1 << q
    f_re, f_im, g_re, g_im = (a.astype(np.float64) for a in tau_ops.dft_factors(q))
    h = rng.normal(size=(1, 1, 2 * U))
    seg = rng.normal(size=(1, 1, 1, U))
    spec = np.fft.rfft(h, n=2 * U)[0, 0]
    x = seg[0, 0, 0] @ f_re + 1j * (seg[0, 0, 0] @ f_im)
    y = x * spec
    out = y.real @ g_re - y.imag @ g_im
    np.testing.assert_allclose(out, middle_product64(h, seg)[0, 0, 0], atol=1e-5)


# ----------------------------------------------------------------------------- resolve


def test_resolve_named_tau_within_its_levels():
  for name in tau_ops.names():
    impl = tau_ops.get(name)
    for level in {0, impl.max_level}:
      assert tau_ops.resolve(name, level) == name


@pytest.mark.parametrize("name", [n for n in tau_ops.names() if tau_ops.get(n).max_level < 30])
def test_resolve_named_tau_beyond_its_levels_is_refused(name):
  top = tau_ops.get(name).max_level
  with pytest.raises(ValueError, match=rf"tau '{name}' supports tile levels <= {top}"):
    tau_ops.resolve(name, top + 1)


def test_resolve_hybrid_default_table_and_fallback():
  for level in range(20):
    name = tau_ops.resolve("hybrid", level)
    assert name in tau_ops.names()
    assert level <= tau_ops.get(name).max_level
    if level in tau_ops.DEFAULT_HYBRID and level <= tau_ops.get(
        tau_ops.DEFAULT_HYBRID[level]).max_level:
      assert name == tau_ops.DEFAULT_HYBRID[level]
  assert tau_ops.resolve("hybrid", 17) == "fft"


def test_resolve_hybrid_user_table():
  table = {0: "fft", 1: "matmul", 9: "direct"}  # direct cannot run level 9: falls back to fft
  assert tau_ops.resolve("hybrid", 0, table) == "fft"
  assert tau_ops.resolve("hybrid", 1, table) == "matmul"
  assert tau_ops.resolve("hybrid", 9, table) == "fft"
  assert tau_ops.resolve("hybrid", 5, table) == "fft"  # levels missing from the table
  with pytest.raises(ValueError, match="unknown tau 'nope'"):
    tau_ops.resolve("hybrid", 2, {2: "nope"})


def test_unknown_tau_names_the_choices():
  with pytest.raises(ValueError, match=r"unknown tau 'fast'; choose from \[.*'fft'.*'hybrid'\]"):
    tau_ops.get("fast")


@pytest.mark.parametrize("name,level", [("direct", 0), ("direct_dot", 2), ("pallas_inplace", 1)])
def test_calibration_chain_adds_every_tile_at_its_traced_position(name, level):
  # The chain `calibration.measure` times: `count` tiles at tile_positions, passed in as scalars
  # (one compile whatever the positions). Checked against the float64 middle product per tile.
  rng = np.random.default_rng()
  U, count, (M, B, D) = 1 << level, 3, (2, 2, 5)
  filters = rng.normal(size=(M, D, 2 * U)).astype(np.float32)
  buf = rng.normal(size=(M, B, D, 2 * count * U + U)).astype(np.float32)
  ts = calibration.tile_positions(level, count)
  assert [int(t) for t in ts] == [(2 * j + 1) * U - 1 for j in range(count)]
  assert all(t.dtype == jnp.int32 and t.shape == () for t in ts)
  want = buf.astype(np.float64)
  for t in (int(t) for t in ts):
    want[..., t + 1:t + 1 + U] += middle_product64(filters, want[..., t - U + 1:t + 1])
  impl = tau_ops.get(name)
  run = calibration._tile_chain(level, name, count)  # pylint: disable=protected-access
  got = np.asarray(run(impl.prepare(jnp.asarray(filters), level), jnp.asarray(buf), ts))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
