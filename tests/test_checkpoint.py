"""Checkpoints: exact round trips, atomic writes, config / shape / dtype checks, decode states."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flash_lcsm_jax import Generator, HyenaConfig, Sampler, init_params
from flash_lcsm_jax.io import checkpoint

CFG = HyenaConfig(d_model=16, n_layers=2, d_inner=32, l_max=256, filter_order=8, emb_dim=3)


def _params(cfg=CFG, seed=0):
  return init_params(jax.random.PRNGKey(seed), cfg)


def _assert_trees_equal(a, b):
  la, ta = jax.tree.flatten(a)
  lb, tb = jax.tree.flatten(b)
  assert ta == tb
  for x, y in zip(la, lb):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_model_round_trip_is_exact(tmp_path):
  params = _params()
  path = str(tmp_path / "model.safetensors")
  checkpoint.save_model(path, params, CFG)
  loaded, cfg = checkpoint.load_model(path)
  assert cfg == CFG
  _assert_trees_equal(params, loaded)
  # A directory holding model.safetensors works too.
  loaded_dir, _ = checkpoint.load_model(str(tmp_path))
  _assert_trees_equal(params, loaded_dir)


def test_bfloat16_model_round_trip(tmp_path):
  cfg = dataclasses.replace(CFG, dtype="bfloat16")
  params = _params(cfg)
  path = str(tmp_path / "bf16.safetensors")
  checkpoint.save_model(path, params, cfg)
  loaded, got = checkpoint.load_model(path)
  assert got == cfg
  assert loaded["embed"].dtype == jnp.bfloat16
  _assert_trees_equal(params, loaded)


def test_tree_round_trip_with_optimizer_state(tmp_path):
  import optax
  params = _params()
  opt = optax.adamw(1e-3)
  state = opt.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  _, state = opt.update(grads, state, params)
  tree = {"params": params, "opt_state": state, "step": jnp.asarray(7, jnp.int32)}
  path = str(tmp_path / "t.safetensors")
  checkpoint.save_tree(path, tree, {"note": [1, 2]}, kind="train")
  template = jax.eval_shape(lambda: tree)
  got, info = checkpoint.load_tree(path, template, kind="train")
  _assert_trees_equal(tree, got)
  assert info["note"] == [1, 2] and info["kind"] == "train"


def test_config_mismatch_is_rejected(tmp_path):
  path = str(tmp_path / "model.safetensors")
  checkpoint.save_model(path, _params(), CFG)
  with pytest.raises(checkpoint.CheckpointError, match="d_model: checkpoint 16 != given 32"):
    checkpoint.load_model(path, dataclasses.replace(CFG, d_model=32))


def test_shape_and_dtype_checks(tmp_path):
  params = _params()
  arrays = checkpoint.flatten_tree(params)
  meta = {"format": checkpoint.FORMAT, "kind": "model", "config": json.dumps(CFG.to_dict())}
  path = str(tmp_path / "bad.safetensors")

  bad = dict(arrays, **{"layers/in_proj/bias": np.zeros((2, 5), np.float32)})
  checkpoint.write_safetensors(path, bad, meta)
  with pytest.raises(checkpoint.CheckpointError, match=r"layers/in_proj/bias has shape \(2, 5\)"):
    checkpoint.load_model(path)

  bad = dict(arrays, **{"embed": arrays["embed"].astype(np.float16)})
  checkpoint.write_safetensors(path, bad, meta)
  with pytest.raises(checkpoint.CheckpointError, match="embed has dtype float16"):
    checkpoint.load_model(path)

  bad = {k: v for k, v in arrays.items() if k != "final_norm/bias"}
  bad["extra"] = np.zeros(3, np.float32)
  checkpoint.write_safetensors(path, bad, meta)
  with pytest.raises(checkpoint.CheckpointError, match=r"missing \['final_norm/bias'\], "
                                                       r"unexpected \['extra'\]"):
    checkpoint.load_model(path)


def test_non_finite_weights_are_rejected(tmp_path):
  params = _params()
  params["embed"] = params["embed"].at[0, 0].set(jnp.nan)
  arrays = checkpoint.flatten_tree(params)
  meta = {"format": checkpoint.FORMAT, "kind": "model", "config": json.dumps(CFG.to_dict())}
  path = str(tmp_path / "nan.safetensors")
  checkpoint.write_safetensors(path, arrays, meta)
  with pytest.raises(ValueError, match="NaN or Inf"):
    checkpoint.load_model(path)


def test_corrupt_and_foreign_files(tmp_path):
  path = tmp_path / "junk.safetensors"
  path.write_bytes(b"\xff" * 20)
  with pytest.raises(checkpoint.CheckpointError, match="neither a safetensors nor a PyTorch"):
    checkpoint.load_model(str(path))
  path.write_bytes(b"\xff" * 8 + b"{" + b"\xff" * 20)
  with pytest.raises(checkpoint.CheckpointError, match="truncated or not a safetensors"):
    checkpoint.load_model(str(path))
  checkpoint.write_safetensors(str(path), {"x": np.zeros(2, np.float32)}, {})
  with pytest.raises(checkpoint.CheckpointError, match="not a flash_lcsm_jax/1 checkpoint, nor "
                                                       "an importable reference state dict"):
    checkpoint.load_model(str(path))
  with pytest.raises(checkpoint.CheckpointError, match="is a 'model' checkpoint, expected"):
    checkpoint.save_model(str(path), _params(), CFG)
    checkpoint.load_tree(str(path), {}, kind="train")
  with pytest.raises(FileNotFoundError):
    checkpoint.load_model(str(tmp_path / "absent.safetensors"))


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
  path = str(tmp_path / "model.safetensors")
  params = _params()
  checkpoint.save_model(path, params, CFG)
  before = open(path, "rb").read()

  def boom(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(os, "replace", boom)
  with pytest.raises(OSError, match="disk full"):
    checkpoint.save_model(path, _params(seed=1), CFG)
  assert open(path, "rb").read() == before
  assert os.listdir(tmp_path) == ["model.safetensors"]  # no temporary left behind


def test_latest_checkpoint(tmp_path):
  assert checkpoint.latest_checkpoint(str(tmp_path)) is None
  for step in (5, 120, 40):
    checkpoint.write_safetensors(checkpoint.checkpoint_path(str(tmp_path), step),
                                 {"x": np.zeros(1, np.float32)}, {})
  (tmp_path / ".tmp-1-abc-ckpt_00000999.safetensors").write_bytes(b"partial")
  assert checkpoint.latest_checkpoint(str(tmp_path)).endswith("ckpt_00000120.safetensors")


@pytest.mark.parametrize("method,old_layout", [("flash", False), ("lazy", False),
                                               ("eager", False), ("lazy", True)])
def test_decode_state_save_and_resume_gives_the_same_tokens(tmp_path, method, old_layout):
  params = _params()
  gen = Generator(params, CFG, block_size=8)
  sampler = Sampler(temperature=0.9, top_k=20)
  rng = jax.random.PRNGKey(3)
  prompt = np.array([[1, 2, 3, 4, 5], [9, 8, 7, 6, 5]], np.int32)
  num_tokens = 45
  tau = "hybrid"
  want = gen.generate(prompt, num_tokens, method=method, tau=tau, sampler=sampler, rng=rng)

  # The same generation by hand, stopped after 3 blocks and saved.
  P = prompt.shape[1]
  stop = P + num_tokens - 1
  plan, consts, state, logits = gen.start(method, tau, jnp.asarray(prompt), stop)
  first = sampler(logits[:, -1], jax.random.fold_in(rng, P - 1))
  state = state._replace(token=jnp.copy(first))
  head = dataclasses.replace(plan, blocks=plan.blocks[:3])
  state, toks, _ = gen.run(head, consts, state, rng, sampler)
  so_far = np.concatenate([np.asarray(first)[:, None], np.asarray(toks)], 1)
  path = str(tmp_path / "decode.safetensors")
  checkpoint.save_decode_state(path, state, cfg=CFG, plan=plan, tau=tau, block_size=8,
                               rng=rng, tokens=so_far)
  if old_layout:  # as saved before lazy / eager kept time major: (M, B, L, D), no layout key
    arrays, meta = checkpoint.read_safetensors(path)
    assert json.loads(meta.pop("buffer_layout")) == "MLBD"
    arrays["state/buffer"] = np.ascontiguousarray(np.swapaxes(arrays["state/buffer"], 1, 2))
    checkpoint.write_safetensors(path, arrays, meta)

  # A fresh generator (as in a new process) resumes from the file.
  ck = checkpoint.load_decode_state(path, CFG)
  assert int(ck.state.position) == plan.blocks[3].first
  np.testing.assert_array_equal(ck.tokens, so_far)
  gen2 = Generator(params, CFG, block_size=8)
  rest_plan, rest_consts = checkpoint.resume_plan(gen2, ck)
  _, rest, _ = gen2.run(rest_plan, rest_consts, ck.state, ck.rng, sampler)
  got = np.concatenate([ck.tokens, np.asarray(rest)], 1)
  np.testing.assert_array_equal(got, want.tokens)


def test_decode_state_checks(tmp_path):
  params = _params()
  gen = Generator(params, CFG, block_size=8)
  prompt = jnp.ones((1, 4), jnp.int32)
  plan, consts, state, _ = gen.start("flash", "hybrid", prompt, 40)
  path = str(tmp_path / "decode.safetensors")
  with pytest.raises(ValueError, match="not a block boundary"):
    checkpoint.save_decode_state(path, state._replace(position=jnp.asarray(6, jnp.int32)),
                                 cfg=CFG, plan=plan, tau="hybrid", block_size=8,
                                 rng=jax.random.PRNGKey(0))
  checkpoint.save_decode_state(path, state, cfg=CFG, plan=plan, tau="hybrid", block_size=8,
                               rng=jax.random.key(0))
  ck = checkpoint.load_decode_state(path)
  assert jnp.issubdtype(ck.rng.dtype, jax.dtypes.prng_key)
  with pytest.raises(checkpoint.CheckpointError, match="block_size=8"):
    checkpoint.resume_plan(Generator(params, CFG, block_size=16), ck)
  with pytest.raises(checkpoint.CheckpointError, match="n_layers"):
    checkpoint.load_decode_state(path, dataclasses.replace(CFG, n_layers=3))
  with pytest.raises(checkpoint.CheckpointError, match="is a 'decode' checkpoint"):
    checkpoint.load_tree(path, {}, kind="model")
