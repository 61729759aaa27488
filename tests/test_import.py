"""Import of reference (safari / HyenaDNA) state dicts: mapping, forward parity, rejections."""

import argparse
import dataclasses
import math
import sys

import jax
import numpy as np
import pytest

from flash_lcsm_jax import HyenaConfig, forward, init_params
from flash_lcsm_jax.io import checkpoint
from flash_lcsm_jax.io import torch_import as ti

CFG = HyenaConfig(vocab_size=40, d_model=8, n_layers=2, d_inner=12, l_max=32, filter_order=6,
                  emb_dim=5, filter_inner_mlps=2, short_filter_order=3)


# ----------------------------------------------------------------------------- a hand-built model


def _reference_positional(l_max, emb_dim):
  """The reference PositionalEmbedding, transcribed: z (1, L, E) and t (1, L, 1)."""
  t = np.linspace(0, 1, l_max)[None, :, None]
  bands = (emb_dim - 1) // 2
  w = 2 * math.pi * np.linspace(0, l_max - 1, l_max)[None, :, None] / l_max
  f = np.linspace(1e-4, bands - 1, bands)[None, None]
  z = np.exp(-1j * f * w)
  return np.concatenate([t, z.real, z.imag], -1).astype(np.float32), t.astype(np.float32)


def _hand_state_dict(cfg, seed=0, tied=True):
  """Random weights under the reference names, in the reference's (PyTorch) shapes."""
  rng = np.random.default_rng(seed)
  D, I, K, E, F, H, V = (cfg.d_model, cfg.d_inner, cfg.short_filter_order, cfg.emb_dim,
                         cfg.filter_order, cfg.filter_inner_mlps, cfg.vocab_size)
  r = lambda *shape, scale=0.5: (scale * rng.standard_normal(shape)).astype(np.float32)
  z, t = _reference_positional(cfg.l_max, E)
  sd = {ti.EMBED: r(V, D), "backbone.ln_f.weight": 1 + r(D, scale=0.1),
        "backbone.ln_f.bias": r(D, scale=0.1)}
  for i in range(cfg.n_layers):
    p = f"backbone.layers.{i}."
    f = p + "mixer.filter_fn.implicit_filter."
    sd.update({
        p + "norm1.weight": 1 + r(D, scale=0.1), p + "norm1.bias": r(D, scale=0.1),
        p + "mixer.in_proj.weight": r(3 * D, D), p + "mixer.in_proj.bias": r(3 * D),
        p + "mixer.short_filter.weight": r(3 * D, 1, K), p + "mixer.short_filter.bias": r(3 * D),
        p + "mixer.filter_fn.bias": r(D),
        p + "mixer.filter_fn.pos_emb.z": z, p + "mixer.filter_fn.pos_emb.t": t,
        p + "mixer.filter_fn.modulation.deltas": -np.abs(r(1, 1, D, scale=3.0)),
        f + "0.weight": r(F, E), f + "0.bias": r(F), f + "1.freq": 1 + r(1, F, scale=0.2),
        f"{f}{2 * H + 2}.weight": r(D, F),
        p + "mixer.out_proj.weight": r(D, D), p + "mixer.out_proj.bias": r(D),
        p + "norm2.weight": 1 + r(D, scale=0.1), p + "norm2.bias": r(D, scale=0.1),
        p + "mlp.fc1.weight": r(I, D), p + "mlp.fc1.bias": r(I),
        p + "mlp.fc2.weight": r(D, I), p + "mlp.fc2.bias": r(D),
    })
    for j in range(H):
      sd.update({f"{f}{2 + 2 * j}.weight": r(F, F), f"{f}{2 + 2 * j}.bias": r(F),
                 f"{f}{3 + 2 * j}.freq": 1 + r(1, F, scale=0.2)})
  sd[ti.LM_HEAD] = sd[ti.EMBED].copy() if tied else r(V, D)
  return sd


def _hand_forward(sd, cfg, tokens, shift):
  """The reference forward written out in float64 numpy from the reference's definitions."""
  def ln(x, w, b):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + cfg.layer_norm_eps) * w + b

  def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

  g = lambda k: sd[k].astype(np.float64)
  B, L = tokens.shape
  D, K, H = cfg.d_model, cfg.short_filter_order, cfg.filter_inner_mlps
  x = g(ti.EMBED)[tokens]
  for i in range(cfg.n_layers):
    p = f"backbone.layers.{i}."
    f = p + "mixer.filter_fn.implicit_filter."
    hidden = ln(x, g(p + "norm1.weight"), g(p + "norm1.bias"))
    proj = hidden @ g(p + "mixer.in_proj.weight").T + g(p + "mixer.in_proj.bias")
    # nn.Conv1d(groups=3D, padding=K-1), output truncated to L: a cross-correlation.
    w = g(p + "mixer.short_filter.weight")[:, 0, :]
    padded = np.pad(proj, ((0, 0), (K - 1, K - 1), (0, 0)))
    conv = np.stack([sum(padded[:, t + k] * w[:, k] for k in range(K)) for t in range(L)], 1)
    conv = conv + g(p + "mixer.short_filter.bias")
    x0, x1, v = conv[..., :D], conv[..., D:2 * D], conv[..., 2 * D:]
    z, tt = g(p + "mixer.filter_fn.pos_emb.z")[0, :L], g(p + "mixer.filter_fn.pos_emb.t")[0, :L]
    a = np.sin(g(f + "1.freq") * (z @ g(f + "0.weight").T + g(f + "0.bias")))
    for j in range(H):
      a = np.sin(g(f"{f}{3 + 2 * j}.freq") * (a @ g(f"{f}{2 + 2 * j}.weight").T
                                             + g(f"{f}{2 + 2 * j}.bias")))
    h = a @ g(f"{f}{2 * H + 2}.weight").T  # (L, D)
    h = h * (np.exp(-tt * np.abs(g(p + "mixer.filter_fn.modulation.deltas")[0])) + shift)
    u = v * x1
    y = np.stack([sum(h[t - s] * u[:, s] for s in range(t + 1)) for t in range(L)], 1)
    y = y + u * g(p + "mixer.filter_fn.bias")
    x = x + (y * x0) @ g(p + "mixer.out_proj.weight").T + g(p + "mixer.out_proj.bias")
    m = ln(x, g(p + "norm2.weight"), g(p + "norm2.bias"))
    m = gelu_tanh(m @ g(p + "mlp.fc1.weight").T + g(p + "mlp.fc1.bias"))
    x = x + m @ g(p + "mlp.fc2.weight").T + g(p + "mlp.fc2.bias")
  x = ln(x, g("backbone.ln_f.weight"), g("backbone.ln_f.bias"))
  return x @ g(ti.LM_HEAD).T


# ----------------------------------------------------------------------------- mapping


@pytest.mark.parametrize("tied", [True, False])
def test_forward_matches_hand_built_reference(tied):
  sd = _hand_state_dict(CFG, tied=tied)
  params, cfg = ti.import_state_dict(sd, modulation_shift=0.05)
  assert cfg == dataclasses.replace(CFG, modulation_shift=0.05, tie_embeddings=tied)
  tokens = np.random.default_rng(1).integers(0, CFG.vocab_size, (2, 19)).astype(np.int32)
  want = _hand_forward(sd, cfg, tokens, shift=0.05)
  with jax.default_matmul_precision("highest"):
    got = np.asarray(forward(params, cfg, tokens), np.float64)
  err = np.linalg.norm(got - want) / np.linalg.norm(want)
  assert err < 1e-5, err


def test_individual_entries_map_as_documented():
  sd = _hand_state_dict(CFG)
  params, _ = ti.import_state_dict(sd)
  lay, p = params["layers"], "backbone.layers.1."
  f = p + "mixer.filter_fn.implicit_filter."
  np.testing.assert_array_equal(lay["in_proj"]["kernel"][1], sd[p + "mixer.in_proj.weight"].T)
  for k in range(CFG.short_filter_order):  # kernel[k] multiplies the input at t-(K-1)+k
    np.testing.assert_array_equal(lay["short_conv"]["kernel"][1, k],
                                  sd[p + "mixer.short_filter.weight"][:, 0, k])
  np.testing.assert_array_equal(lay["filter"]["w_in"][1], sd[f + "0.weight"].T)
  np.testing.assert_array_equal(lay["filter"]["freq_in"][1], sd[f + "1.freq"][0])
  np.testing.assert_array_equal(lay["filter"]["w_hidden"][1, 1], sd[f + "4.weight"].T)
  np.testing.assert_array_equal(lay["filter"]["freq_hidden"][1, 1], sd[f + "5.freq"][0])
  np.testing.assert_array_equal(lay["filter"]["w_out"][1], sd[f + "6.weight"].T)
  np.testing.assert_array_equal(lay["filter"]["deltas"][1],
                                sd[p + "mixer.filter_fn.modulation.deltas"].reshape(-1))
  np.testing.assert_array_equal(lay["mlp"]["fc2"]["kernel"][1], sd[p + "mlp.fc2.weight"].T)
  np.testing.assert_array_equal(params["final_norm"]["scale"], sd["backbone.ln_f.weight"])


@pytest.mark.parametrize("tied", [True, False])
def test_export_import_round_trip_is_exact(tied):
  cfg = dataclasses.replace(CFG, tie_embeddings=tied)
  params = init_params(jax.random.PRNGKey(0), cfg)
  sd = ti.export_state_dict(params, cfg)
  assert set(sd) == set(ti.expected_shapes(cfg)) | {ti.LM_HEAD}
  back, got_cfg = ti.import_state_dict(sd, cfg)
  assert got_cfg == cfg
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(back)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_safetensors_file_with_prefix_and_deduplicated_shared_tensors(tmp_path):
  sd = _hand_state_dict(CFG)
  want, _ = ti.import_state_dict(sd)
  # As written by safetensors.torch.save_model from a wrapper module: tensors sharing storage
  # (tied lm_head, the one Sin frequency per filter) are stored once, aliased in the metadata.
  stored = {"model." + k: v for k, v in sd.items()}
  aliases = {"model." + ti.LM_HEAD: "model." + ti.EMBED}
  for i in range(CFG.n_layers):
    f = f"model.backbone.layers.{i}.mixer.filter_fn.implicit_filter."
    for j in (3, 5):
      stored[f + f"{j}.freq"] = stored[f + "1.freq"] = sd[f[6:] + "1.freq"]
      aliases[f + f"{j}.freq"] = f + "1.freq"
  for name in aliases:
    del stored[name]
  path = str(tmp_path / "ref.safetensors")
  checkpoint.write_safetensors(path, stored, aliases)
  got, cfg = ti.load_reference(path)
  assert cfg.tie_embeddings
  via_load_model, _ = checkpoint.load_model(path)  # what run.py's --config.checkpoint uses
  np.testing.assert_array_equal(via_load_model["embed"], got["embed"])
  np.testing.assert_array_equal(got["layers"]["filter"]["freq_hidden"][0, 1],
                                sd["backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq"][0])
  np.testing.assert_array_equal(got["embed"], want["embed"])


def test_pytorch_file_is_read_without_executing_code(tmp_path):
  torch = pytest.importorskip("torch")
  sd = _hand_state_dict(CFG)
  path = str(tmp_path / "ref.pt")
  torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in sd.items()}}, path)
  params, cfg = ti.load_reference(path)
  want, _ = ti.import_state_dict(sd)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  # Any pickled object other than tensors and plain containers is refused, never constructed.
  torch.save({"state_dict": {}, "hparams": argparse.Namespace(lr=1)}, str(tmp_path / "evil.pt"))
  with pytest.raises(ti.StateDictError, match="weights_only=True"):
    ti.load_reference(str(tmp_path / "evil.pt"))


def test_pytorch_file_without_torch_gives_a_clear_error(tmp_path, monkeypatch):
  path = tmp_path / "ref.bin"
  path.write_bytes(b"PK\x03\x04 not a real zip")
  monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
  with pytest.raises(ImportError, match=r"needs torch .*safetensors"):
    ti.load_reference(str(path))


# ----------------------------------------------------------------------------- rejections


def test_missing_unexpected_and_misshapen_keys_are_all_reported():
  sd = _hand_state_dict(CFG)
  del sd["backbone.layers.1.mlp.fc1.bias"]
  sd["backbone.layers.0.mixer.ord_proj_w"] = np.zeros((2, 1, 1), np.float32)
  sd["backbone.layers.1.norm2.weight"] = np.ones((9,), np.float32)
  with pytest.raises(ti.StateDictError) as err:
    ti.import_state_dict(sd)
  msg = str(err.value)
  assert "missing keys ['backbone.layers.1.mlp.fc1.bias']" in msg
  assert "unexpected keys ['backbone.layers.0.mixer.ord_proj_w']" in msg
  assert "backbone.layers.1.norm2.weight: (9,) (expected (8,))" in msg


def test_missing_layer_is_reported():
  sd = {k: v for k, v in _hand_state_dict(dataclasses.replace(CFG, n_layers=3)).items()
        if not k.startswith("backbone.layers.1.")}
  with pytest.raises(ti.StateDictError, match=r"missing keys \['backbone.layers.1."):
    ti.import_state_dict(sd)


def test_config_that_does_not_match_is_rejected():
  sd = _hand_state_dict(CFG)
  with pytest.raises(ti.StateDictError, match="d_inner: state dict implies 12, config says 16"):
    ti.import_state_dict(sd, dataclasses.replace(CFG, d_inner=16))
  with pytest.raises(ti.StateDictError, match="l_max: state dict implies 32, config says 64"):
    ti.import_state_dict(sd, l_max=64)
  params, cfg = ti.import_state_dict(sd, CFG)  # the matching config is accepted
  assert cfg == CFG


def test_unsupported_variants_are_rejected():
  sd = _hand_state_dict(CFG)
  sd["backbone.layers.0.mixer.in_proj.weight"] = np.zeros((4 * CFG.d_model, CFG.d_model),
                                                          np.float32)
  with pytest.raises(ti.StateDictError, match="only order-2 Hyena"):
    ti.import_state_dict(sd)
  sd = _hand_state_dict(CFG)
  sd["backbone.embeddings.position_embeddings.weight"] = np.zeros((32, 8), np.float32)
  with pytest.raises(ti.StateDictError, match="unexpected keys.*position_embeddings"):
    ti.import_state_dict(sd)
  with pytest.raises(ti.StateDictError, match="cannot infer"):
    ti.import_state_dict({k: v for k, v in _hand_state_dict(CFG).items()
                          if k == "backbone.ln_f.weight"})


def test_positional_features_that_differ_are_rejected():
  sd = _hand_state_dict(CFG)
  sd["backbone.layers.1.mixer.filter_fn.pos_emb.z"] = sd[
      "backbone.layers.1.mixer.filter_fn.pos_emb.z"] + 0.01
  with pytest.raises(ti.StateDictError, match=r"pos_emb.z differs .* by up to 0.01"):
    ti.import_state_dict(sd)
  params, _ = ti.import_state_dict(sd, pos_emb_atol=0.02)  # explicitly accepted
  assert params["embed"].shape == (CFG.vocab_size, CFG.d_model)


def test_non_finite_weights_are_rejected():
  sd = _hand_state_dict(CFG)
  sd["backbone.layers.0.mlp.fc1.weight"][0, 0] = np.inf
  with pytest.raises(ValueError, match="NaN or Inf"):
    ti.import_state_dict(sd)
