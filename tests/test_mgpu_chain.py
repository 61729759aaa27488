"""The Mosaic GPU chain experiment (experiments/mgpu_chain.py) on the CPU: its work items add up to
the layer products they stand for, and its kernel builds for CUDA with this JAX (running it needs
a Hopper GPU: experiments/mgpu_chain_gpu.py checks it there against the same reference)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import mgpu_chain as mc


def _bf16(x):
  return np.asarray(x, np.float32).astype(jnp.bfloat16).astype(np.float64)


def _layer_matrices(items, layer):
  """The unpadded (out, in) matrices a layer's items were cut from."""
  b = layer * mc.PER_LAYER
  mix = items[b:b + 41].reshape(-1, mc.KP)[:2592, :864]
  out = items[b + 41:b + 55].reshape(-1, mc.KP)[:864, :864]
  up = items[b + 55:b + 82].reshape(-1, mc.KP)[:1728, :864]
  halves = items[b + 82:b + 110].reshape(14, 2, mc.ROWS, mc.KP).transpose(0, 2, 1, 3)
  down = halves.reshape(14 * mc.ROWS, 2 * mc.KP)[:864, :1728]
  return mix, out, up, down


@pytest.mark.parametrize("ln", [False, True])
def test_items_add_up_to_the_layer_products(ln):
  layers, batch = 2, 3
  seed = int(np.random.default_rng().integers(1 << 30))
  items = mc.random_items(layers, seed=seed)
  table = mc.item_table(layers)
  acts = np.zeros((mc.NB, mc.COLS), np.float32)
  x0 = np.random.default_rng(seed).standard_normal((batch, 864)).astype(np.float32)
  acts[:batch, mc.X0:mc.X0 + 864] = x0
  got = mc.reference_chain(items, table, acts, ln=ln)
  norm = mc.layer_norm_f32 if ln else (lambda v: v)

  # Every stored activation is float32, as in the kernel's buffer; products in float64.
  f32 = lambda v: np.asarray(v, np.float32)
  p0 = p1 = np.zeros((batch, 864), np.float32)
  for layer in range(layers):
    mix, out, up, down = (m.astype(np.float64) for m in _layer_matrices(items, layer))
    h = f32(_bf16(norm(x0 + p0 + p1)) @ mix.T)
    y = f32(_bf16(h[:, :864] + h[:, 1728:2592]) @ out.T)
    u = f32(_bf16(norm(y)) @ up.T)
    p0 = f32(_bf16(u[:, :896]) @ down[:, :896].T)
    p1 = f32(_bf16(u[:, 896:]) @ down[:, 896:].T)
  d = p0.astype(np.float64) + p1
  kernel_d = got[:batch, mc.P0:mc.P0 + 864] + got[:batch, mc.P1:mc.P1 + 864]
  assert np.max(np.abs(kernel_d - d)) / np.max(np.abs(d)) < 1e-5
  # Rows past the batch stay zero, and so do the padded output rows.
  assert not np.any(got[batch:])
  assert not np.any(got[:, mc.P0 + 864:mc.P0 + mc.KP])
  assert not np.any(got[:, mc.U + 1728:mc.U + 2 * mc.KP])


def test_layer_norm_f32_matches_float64():
  rng = np.random.default_rng()
  x = np.zeros((mc.NB, mc.KP), np.float32)
  x[:5, :mc.D_MODEL] = rng.standard_normal((5, mc.D_MODEL)) * 3 + 1
  x64 = x[:, :mc.D_MODEL].astype(np.float64)
  mean = x64.mean(1, keepdims=True)
  want = (x64 - mean) / np.sqrt(x64.var(1, keepdims=True) + mc.LN_EPS)
  got = mc.layer_norm_f32(x)
  assert got.dtype == np.float32
  np.testing.assert_allclose(got[:, :mc.D_MODEL], want, rtol=0, atol=1e-4)
  # Padded columns carry -mean * rstd: harmless, the weights' padded columns are zero.


def test_item_table_orders_the_waits():
  table = mc.item_table(3)
  assert table.shape == (3 * mc.PER_LAYER, 6)
  assert set(table[:, 5]) == set(range(len(mc.KINDS)))
  waits = table[:, 0]
  assert np.all(np.diff(waits) >= 0)
  # An item waits for exactly the items before its phase.
  for g in range(table.shape[0]):
    assert waits[g] == np.searchsorted(waits, waits[g])


@pytest.mark.parametrize("variant", ["chain", "nowait_ring7"])
def test_kernel_lowers_for_cuda(variant):
  spec = mc.parse_variant(variant, 132)
  run = mc.make_runner(2, spec, tokens=3)  # both counter parities, chained
  items = jnp.zeros((2 * mc.PER_LAYER, mc.ROWS, mc.KP), jnp.bfloat16)
  text = run.trace(items, jnp.asarray(mc.item_table(2)), jnp.zeros((mc.NB, mc.COLS))).lower(
      lowering_platforms=("cuda",)).as_text()
  assert "mosaic_gpu" in text


@pytest.mark.parametrize("name", ["fast", "chain_rings6", "chain_ring3"])
def test_bad_variants_are_refused(name):
  with pytest.raises(ValueError):
    spec = mc.parse_variant(name, 132)
    mc.chain_kernel(2, spec["programs"], spec["ring"], spec["wait"])
