"""Lazy, eager and flash generation against the parallel forward, and against each other.

Teacher-forced logits (Generator.decode_logits) must match `forward` to a relative error of
1e-5 in float32 with HIGHEST matmul precision (DESIGN.md section 6). On CPU the cost is XLA
compilation, not running: models are tiny, one Generator per model and engine is reused (it
caches the filters and engine constants, and equal static arguments and shapes reuse compiled
blocks), and block sizes are chosen to keep the number and size of compiled blocks down. Later
tests reuse plans (prompt / length / batch) that the parity grid has already compiled.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_model, max_position_rel_err, rel_err
from flash_lcsm_jax import Generator, Sampler, forward, tau_names
from flash_lcsm_jax.engine import schedule
from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import tau as tau_ops

TOLERANCE = 1e-5  # relative error of all logits (the DESIGN.md contract)
POSITION_TOLERANCE = 5e-5  # relative error of the logits of any single position

jit_forward = jax.jit(forward, static_argnames=("cfg",))

# Short lengths on a wider model with untied embeddings and a 2-hidden-layer filter MLP; the
# long lengths on a narrow one (compile time, not run time, is what grows with the length).
MODELS = {
    "small": dict(seed=202, l_max=128, d_model=12, d_inner=20, vocab_size=48,
                  tie_embeddings=False, emb_dim=7, filter_inner_mlps=2),
    "long": dict(seed=201, l_max=4096),
}
# Steps per compiled block. Flash: small blocks compile fast (bs=1 runs every tile as its own
# executable, bs=8 also inlines tile levels 0-2 in an unrolled block). Lazy / eager compile one
# block per distinct history / future window, so few large blocks mean few compiles.
BLOCK_SIZES = {("small", "flash"): 1, ("long", "flash"): 8, ("small", "quadratic"): 16,
               ("long", "quadratic"): 256}
LENGTHS = (1, 2, 3, 64, 1000, 4096)
PROMPTS = (0, 1, 17, 777)


def model_for(L):
  return "small" if L <= MODELS["small"]["l_max"] else "long"


@functools.lru_cache(maxsize=None)
def generator(name: str, method: str = "flash") -> Generator:
  params, cfg = make_model(**MODELS[name])
  kind = "flash" if method == "flash" else "quadratic"
  gen = Generator(params, cfg, block_size=BLOCK_SIZES[name, kind])
  gen.filters(cfg.l_max)  # one filter length for every call: equal shapes, cached executables
  return gen


@functools.lru_cache(maxsize=None)
def reference(name: str, L: int, batch: int = 2):
  """Random tokens (B, L) and their parallel-forward logits."""
  gen = generator(name)
  rng = np.random.default_rng(L * 7 + batch)
  tokens = jnp.asarray(rng.integers(0, gen.cfg.vocab_size, (batch, L)), jnp.int32)
  return tokens, jit_forward(gen.params, gen.cfg, tokens, filters=gen.filters(gen.cfg.l_max))


def assert_parity(got, want, what: str):
  assert got.shape == want.shape, what
  assert got.dtype == jnp.float32, what
  err, worst = rel_err(got, want), max_position_rel_err(got, want)
  assert err <= TOLERANCE and worst <= POSITION_TOLERANCE, (
      f"{what}: relative error {err:.2e} (limit {TOLERANCE:.0e}), worst position {worst:.2e} "
      f"(limit {POSITION_TOLERANCE:.0e})")


def largest_level(num_generated: int) -> int:
  levels = [schedule.tile_level(i, num_generated) for i in range(1, num_generated + 1)]
  return max(levels, default=schedule.NO_TILE)


def grid(methods):
  out = []
  for L in LENGTHS:
    for P in PROMPTS:
      if P > L:
        continue
      for method in methods:
        if method == "flash":
          for tau in tau_names() + ["hybrid"]:
            out.append(pytest.param(L, P, method, tau, id=f"{method}-{tau}-L{L}-P{P}"))
        else:
          out.append(pytest.param(L, P, method, "hybrid", id=f"{method}-L{L}-P{P}"))
  return out


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("L,P,method,tau", grid(["flash"]))
def test_flash_decode_logits_match_forward(L, P, method, tau):
  needed = largest_level(L - P)
  if tau != "hybrid" and needed > tau_ops.get(tau).max_level:
    pytest.skip(f"tau {tau!r} only runs tile levels <= {tau_ops.get(tau).max_level} "
                f"(U <= {1 << tau_ops.get(tau).max_level}); L={L}, P={P} needs level {needed} "
                "(the refusal itself is pinned in test_validation)")
  name = model_for(L)
  tokens, want = reference(name, L)
  got = generator(name).decode_logits(tokens, P, method=method, tau=tau)
  assert_parity(got, want, f"flash tau={tau} L={L} P={P}")


# The baselines' parity: every prompt at the shortest lengths, two prompts (none / from the start,
# and a long one) at 64 and 1000, where each plan compiles its own blocks (seconds). Long
# generations are left to test_flash_greedy_equals_lazy_over_2048_steps (lazy against flash,
# which the grid above pins to the forward at every L).
QUADRATIC_PROMPTS = {64: (0, 17), 1000: (1, 777), 4096: ()}


def quadratic_grid():
  return [p for p in grid(["lazy", "eager"])
          if p.values[1] in QUADRATIC_PROMPTS.get(p.values[0], PROMPTS)]


@pytest.mark.parametrize("L,P,method,tau", quadratic_grid())
def test_lazy_and_eager_decode_logits_match_forward(L, P, method, tau):
  name = model_for(L)
  tokens, want = reference(name, L)
  got = generator(name, method).decode_logits(tokens, P, method=method)
  assert_parity(got, want, f"{method} L={L} P={P}")


@pytest.mark.parametrize("tau", ["fft", "hybrid"])
def test_flash_with_every_tile_layer_by_layer_matches_forward(monkeypatch, tau):
  """Large tiles run one layer at a time (tau.by_layer, 4 GiB of spectrum on a real model);
  with the threshold at one byte every tile of this generation does, and stays exact."""
  monkeypatch.setattr(tau_ops, "FFT_CHUNK_BYTES", 1)
  params, cfg = make_model(seed=206, l_max=128, d_model=10, n_layers=3, d_inner=12,
                           vocab_size=30)  # shapes no other test compiles (jit caches by shape)
  gen = Generator(params, cfg, block_size=8)
  tokens = jnp.asarray(np.random.default_rng().integers(0, cfg.vocab_size, (2, 100)), jnp.int32)
  want = jit_forward(params, cfg, tokens, filters=gen.filters(cfg.l_max))
  assert_parity(gen.decode_logits(tokens, 17, method="flash", tau=tau), want,
                f"flash tau={tau}, layer by layer")


def test_bfloat16_weights_engines_match_bfloat16_forward():
  """dtype='bfloat16' (matmul weights in bfloat16, float32 accumulation and mixer state): the
  engines reproduce the bfloat16 parallel forward, and stay near the float32 model."""
  import dataclasses
  from flash_lcsm_jax.models import hyena
  params, cfg = make_model(**MODELS["small"])
  cfg16 = dataclasses.replace(cfg, dtype="bfloat16")
  params16 = hyena.cast_params(params, cfg16)
  tokens, want32 = reference("small", 64)
  want16 = jit_forward(params16, cfg16, tokens)
  got = Generator(params16, cfg16, block_size=1).decode_logits(tokens, 17)
  assert rel_err(got, want16) <= 1e-4
  assert rel_err(got, want32) <= 3e-2


def test_decode_logits_positions_subset():
  tokens, want = reference("small", 64)
  positions = np.array([0, 5, 16, 17, 40, 63])
  for method in ("flash", "lazy"):  # plans the grid above has compiled
    got = generator("small", method).decode_logits(tokens, 17, method=method,
                                                   positions=positions)
    assert_parity(got, want[:, positions], f"{method} positions")


@pytest.mark.parametrize("method", ["flash", "lazy", "eager"])
def test_unrolled_layer_loop_matches_forward(method):
  """unroll_layers=True (the accelerator default) runs the same numerics."""
  params, cfg = make_model(**MODELS["small"])
  gen = Generator(params, cfg, block_size=4 if method == "flash" else 64, unroll_layers=True)
  tokens, want = reference("small", 64)
  tokens, want = tokens[:, :41], want[:, :41]
  assert_parity(gen.decode_logits(tokens, 7, method=method), want, f"unrolled {method}")


@pytest.mark.parametrize("method,path", [("flash", "fused"), ("lazy", "fused"),
                                         ("flash", "persistent")])
def test_fused_dense_path_matches_forward(method, path):
  """dense_path="fused" / "persistent" (ops/pallas_layer, interpret mode on CPU) runs the same
  numerics."""
  params, cfg = make_model(**MODELS["small"])
  gen = Generator(params, cfg, block_size=4 if method == "flash" else 64, dense_path=path)
  assert gen.dense_path_for(2) == path
  tokens, want = reference("small", 64)
  tokens, want = tokens[:, :23], want[:, :23]
  assert_parity(gen.decode_logits(tokens, 5, method=method), want, f"{path} {method}")
  assert gen.dense_weights(2).spec.config.persistent == (path == "persistent")


@pytest.mark.parametrize("method", ["lazy", "eager"])
def test_baseline_kernels_match_forward(method):
  """baseline_kernels="interpret" (ops/baseline_kernels, each filter tile loaded once for every
  batch row; interpret mode on CPU) runs the same numerics; windows the kernels do not tile
  (24, or a few positions) fall back to XLA inside the same generation."""
  params, cfg = make_model(seed=205, l_max=128, d_model=32, d_inner=32, vocab_size=40)
  rng = np.random.default_rng()
  tokens = jnp.asarray(rng.integers(0, cfg.vocab_size, (3, 100)), jnp.int32)
  gen = Generator(params, cfg, block_size=16, baseline_kernels="interpret")
  want = jit_forward(params, cfg, tokens, filters=gen.filters(cfg.l_max))
  assert_parity(gen.decode_logits(tokens, 1, method=method), want, f"{method}, kernels")
  with pytest.raises(ValueError, match="baseline_kernels"):
    Generator(params, cfg, baseline_kernels="triton")


@pytest.mark.parametrize("cores", [132, None, 1])
def test_dense_path_on_a_gpu(monkeypatch, cores):
  """On a GPU, B <= 2 runs the persistent kernel by default where the SMs fit its blocks (else
  the per-layer kernels), B > 2 XLA; the persistent blocks are sized to the SM count, and
  refused where so few SMs would need blocks of more than 16 rows."""
  from flash_lcsm_jax.engine import generation  # pylint: disable=g-import-not-at-top
  from flash_lcsm_jax.ops import pallas_layer  # pylint: disable=g-import-not-at-top
  params, cfg = make_model(**MODELS["small"])
  monkeypatch.setattr(generation.jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(pallas_layer.config, "gpu_core_count", lambda: cores)
  gen = Generator(params, cfg)
  small = "fused" if cores == 1 else "persistent"
  assert [gen.dense_path_for(b) for b in (1, 2, 3)] == [small, small, "xla"]
  # float32 B = 4 and 8 run the persistent kernel's tile order where it fits; other sizes XLA.
  batched = "xla" if cores == 1 else "persistent"
  assert [gen.dense_path_for(b) for b in (4, 5, 8, 16)] == [batched, "xla", batched, "xla"]
  cfg16 = dataclasses.replace(cfg, dtype="bfloat16")
  bf16 = Generator(hyena.cast_params(params, cfg16), cfg16)
  assert bf16.dense_path_for(4) == "xla" and bf16.dense_path_for(1) == small
  persistent = Generator(params, cfg, dense_path="persistent")
  assert persistent.dense_path_for(1) == "persistent"
  if cores != 1:  # the synchronisation each batch's persistent kernel runs (DATA_SYNC_BATCHES)
    assert pallas_layer.DATA_SYNC_BATCHES["float32"] == (2,)
    assert [gen.dense_sync_for(b) for b in (1, 2, 3, 4, 8)] == [
        "barrier", "data_l1", None, "barrier", "barrier"]
  assert Generator(params, cfg, dense_path="xla").dense_sync_for(2) is None
  if cores == 1:
    with pytest.raises(ValueError, match="needs blocks of <= 16 rows"):
      persistent.dense_weights(1)
    return
  spec = persistent.dense_weights(1).spec
  assert spec.config.persistent
  assert pallas_layer.persistent_grid(spec) <= (cores or 132) * spec.config.programs_per_sm
  # float32 B = 2 runs two programs per SM (PAIRED_BATCHES), B = 1 one: the prepared copy is
  # remade with the other blocks when the batch changes.
  assert pallas_layer.PAIRED_BATCHES["float32"] == (2,)
  for batch, per_sm in ((1, 1), (2, 2), (1, 1)):
    spec = persistent.dense_weights(batch).spec
    assert spec.config.programs_per_sm == per_sm
    assert pallas_layer.persistent_grid(spec) <= (cores or 132) * per_sm
    assert spec.config.mix.num_warps == 8 // per_sm


def test_dense_path_choice_and_errors():
  params, cfg = make_model(**MODELS["small"])
  with pytest.raises(ValueError, match="dense_path"):
    Generator(params, cfg, dense_path="triton")
  auto = Generator(params, cfg)
  gpu = jax.default_backend() in ("gpu", "cuda", "rocm")
  if gpu:
    from flash_lcsm_jax.ops import pallas_layer  # pylint: disable=g-import-not-at-top
    fits = pallas_layer.device_persistent_config(cfg.d_model, cfg.d_inner) is not None
    assert auto.dense_path_for(1) == ("persistent" if fits else "fused")
    assert auto.dense_path_for(8) == ("persistent" if fits else "xla")  # the tile order
  else:
    assert auto.dense_path_for(1) == "xla"
    assert auto.dense_path_for(8) == "xla"
  assert auto.dense_path_for(6) == "xla"  # XLA's GEMMs where the tile order does not apply
  assert Generator(params, cfg, dense_path="xla").dense_path_for(1) == "xla"


@pytest.mark.parametrize("overrides", [dict(short_filter_order=1, n_layers=1),
                                       dict(short_filter_order=4, n_layers=3)],
                         ids=["K1-M1", "K4-M3"])
def test_other_short_conv_widths_and_depths(overrides):
  params, cfg = make_model(seed=203, l_max=64, **overrides)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 37)))
  want = jit_forward(params, cfg, tokens)
  # The short-conv state lives in the per-token path every engine shares: one engine each.
  # With K = 4, P = 2 < K - 1 leaves a partly zero short-conv state after the prefill.
  method, block_size, P = ("flash", 4, 0) if cfg.short_filter_order == 1 else ("eager", 64, 2)
  gen = Generator(params, cfg, block_size=block_size)
  assert_parity(gen.decode_logits(tokens, P, method=method), want, f"{method} P={P}")


def test_hybrid_with_a_user_table():
  params, cfg = make_model(**MODELS["small"])
  table = {0: "fft", 1: "matmul", 2: "direct", 3: "fft", 4: "direct", 5: "matmul"}
  gen = Generator(params, cfg, block_size=1, hybrid_table=table)
  tokens, want = reference("small", 64)
  assert_parity(gen.decode_logits(tokens, 0, method="flash"), want, "hybrid user table")


def test_generator_reuse_across_lengths_gives_identical_logits():
  """A Generator caches filters / constants per plan: results do not depend on call order."""
  tokens, _ = reference("small", 3)
  # Both made alike (same block size: different block sizes are different executables, which
  # need not agree to the last bit), one of them used for another plan first.
  fresh = generator("small").decode_logits(tokens, 1)
  used = generator("small")
  used.decode_logits(reference("small", 64)[0], 17)  # another plan, longer filters first
  np.testing.assert_array_equal(np.asarray(used.decode_logits(tokens, 1)), np.asarray(fresh))


# ----------------------------------------------------------------------------- greedy, long


def margin_model():
  """Untied V=8 model whose greedy trajectory keeps clear top-1 margins (checked below) and
  still depends on the long convolution (zeroing its filters changes the tokens)."""
  params, cfg = make_model(seed=6, l_max=4096, vocab_size=8, tie_embeddings=False)
  params = dict(params, embed=params["embed"] * 0.5)
  return params, cfg


@functools.lru_cache(maxsize=None)
def margin_generator(method: str) -> Generator:
  params, cfg = margin_model()
  return Generator(params, cfg, block_size=4 if method == "flash" else 32)


def test_flash_greedy_equals_lazy_over_2048_steps():
  params, cfg = margin_model()
  prompt = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 16))
  n = 2048
  lazy = Generator(params, cfg, block_size=512).generate(prompt, n, method="lazy").tokens
  flash = Generator(params, cfg, block_size=8).generate(prompt, n, method="flash").tokens
  assert lazy.shape == flash.shape == (2, n)

  # The margin relied on: along the lazy trajectory, the top-1 logit of the parallel forward
  # beats the runner-up by more than twice the per-position error any engine is allowed, so
  # every engine within that bound picks the same token at every step.
  seq = jnp.asarray(np.concatenate([prompt, lazy[:, :-1]], 1))
  logits = np.asarray(jit_forward(params, cfg, seq), np.float64)[:, prompt.shape[1] - 1:]
  np.testing.assert_array_equal(np.argmax(logits, -1), lazy)  # lazy is greedy on the forward
  top2 = np.sort(logits, -1)[..., -2:]
  margin = (top2[..., 1] - top2[..., 0]) / np.linalg.norm(logits, axis=-1)
  assert margin.min() > 2 * POSITION_TOLERANCE, f"smallest relative margin {margin.min():.2e}"

  # The trajectory is not trivial: several tokens, and the long convolution matters.
  assert all(len(set(row)) >= 4 for row in lazy)
  flat = dict(params, layers=dict(params["layers"], filter=dict(
      params["layers"]["filter"], w_out=jnp.zeros_like(params["layers"]["filter"]["w_out"]))))
  no_conv = Generator(flat, cfg, block_size=512).generate(prompt, 64, method="lazy").tokens
  assert not np.array_equal(no_conv, lazy[:, :64])

  np.testing.assert_array_equal(flash, lazy)


# ----------------------------------------------------------------------------- ragged batches


RAGGED_LENGTHS = np.array([13, 6, 1])


def ragged_prompt(rng, vocab, lengths):
  P = int(lengths.max())
  prompt = rng.integers(0, vocab, (len(lengths), P))  # random ids in the padding, too
  return prompt, P


@pytest.mark.parametrize("method,tau", [("flash", "hybrid"), ("flash", "fft"), ("lazy", "hybrid"),
                                        ("eager", "hybrid")])
def test_ragged_batch_logits_equal_each_sequence_alone(method, tau):
  gen = generator("small", method)
  params, cfg = gen.params, gen.cfg
  rng = np.random.default_rng(11)
  prompt, P = ragged_prompt(rng, cfg.vocab_size, RAGGED_LENGTHS)
  L = P + 21
  tokens = np.concatenate([prompt, rng.integers(0, cfg.vocab_size, (3, L - P))], 1)
  got = np.asarray(gen.decode_logits(jnp.asarray(tokens), P, method=method, tau=tau,
                                     prompt_lengths=RAGGED_LENGTHS))
  assert got.shape == (3, L, cfg.vocab_size)
  for b, n in enumerate(RAGGED_LENGTHS):
    alone = jit_forward(params, cfg, jnp.asarray(tokens[b:b + 1, P - n:]))
    assert_parity(jnp.asarray(got[b:b + 1, P - n:]), alone, f"{method} row {b} (length {n})")


def test_ragged_batch_greedy_tokens_equal_each_sequence_alone():
  """Each row's tokens are the greedy continuation of that row alone: teacher-forcing them
  through the parallel forward of the unpadded row gives them back as argmax at every step
  (with margins no engine within the parity bound could flip). For flash the row is also
  generated alone and compared token for token."""
  params, cfg = margin_model()
  lengths = np.array([9, 1])
  prompt, P = ragged_prompt(np.random.default_rng(12), cfg.vocab_size, lengths)
  n = 20
  for method in ("flash", "lazy", "eager"):
    gen = margin_generator(method)
    ragged = gen.generate(prompt, n, method=method, prompt_lengths=lengths).tokens
    assert ragged.shape == (2, n)
    for b, length in enumerate(lengths):
      row = prompt[b:b + 1, P - length:]
      seq = jnp.asarray(np.concatenate([row, ragged[b:b + 1, :-1]], 1))
      logits = np.asarray(jit_forward(params, cfg, seq), np.float64)[0, length - 1:]
      np.testing.assert_array_equal(ragged[b], np.argmax(logits, -1), err_msg=f"{method} {b}")
      top2 = np.sort(logits, -1)[..., -2:]
      margin = (top2[:, 1] - top2[:, 0]) / np.linalg.norm(logits, axis=-1)
      assert margin.min() > 2 * POSITION_TOLERANCE, (method, b, margin.min())
      if method == "flash":
        alone = gen.generate(row, n, method=method).tokens
        np.testing.assert_array_equal(ragged[b], alone[0], err_msg=f"{method} row {b}")


# ----------------------------------------------------------------------------- generate


def test_generate_first_tokens_follow_forward_argmax():
  """Greedy generate: token k is the argmax of the forward logits of prompt + tokens[:k]."""
  params, cfg = margin_model()
  prompt = np.random.default_rng(13).integers(0, cfg.vocab_size, (2, 9))
  for method in ("flash", "eager"):  # the plans of the ragged test above (same shapes)
    out = margin_generator(method).generate(prompt, 20, method=method)
    assert out.tokens.shape == (2, 20) and out.tokens.dtype.kind == "i"
    assert out.steps == 19
    seq = jnp.asarray(np.concatenate([prompt, out.tokens[:, :-1]], 1))
    logits = jit_forward(params, cfg, seq)[:, 8:]
    np.testing.assert_array_equal(np.argmax(logits, -1), out.tokens, err_msg=method)
    assert int(out.state.position) == 9 + 19


def test_generate_num_tokens_one_and_callback():
  gen = margin_generator("flash")
  prompt = np.random.default_rng(14).integers(0, gen.cfg.vocab_size, (1, 1))
  one = gen.generate(prompt, 1)
  assert one.tokens.shape == (1, 1) and one.steps == 0
  seen = []
  out = gen.generate(prompt, 20, callback=lambda pos, toks: seen.append((pos, np.asarray(toks))))
  positions = [p for p, _ in seen]
  assert positions[0] == 1 and positions == sorted(positions) and positions[-1] == 1 + 19
  np.testing.assert_array_equal(np.concatenate([t for _, t in seen], 1), out.tokens)
  assert out.tokens[0, 0] == one.tokens[0, 0]


def stop_token_runs():
  gen = margin_generator("flash")
  prompt = np.random.default_rng(14).integers(0, gen.cfg.vocab_size, (1, 1))
  full = gen.generate(prompt, 20)
  stop = int(full.tokens[0, 1])
  return full, gen.generate(prompt, 20, stop_token=stop), stop


def test_stop_token_stops_after_the_block_and_pads():
  full, out, stop = stop_token_runs()
  assert out.tokens.shape == (1, 20)
  fed = int(out.state.position) - 1  # positions fed step by step before stopping
  assert fed < 19, "did not stop early"
  produced = fed + 1  # the prefill's token, then one per fed position
  np.testing.assert_array_equal(out.tokens[0, :produced], full.tokens[0, :produced])
  assert stop in out.tokens[0, :produced]
  assert np.all(out.tokens[0, produced:] == stop)


def test_fixed_generate_steps_wrong_after_early_stop():
  """Regression (fixed; was: generation.Generator.generate): GenerateResult.steps is documented as the positions
  fed step by step but is always stop - P, also when stop_token ended the generation early
  (here 19 reported, 4 fed)."""
  _, out, _ = stop_token_runs()
  assert out.steps == int(out.state.position) - 1


def test_decode_logits_is_deterministic():
  tokens, _ = reference("small", 64)
  for method in ("flash", "lazy", "eager"):  # plans the grid above has compiled
    a = np.asarray(generator("small", method).decode_logits(tokens, 17, method=method))
    b = np.asarray(generator("small", method).decode_logits(tokens, 17, method=method))
    np.testing.assert_array_equal(a, b, err_msg=method)


def test_generate_same_key_same_tokens_other_key_other_tokens():
  prompt = np.random.default_rng(15).integers(0, MODELS["small"]["vocab_size"], (2, 5))
  sampler = Sampler(temperature=1.0, top_k=20)
  for method in ("flash", "eager"):
    gen = generator("small", method)
    a = gen.generate(prompt, 30, method=method, sampler=sampler, rng=jax.random.PRNGKey(1))
    b = gen.generate(prompt, 30, method=method, sampler=sampler, rng=jax.random.PRNGKey(1))
    c = gen.generate(prompt, 30, method=method, sampler=sampler, rng=jax.random.PRNGKey(2))
    np.testing.assert_array_equal(a.tokens, b.tokens, err_msg=method)
    assert not np.array_equal(a.tokens, c.tokens), method
