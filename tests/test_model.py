"""The Hyena model against an independent float64 numpy implementation.

Everything here is re-derived from the model description (DESIGN.md section 3 and the safari /
HyenaDNA reference), not from the library's code: positional features over l_max, the Sin MLP of
the implicit filter with an exponential decay window, the causal short convolution (PyTorch
Conv1d with padding K-1, so kernel[k] multiplies the input at t-(K-1)+k), the long convolution
z_t = sum_{s<=t} h[t-s] u_s + bias * u_t as a direct O(L^2) sum, tanh-GELU MLP, tied or untied
unembedding.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_model, max_position_rel_err, rel_err
from flash_lcsm_jax import forward, materialise_filter
from flash_lcsm_jax.models import hyena

f64 = lambda x: np.asarray(x, np.float64)
jit_forward = jax.jit(forward, static_argnames=("cfg", "return_aux"))
jit_token_step = jax.jit(hyena.token_step, static_argnames=("cfg",))


# ----------------------------------------------------------------------------- numpy reference


def np_positional_features(l_max: int, emb_dim: int, length: int):
  bands = (emb_dim - 1) // 2
  t = np.linspace(0.0, 1.0, l_max)[:, None]
  w = 2 * np.pi * np.arange(l_max)[:, None] / l_max
  freqs = np.linspace(1e-4, bands - 1, bands)[None, :]
  z = np.exp(-1j * freqs * w)
  feats = np.concatenate([t, z.real, z.imag], axis=-1)
  return feats[:length], t[:length]


def np_filter(fp, cfg, length: int) -> np.ndarray:
  """(M, D, length) implicit filters in float64 from float64 copies of the parameters."""
  feats, t = np_positional_features(cfg.l_max, cfg.emb_dim, length)
  out = []
  for m in range(cfg.n_layers):
    a = np.sin(f64(fp["freq_in"][m]) * (feats @ f64(fp["w_in"][m]) + f64(fp["b_in"][m])))
    for j in range(cfg.filter_inner_mlps):
      a = np.sin(f64(fp["freq_hidden"][m, j]) *
                 (a @ f64(fp["w_hidden"][m, j]) + f64(fp["b_hidden"][m, j])))
    h = a @ f64(fp["w_out"][m])  # (length, D)
    decay = np.exp(-t * np.abs(f64(fp["deltas"][m])))
    out.append((h * (decay + cfg.modulation_shift)).T)
  return np.stack(out)


def np_layer_norm(x, p, eps):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * f64(p["scale"]) + f64(p["bias"])


def np_gelu_tanh(x):
  return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def np_forward(params, cfg, tokens, valid=None, h=None):
  """Logits (B, L, V) float64 with the long convolution as a direct causal sum.

  valid: optional (B, L) bool; False positions (left padding) have their short-conv and
  long-conv inputs zeroed. h: (M, D, >=L) filters (float64 copies); default np_filter.
  """
  tokens = np.asarray(tokens)
  B, L = tokens.shape
  K, D = cfg.short_filter_order, cfg.d_model
  eps = cfg.layer_norm_eps
  if h is None:
    h = np_filter(params["layers"]["filter"], cfg, L)
  mask = np.ones((B, L, 1)) if valid is None else np.asarray(valid, np.float64)[..., None]
  lay = jax.tree_util.tree_map(f64, params["layers"])
  x = f64(params["embed"])[tokens]
  for m in range(cfg.n_layers):
    lp = jax.tree_util.tree_map(lambda a, m=m: a[m], lay)
    p = np_layer_norm(x, lp["norm1"], eps) @ lp["in_proj"]["kernel"] + lp["in_proj"]["bias"]
    p = p * mask
    c = np.zeros_like(p)
    for t in range(L):
      for k in range(K):
        s = t - (K - 1) + k
        if s >= 0:
          c[:, t] += lp["short_conv"]["kernel"][k] * p[:, s]
    c = c + lp["short_conv"]["bias"]
    x0, x1, v = c[..., :D], c[..., D:2 * D], c[..., 2 * D:]
    u = x1 * v * mask
    z = np.zeros_like(u)
    hm = h[m, :, :L].T  # (L, D): hm[lag, d]
    for t in range(L):
      z[:, t] = np.sum(hm[t::-1][None] * u[:, :t + 1], axis=1)  # sum_s h[t-s] u_s
    z = z + lp["filter"]["bias"] * u
    x = x + (x0 * z) @ lp["out_proj"]["kernel"] + lp["out_proj"]["bias"]
    n = np_layer_norm(x, lp["norm2"], eps)
    hidden = np_gelu_tanh(n @ lp["mlp"]["fc1"]["kernel"] + lp["mlp"]["fc1"]["bias"])
    x = x + hidden @ lp["mlp"]["fc2"]["kernel"] + lp["mlp"]["fc2"]["bias"]
  n = np_layer_norm(x, params["final_norm"], eps)
  unembed = f64(params["embed"]).T if cfg.tie_embeddings else f64(params["unembed"])
  return n @ unembed


# ----------------------------------------------------------------------------- filter


FILTER_CONFIGS = [
    dict(),
    dict(emb_dim=3, filter_inner_mlps=0, filter_order=4),
    dict(emb_dim=7, filter_inner_mlps=2, filter_sin_freq=10.0, modulation_shift=0.25),
    dict(d_model=5, n_layers=3, emb_dim=9, filter_order=12, decay_fast_pct=0.1,
         decay_slow_pct=3.0, decay_target=0.05),
]


@pytest.mark.parametrize("overrides", FILTER_CONFIGS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("perturb", [False, True], ids=["init", "perturbed"])
def test_materialise_filter_matches_numpy(overrides, perturb):
  params, cfg = make_model(seed=3, perturb=perturb, l_max=300, **overrides)
  fp = params["layers"]["filter"]
  for length in (1, 7, 300):
    got = materialise_filter(fp, cfg, length)
    assert got.shape == (cfg.n_layers, cfg.d_model, length)
    assert got.dtype == jnp.float32
    want = np_filter(fp, cfg, length)
    # Each Sin layer multiplies float32 rounding by about freq * |w|: with HyenaDNA's
    # frequency 10 and two hidden layers a float32 filter is only good to ~1e-4.
    tol = 1e-5 if cfg.filter_sin_freq <= 1 else 5e-4
    np.testing.assert_allclose(f64(got), want, rtol=tol, atol=tol * np.abs(want).max())


def test_positional_features_match_numpy():
  _, cfg = make_model(l_max=100, emb_dim=7)
  feats, t = hyena.positional_features(cfg, 60)
  want_feats, want_t = np_positional_features(100, 7, 60)
  assert feats.shape == (60, 7) and t.shape == (60, 1)
  np.testing.assert_allclose(feats, want_feats, atol=1e-6)
  np.testing.assert_allclose(t, want_t, atol=1e-7)


def test_filter_taps_do_not_depend_on_length():
  """The grid is over l_max: tap k is the same whatever length is materialised."""
  params, cfg = make_model(seed=1, l_max=512)
  fp = params["layers"]["filter"]
  full = np.asarray(materialise_filter(fp, cfg, 512))
  for length in (1, 2, 100, 511):
    # Equal up to float32 rounding (matmuls of different shapes may sum in another order).
    np.testing.assert_allclose(np.asarray(materialise_filter(fp, cfg, length)),
                               full[..., :length], rtol=0, atol=1e-6 * np.abs(full).max())


def test_filter_decays_along_time():
  """The fastest channel's window is exp(-|log(1e-2) / 0.3| t): ~2e-7 at the last tap."""
  params, cfg = make_model(seed=2, perturb=False, l_max=2048, d_model=16)
  h = np.abs(np.asarray(materialise_filter(params["layers"]["filter"], cfg, 2048)))
  assert np.all(h[:, -1, -16:] < 1e-5 * h.max())
  assert h[:, 0, -16:].max() > 1e-3 * h[:, 0, :16].max()  # the slowest one still reaches there


def test_init_params_layout_and_determinism():
  from flash_lcsm_jax import HyenaConfig, init_params
  cfg = HyenaConfig(vocab_size=11, d_model=4, n_layers=3, d_inner=6, l_max=50, filter_order=5,
                    emb_dim=3, filter_inner_mlps=2, tie_embeddings=False)
  a = init_params(jax.random.PRNGKey(1), cfg)
  b = init_params(jax.random.PRNGKey(1), cfg)
  c = init_params(jax.random.PRNGKey(2), cfg)
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y, z in zip(*(jax.tree_util.tree_leaves(p) for p in (a, b, c))):
    np.testing.assert_array_equal(x, y)
    assert x.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(x)))
  assert any(not np.array_equal(x, z) for x, z in zip(jax.tree_util.tree_leaves(a),
                                                      jax.tree_util.tree_leaves(c)))
  lay = a["layers"]
  assert a["embed"].shape == (11, 4) and a["unembed"].shape == (4, 11)
  assert lay["in_proj"]["kernel"].shape == (3, 4, 12)
  assert lay["short_conv"]["kernel"].shape == (3, cfg.short_filter_order, 12)
  assert lay["filter"]["w_in"].shape == (3, 3, 5)
  assert lay["filter"]["w_hidden"].shape == (3, 2, 5, 5)
  assert lay["filter"]["w_out"].shape == (3, 5, 4)
  assert lay["mlp"]["fc1"]["kernel"].shape == (3, 4, 6)
  # Decay rates spread across channels from log(target)/slow_pct to log(target)/fast_pct.
  np.testing.assert_allclose(lay["filter"]["deltas"][1], np.linspace(
      math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, 4), rtol=1e-6)
  tied = jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), cfg.__class__(
      **{**cfg.to_dict(), "tie_embeddings": True})))
  assert "unembed" not in tied


# ----------------------------------------------------------------------------- forward


FORWARD_CONFIGS = [
    dict(),
    dict(tie_embeddings=False),
    dict(short_filter_order=1, n_layers=1),
    dict(short_filter_order=4, n_layers=3, d_model=6, d_inner=10, tie_embeddings=False),
    dict(emb_dim=3, filter_inner_mlps=0, modulation_shift=0.1, vocab_size=7),
]


@pytest.mark.parametrize("overrides", FORWARD_CONFIGS, ids=lambda o: ",".join(
    f"{k}={v}" for k, v in o.items()) or "default")
def test_forward_matches_numpy_direct_convolution(overrides, np_rng):
  params, cfg = make_model(seed=int(np_rng.integers(1 << 20)), l_max=128, **overrides)
  for B, L in ((2, 37), (1, 128), (3, 1)):
    tokens = np_rng.integers(0, cfg.vocab_size, (B, L))
    got = jit_forward(params, cfg, jnp.asarray(tokens))
    assert got.shape == (B, L, cfg.vocab_size) and got.dtype == jnp.float32
    want = np_forward(params, cfg, tokens)
    assert rel_err(got, want) < 2e-6, (B, L)
    assert max_position_rel_err(got, want) < 1e-5, (B, L)


def test_forward_with_precomputed_filters_equals_default(np_rng):
  params, cfg = make_model(seed=5, l_max=256)
  tokens = jnp.asarray(np_rng.integers(0, cfg.vocab_size, (2, 50)))
  h = materialise_filter(params["layers"]["filter"], cfg, 256)
  # Two programs (the filter made inside, or passed in): the same numbers up to rounding.
  got, want = forward(params, cfg, tokens, filters=h), forward(params, cfg, tokens)
  assert rel_err(got, want) < 2e-6 and max_position_rel_err(got, want) < 1e-5


def test_forward_uses_the_given_filters(np_rng):
  """The filters argument is what the long convolution uses (numpy with the same filters)."""
  params, cfg = make_model(seed=6, l_max=64)
  tokens = np_rng.integers(0, cfg.vocab_size, (2, 40))
  h = np_rng.normal(size=(cfg.n_layers, cfg.d_model, 64)) * np.exp(-np.arange(64) / 20)
  got = forward(params, cfg, jnp.asarray(tokens), filters=jnp.asarray(h, jnp.float32))
  want = np_forward(params, cfg, tokens, h=h.astype(np.float32).astype(np.float64))
  assert rel_err(got, want) < 2e-6


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_forward_left_padding_mask(tie, np_rng):
  """valid=False positions (left padding, random ids) do not change the other rows' logits:
  each row's valid logits equal the numpy logits of its unpadded sequence."""
  params, cfg = make_model(seed=7, l_max=64, tie_embeddings=tie)
  L = 45
  lengths = np.array([45, 30, 1, 12])
  tokens = np_rng.integers(0, cfg.vocab_size, (4, L))  # padding holds random ids too
  valid = np.arange(L)[None] >= (L - lengths)[:, None]
  got = np.asarray(jit_forward(params, cfg, jnp.asarray(tokens), valid=jnp.asarray(valid)))
  masked = np_forward(params, cfg, tokens, valid=valid)
  assert rel_err(got[valid], masked[valid]) < 2e-6
  for b, n in enumerate(lengths):
    alone = np_forward(params, cfg, tokens[b:b + 1, L - n:])[0]
    assert rel_err(got[b, L - n:], alone) < 2e-6, b


def test_forward_aux_holds_mixer_inputs_and_conv_tail(np_rng):
  params, cfg = make_model(seed=8, l_max=64, short_filter_order=3)
  for L in (1, 2, 20):
    tokens = jnp.asarray(np_rng.integers(0, cfg.vocab_size, (2, L)))
    logits, aux = jit_forward(params, cfg, tokens, return_aux=True)
    M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
    assert aux.mixer_inputs.shape == (M, 2, L, D)
    assert aux.conv_tail.shape == (M, 2, K - 1, 3 * D)
    # The first layer's inputs follow from the embedding alone.
    lp = jax.tree_util.tree_map(lambda a: f64(a[0]), params["layers"])
    x = f64(params["embed"])[np.asarray(tokens)]
    p = np_layer_norm(x, lp["norm1"], cfg.layer_norm_eps) @ lp["in_proj"]["kernel"]
    p = p + lp["in_proj"]["bias"]
    p_pad = np.concatenate([np.zeros((2, K - 1, 3 * D)), p], axis=1)
    np.testing.assert_allclose(f64(aux.conv_tail[0]), p_pad[:, -(K - 1):], atol=1e-5)
    c = sum(p_pad[:, k:k + L] * lp["short_conv"]["kernel"][k] for k in range(K))
    c = c + lp["short_conv"]["bias"]
    u = c[..., D:2 * D] * c[..., 2 * D:]
    np.testing.assert_allclose(f64(aux.mixer_inputs[0]), u, atol=1e-5)


def test_forward_positions_selects_logits(np_rng):
  params, cfg = make_model(seed=9, l_max=64)
  tokens = jnp.asarray(np_rng.integers(0, cfg.vocab_size, (2, 33)))
  full = jit_forward(params, cfg, tokens)
  pos = jnp.asarray([0, 5, 32])
  np.testing.assert_allclose(jit_forward(params, cfg, tokens, positions=pos), full[:, pos],
                             atol=1e-6)


def test_bfloat16_weights_stay_close_to_float32(np_rng):
  """dtype='bfloat16' casts the matmul weights only; logits stay within bfloat16 rounding."""
  params, cfg = make_model(seed=10, l_max=64)
  cfg16 = cfg.__class__(**{**cfg.to_dict(), "dtype": "bfloat16"})
  params16 = hyena.cast_params(params, cfg16)
  assert params16["layers"]["in_proj"]["kernel"].dtype == jnp.bfloat16
  assert params16["layers"]["filter"]["w_in"].dtype == jnp.float32
  tokens = jnp.asarray(np_rng.integers(0, cfg.vocab_size, (2, 40)))
  got, want = forward(params16, cfg16, tokens), forward(params, cfg, tokens)
  assert got.dtype == jnp.float32
  assert rel_err(got, want) < 3e-2


def test_token_step_matches_forward_step_by_step(np_rng):
  """The shared per-token path, fed the exact long-convolution accumulators, reproduces the
  parallel forward at every position (both the scanned and the unrolled layer loop)."""
  params, cfg = make_model(seed=11, l_max=32)
  B, L, M, D, K = 2, 12, cfg.n_layers, cfg.d_model, cfg.short_filter_order
  tokens = jnp.asarray(np_rng.integers(0, cfg.vocab_size, (B, L)))
  h = materialise_filter(params["layers"]["filter"], cfg, L)
  want, aux = jit_forward(params, cfg, tokens, filters=h, return_aux=True)
  u_all = np.asarray(aux.mixer_inputs)  # (M, B, L, D)
  consts = hyena.step_consts(params, h)
  for layer_list in (None, hyena.split_layers(params)):
    conv = jnp.zeros((M, B, K - 1, 3 * D))
    for t in range(L):
      acc = np.einsum("mdl,mbld->mbd", np.asarray(h)[:, :, t:0:-1], u_all[:, :, :t])
      logits, u, conv = jit_token_step(params, cfg, consts, tokens[:, t],
                                       jnp.asarray(acc, jnp.float32), conv, layer_list)
      np.testing.assert_allclose(u, u_all[:, :, t], rtol=1e-5, atol=1e-5)
      assert max_position_rel_err(logits, want[:, t]) < 1e-5, t
