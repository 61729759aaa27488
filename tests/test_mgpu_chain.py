"""The Mosaic GPU chain experiment (experiments/mgpu_chain.py) on the CPU: its work items add up to
the layer products they stand for, and its kernel builds for CUDA with this JAX (running it needs
a Hopper GPU: experiments/mgpu_chain_gpu.py checks it there against the same reference)."""

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


@pytest.mark.parametrize("variant", ["chain", "nowait_ring7", "chain_ln_rows"])
def test_kernel_lowers_for_cuda(variant):
  spec = mc.parse_variant(variant, 132)
  run = mc.make_runner(2, spec, tokens=3, batch=3)  # both counter parities, chained
  items = jnp.zeros((2 * mc.PER_LAYER, mc.ROWS, mc.KP), jnp.bfloat16)
  text = run.trace(items, jnp.asarray(mc.item_table(2)), jnp.zeros((mc.NB, mc.COLS))).lower(
      lowering_platforms=("cuda",)).as_text()
  assert "mosaic_gpu" in text


@pytest.mark.parametrize("name", ["fast", "chain_rings6", "chain_ring3"])
def test_bad_variants_are_refused(name):
  with pytest.raises(ValueError):
    spec = mc.parse_variant(name, 132)
    mc.chain_kernel(2, spec["programs"], spec["ring"], spec["wait"])


def _teacher_forced_error(items, table, acts0, got, ln):
  """One layer's items, each from the inputs the kernel itself stored (mix from acts0: its
  inputs are the first ones, overwritten later), so one input's bfloat16 rounding cannot
  cascade into later phases: the largest error of any item over its output's maximum."""
  worst = 0.0
  for g in range(table.shape[0]):
    _, i0, i1, i2, out, kind = table[g]
    src = acts0 if kind == 0 else got
    x = src[:, i0:i0 + mc.KP] + src[:, i1:i1 + mc.KP] + src[:, i2:i2 + mc.KP]
    if ln and kind in mc.LN_KINDS:
      x = mc.layer_norm_f32(x)
    want = _bf16(x) @ items[g].astype(np.float64).T
    scale = max(np.max(np.abs(want)), 1e-30)
    worst = max(worst, np.max(np.abs(got[:, out:out + mc.ROWS] - want)) / scale)
  return worst


@pytest.mark.parametrize("variant,ln", [("chain_ln_xload2_progs1_ring5", True)])
def test_kernel_in_interpret_mode_matches_the_reference(variant, ln):
  """The kernel itself (one program, Mosaic GPU's interpret mode): the TMA ring and its
  barriers, the table's addressing, the staging and the layer norms, item by item (the chain's
  bfloat16 roundings cascade from phase to phase, see reference_chain, so each item is checked
  on the inputs the kernel stored)."""
  seed = int(np.random.default_rng().integers(1 << 30))
  rng = np.random.default_rng(seed)
  items = mc.random_items(1, seed=seed)
  table = mc.item_table(1)
  acts = np.zeros((mc.NB, mc.COLS), np.float32)
  batch = int(rng.integers(1, mc.NB + 1))
  acts[:batch, mc.X0:mc.X0 + 864] = rng.standard_normal((batch, 864))
  run = mc.make_runner(1, mc.parse_variant(variant, 1), interpret=True)
  got = np.asarray(run(jnp.asarray(items, jnp.bfloat16), jnp.asarray(table), jnp.asarray(acts)))
  # Float32 sums of four chunks against float64 products: ~1e-6; a layer norm's statistics
  # summed in another order can round one staged input the other way: <= ~1e-4. A wrong
  # item, slot or offset is off by O(1). (The seed is in the message.)
  err = _teacher_forced_error(items, table, acts, got, ln)
  assert err < 1e-3, (seed, batch, err)
  assert not np.any(got[batch:]), seed


def test_interpret_mode_refuses_several_programs():
  with pytest.raises(ValueError, match="one program"):
    mc.chain_kernel(1, programs=2, ring=6, interpret=True)
