"""Bad input fails early with a message that names the argument and the allowed range
(DESIGN.md section 7).

Tests named test_fixed_* pin validation gaps found while writing this suite, since fixed.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_model
from flash_lcsm_jax import (Generator, HyenaConfig, Sampler, decode_logits, generate,
                            init_params)
from flash_lcsm_jax import validation
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.ops import tau as tau_ops

VOCAB, L_MAX = 32, 256


@pytest.fixture(scope="module")
def model():
  return make_model(seed=301, l_max=L_MAX)


@pytest.fixture(scope="module")
def gen(model):
  params, cfg = model
  return Generator(params, cfg, block_size=4)


def prompt(batch=2, length=5, seed=0):
  return np.random.default_rng(seed).integers(0, VOCAB, (batch, length)).astype(np.int32)


# ----------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("bad", [VOCAB, VOCAB + 100, -1])
def test_token_ids_outside_vocab(gen, bad):
  p = prompt()
  p[1, 2] = bad
  with pytest.raises(ValueError, match=rf"prompt: token ids must be in \[0, {VOCAB - 1}\]"):
    gen.generate(p, 3)
  with pytest.raises(ValueError, match=rf"tokens: token ids must be in \[0, {VOCAB - 1}\]"):
    gen.decode_logits(p, 2)


@pytest.mark.parametrize("bad", [2**32 + 5, 2**40])
def test_fixed_int64_token_ids_beyond_int32_are_not_refused(gen, bad):
  """Regression (fixed; was: validation.check_tokens): the range check runs jnp.min / jnp.max on the int64
  array, which JAX (x64 off) truncates to int32 first, so 2**32 + 5 passes as 5 and 2**40 as 0
  and the prompt is silently changed. Check the range with numpy before converting."""
  p = prompt().astype(np.int64)
  p[0, 0] = bad
  with pytest.raises(ValueError, match=r"token ids must be in \[0, 31\]"):
    gen.generate(p, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool])
def test_token_dtype_must_be_integer(gen, dtype):
  with pytest.raises(TypeError, match="prompt must hold integer token ids"):
    gen.generate(prompt().astype(dtype), 2)
  with pytest.raises(TypeError, match="tokens must hold integer token ids"):
    gen.decode_logits(jnp.asarray(prompt(), jnp.float32), 1)


def test_token_shape(gen):
  with pytest.raises(ValueError, match=r"prompt must be a \(batch, length\) array, got shape "
                     r"\(5,\)"):
    gen.generate(prompt()[0], 2)
  with pytest.raises(ValueError, match=r"tokens must be a \(batch, length\) array"):
    gen.decode_logits(prompt()[None], 1)
  with pytest.raises(ValueError, match="batch size >= 1"):
    gen.generate(np.zeros((0, 4), np.int32), 2)


def test_empty_prompt(gen):
  with pytest.raises(ValueError, match="prompt must hold at least one token per row"):
    gen.generate(np.zeros((2, 0), np.int32), 3)


def test_fixed_empty_tokens_in_decode_logits_get_no_clear_error(model):
  """Regression (fixed; was: generation.Generator.decode_logits): an empty (B, 0) token array is not refused up
  front; it fails deep inside with 'filter length must be in [1, l_max=...]' or, once the
  Generator has cached filters, 'Need at least one array to concatenate.'"""
  params, cfg = model
  fresh = Generator(params, cfg, block_size=4)
  fresh.filters(8)
  with pytest.raises(ValueError, match="tokens"):
    fresh.decode_logits(np.zeros((1, 0), np.int32))


# ----------------------------------------------------------------------------- lengths


def test_prompt_longer_than_l_max(gen):
  with pytest.raises(ValueError, match=rf"exceeds the model's l_max={L_MAX}"):
    gen.generate(np.zeros((1, L_MAX + 1), np.int32), 1)


def test_generation_beyond_l_max(gen):
  with pytest.raises(ValueError, match=rf"prompt length 10 \+ num_tokens {L_MAX - 8} - 1 = "
                     rf"{L_MAX + 1} exceeds the model's l_max={L_MAX}"):
    gen.generate(prompt(1, 10), L_MAX - 8)
  with pytest.raises(ValueError, match=rf"exceeds the model's l_max={L_MAX}"):
    gen.decode_logits(np.zeros((1, L_MAX + 1), np.int32), 3)


def test_generation_up_to_exactly_l_max_is_allowed(model):
  """P + num_tokens - 1 == l_max positions are fed: the longest allowed generation runs."""
  params, cfg = make_model(seed=302, l_max=24)
  out = Generator(params, cfg, block_size=4).generate(prompt(1, 5), 20)
  assert out.tokens.shape == (1, 20)
  with pytest.raises(ValueError, match="l_max=24"):
    Generator(params, cfg, block_size=4).generate(prompt(1, 5), 21)


@pytest.mark.parametrize("bad", [0, -3, 2.0, "4", None])
def test_num_tokens(gen, bad):
  with pytest.raises(ValueError, match="num_tokens must be an int >= 1"):
    gen.generate(prompt(), bad)


def test_fixed_numpy_int_num_tokens_crashes(gen):
  """Regression (fixed; was: validation.check_prompt accepts numpy integers for num_tokens, but
  Generator.generate then computes stop = P + num_tokens - 1 as np.int64 and
  fftconv.fft_size calls (n - 1).bit_length() on it: AttributeError ('numpy.int64' object has
  no attribute 'bit_length'). Either convert with int() after validation or refuse them."""
  out = gen.generate(prompt(1, 3), np.int64(2))
  assert out.tokens.shape == (1, 2)


@pytest.mark.parametrize("bad", [-1, 6])
def test_decode_prompt_len_range(gen, bad):
  with pytest.raises(ValueError, match=r"prompt_len must be in \[0, 5\]"):
    gen.decode_logits(prompt(), bad)


# ----------------------------------------------------------------------------- names


def test_unknown_method(gen):
  with pytest.raises(ValueError, match=r"unknown method 'fast'; choose from \['flash', 'lazy', "
                     r"'eager'\]"):
    gen.generate(prompt(), 2, method="fast")
  with pytest.raises(ValueError, match="unknown method 'Flash'"):
    gen.decode_logits(prompt(), 2, method="Flash")


def test_unknown_tau(gen):
  with pytest.raises(ValueError, match=r"unknown tau 'fftw'; choose from \[.*'fft'.*'hybrid'\]"):
    gen.generate(prompt(), 2, tau="fftw")
  with pytest.raises(ValueError, match="unknown tau 'best'"):
    gen.decode_logits(prompt(), 2, tau="best")


def test_unknown_name_in_hybrid_table(model):
  params, cfg = model
  bad = Generator(params, cfg, block_size=4, hybrid_table={0: "fast"})
  with pytest.raises(ValueError, match="unknown tau 'fast'"):
    bad.generate(prompt(), 4)


def test_tau_that_cannot_run_the_needed_tile_level(gen):
  # 200 new tokens need a 128-wide tile (level 7); 'direct' stops at level 6.
  with pytest.raises(ValueError, match=r"tau 'direct' supports tile levels <= 6 .* needs level 7"):
    gen.generate(prompt(1, 5), 200, tau="direct")


def test_unknown_sampler_name():
  from flash_lcsm_jax.engine import sampling
  with pytest.raises(ValueError, match="unknown sampler 'nucleus'"):
    sampling.from_name("nucleus")


def test_non_greedy_sampler_needs_rng(gen):
  with pytest.raises(ValueError, match="rng: a jax.random key is required for a non-greedy"):
    gen.generate(prompt(), 3, sampler=Sampler(temperature=0.8))


def test_bad_block_size(model):
  params, cfg = model
  for bad in (0, 3, 12):
    with pytest.raises(ValueError, match=f"block_size must be a power of two >= 1, got {bad}"):
      Generator(params, cfg, block_size=bad).generate(prompt(), 3)


# ----------------------------------------------------------------------------- ragged


def test_prompt_lengths_shape(gen):
  with pytest.raises(ValueError, match=r"prompt_lengths must have shape \(batch,\) = \(2,\), "
                     r"got \(3,\)"):
    gen.generate(prompt(), 2, prompt_lengths=[5, 4, 3])
  with pytest.raises(ValueError, match=r"prompt_lengths must have shape \(batch,\) = \(2,\)"):
    gen.generate(prompt(), 2, prompt_lengths=np.array([[5], [4]]))
  with pytest.raises(ValueError, match=r"prompt_lengths must have shape"):
    gen.decode_logits(prompt(2, 8), 5, prompt_lengths=[5])


@pytest.mark.parametrize("lengths", [[0, 5], [5, 6], [-1, 2]])
def test_prompt_lengths_range(gen, lengths):
  with pytest.raises(ValueError, match=r"prompt_lengths must be in \[1, 5\]"):
    gen.generate(prompt(), 2, prompt_lengths=lengths)
  with pytest.raises(ValueError, match=r"prompt_lengths must be in \[1, 5\]"):
    gen.decode_logits(prompt(2, 9), 5, prompt_lengths=lengths)


def test_prompt_lengths_dtype(gen):
  with pytest.raises(TypeError, match="prompt_lengths must be integers"):
    gen.generate(prompt(), 2, prompt_lengths=np.array([5.0, 3.0]))


# ----------------------------------------------------------------------------- params


def poisoned(params, path, value):
  leaf = params
  for k in path:
    leaf = leaf[k]
  bad = np.array(leaf)
  bad.reshape(-1)[bad.size // 2] = value
  out = jax.tree_util.tree_map(lambda x: x, params)  # copy the containers
  node = out
  for k in path[:-1]:
    node[k] = dict(node[k])
    node = node[k]
  node[path[-1]] = jnp.asarray(bad)
  return out


@pytest.mark.parametrize("path", [("embed",), ("layers", "mlp", "fc1", "kernel"),
                                  ("layers", "filter", "freq_in"), ("final_norm", "scale")])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_weights(model, path, value):
  params, cfg = model
  bad = poisoned(params, path, value)
  name = "/".join(path)
  with pytest.raises(ValueError, match=rf"params\[{name}\] contain NaN or Inf"):
    Generator(bad, cfg)
  with pytest.raises(ValueError, match="contain NaN or Inf"):
    generate(bad, cfg, prompt(), 2)
  with pytest.raises(ValueError, match="contain NaN or Inf"):
    decode_logits(bad, cfg, prompt(), 2)


def test_params_for_another_config(model):
  params, cfg = model
  with pytest.raises(ValueError, match=r"params\[embed\] has shape \(32, 8\), the config needs "
                     r"\(32, 16\)"):
    Generator(params, dataclasses.replace(cfg, d_model=16))
  with pytest.raises(ValueError, match=r"has shape .* the config needs"):
    Generator(params, dataclasses.replace(cfg, n_layers=3))
  with pytest.raises(ValueError, match=r"params\[embed\] has shape \(32, 8\), the config needs "
                     r"\(40, 8\)"):
    Generator(params, dataclasses.replace(cfg, vocab_size=40))
  with pytest.raises(ValueError, match=r"missing \['unembed'\]"):
    Generator(params, dataclasses.replace(cfg, tie_embeddings=False))
  untied = dict(params, unembed=jnp.zeros((8, 32)))
  with pytest.raises(ValueError, match=r"unexpected \['unembed'\]"):
    Generator(untied, cfg)
  missing = dict(params)
  del missing["final_norm"]
  with pytest.raises(ValueError, match=r"missing \['final_norm/bias', 'final_norm/scale'\]"):
    Generator(missing, cfg)


def test_integer_params_refused(model):
  params, cfg = model
  bad = dict(params, embed=jnp.zeros(params["embed"].shape, jnp.int32))
  with pytest.raises(TypeError, match=r"params\[embed\] must be floating point"):
    Generator(bad, cfg)


def test_fixed_params_dtype_not_checked_against_config(model):
  """Regression (fixed; was: validation.check_params): only shapes and 'floating' are checked. A config that says
  dtype='bfloat16' accepts float32 weights (and vice versa) and silently runs in the weights'
  dtype: DESIGN.md section 7 asks to refuse a config that does not match the checkpoint."""
  params, cfg = model
  with pytest.raises((TypeError, ValueError), match="dtype|bfloat16"):
    Generator(params, dataclasses.replace(cfg, dtype="bfloat16"))


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("kwargs,match", [
    (dict(vocab_size=0), "HyenaConfig.vocab_size must be a positive int, got 0"),
    (dict(d_model=-4), "HyenaConfig.d_model must be a positive int"),
    (dict(n_layers=1.5), "HyenaConfig.n_layers must be a positive int, got 1.5"),
    (dict(d_inner="8"), "HyenaConfig.d_inner must be a positive int"),
    (dict(l_max=0), "HyenaConfig.l_max must be a positive int"),
    (dict(filter_order=0), "HyenaConfig.filter_order must be a positive int"),
    (dict(short_filter_order=0), "HyenaConfig.short_filter_order must be a positive int"),
    (dict(emb_dim=4), "HyenaConfig.emb_dim must be odd and >= 3, got 4"),
    (dict(emb_dim=1), "HyenaConfig.emb_dim must be odd and >= 3"),
    (dict(filter_inner_mlps=-1), "HyenaConfig.filter_inner_mlps must be >= 0"),
    (dict(dtype="float16"), "HyenaConfig.dtype must be 'float32' or 'bfloat16', got 'float16'"),
])
def test_bad_config_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    HyenaConfig(**kwargs)


def test_config_from_mapping():
  cfg = HyenaConfig.from_mapping({"d_model": 12, "n_layers": 1})
  assert cfg.d_model == 12 and cfg.n_layers == 1
  assert HyenaConfig.from_mapping(cfg.to_dict()) == cfg
  with pytest.raises(ValueError, match=r"unknown model config keys \['d_modle'\]"):
    HyenaConfig.from_mapping({"d_modle": 12})


@pytest.mark.parametrize("kwargs", [
    dict(decay_fast_pct=0.0),  # init_params: ZeroDivisionError
    dict(decay_slow_pct=-1.5),  # accepted: decay rates of the wrong sign
    dict(decay_target=0.0),  # init_params: 'math domain error' naming nothing
    dict(decay_target=2.0),  # accepted: log(target) > 0
    dict(layer_norm_eps=-1.0),  # accepted: rsqrt of a negative variance floor
    dict(emb_dim=5.0),  # accepted, then init_params fails on a float shape
    dict(filter_inner_mlps=1.5),  # accepted, then init_params fails on a float shape
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_fixed_config_values_not_validated(kwargs):
  """Regression (fixed; was: config.HyenaConfig.__post_init__): these values are accepted by the config and
  fail later with an unrelated error (or not at all), instead of a ValueError naming the field."""
  name = next(iter(kwargs))
  with pytest.raises(ValueError, match=f"HyenaConfig.{name}"):
    cfg = HyenaConfig(vocab_size=8, d_model=4, n_layers=1, d_inner=4, l_max=16, **kwargs)
    jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), cfg))


# ----------------------------------------------------------------------------- other inputs


def test_fixed_stop_token_outside_vocab_accepted(gen):
  """Regression (fixed; was: generation.Generator.generate): stop_token is a token id but is not range-checked; an
  id outside the vocabulary can never be produced, so the request silently never stops."""
  with pytest.raises(ValueError, match="stop_token"):
    gen.generate(prompt(1, 3), 3, stop_token=VOCAB)


def test_fixed_decode_positions_out_of_range_silently_dropped(gen):
  """Regression (fixed; was: generation.Generator.decode_logits): `positions` is not validated; a position >= L
  is silently dropped, so the result has fewer columns than positions were asked for."""
  with pytest.raises(ValueError, match="positions"):
    gen.decode_logits(prompt(1, 8), 2, positions=np.array([1, 70]))


def test_memory_estimate_refuses_when_it_cannot_fit(gen, monkeypatch):
  plan = mixers.make_plan("flash", 5, 200, 4, "fft")
  small = validation.estimate_generation_bytes(gen.params, gen.cfg, plan, 1)
  big = validation.estimate_generation_bytes(gen.params, gen.cfg, plan, 64)
  longer = validation.estimate_generation_bytes(
      gen.params, gen.cfg, mixers.make_plan("flash", 5, 250, 4, "fft"), 1)
  assert 0 < small < big and small < longer
  monkeypatch.setattr(validation, "device_memory_limit", lambda: small // 2)
  with pytest.raises(MemoryError, match=r"generation needs about .* GiB of device memory "
                     r"\(.* held, the rest transient; method=flash.*XLA_PYTHON_CLIENT_MEM"):
    gen.generate(prompt(1, 5), 196)


@pytest.mark.parametrize("method, tau", [("flash", "fft"), ("flash", "matmul"),
                                         ("flash", "hybrid"), ("lazy", "fft"), ("eager", "fft")])
def test_engine_constant_bytes_are_those_make_consts_builds(gen, method, tau):
  """The estimate counts the constants the engine really holds (shapes only, nothing built)."""
  plan = mixers.make_plan(method, 3, 150, 4, tau)
  filters = jax.random.normal(jax.random.PRNGKey(1), (gen.cfg.n_layers, gen.cfg.d_model, 160))
  built = jax.tree_util.tree_leaves(mixers.make_consts(plan, filters))
  assert validation.engine_constant_bytes(gen.cfg, plan) == sum(x.nbytes for x in built) > 0


@pytest.mark.parametrize("method", ["flash", "lazy"])
def test_out_of_memory_allocating_the_buffer_says_what_to_try(gen, monkeypatch, method):
  """XLA's RESOURCE_EXHAUSTED while the buffer is allocated (the estimate fit, the pool did not
  have the piece) becomes a MemoryError naming the generation and the allocator to try; other
  runtime errors pass through unchanged."""
  def exhausted(*args):
    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                     "allocate 60.75GiB with allocator GPU_0_bfc")
  monkeypatch.setattr(mixers, "init_buffer", exhausted)
  with pytest.raises(MemoryError, match=rf"allocating the generation's buffer \(method={method}, "
                     r"batch=2, length=\d+\): RESOURCE_EXHAUSTED.*cuda_async") as info:
    gen.generate(prompt(2, 5), 12, method=method)
  assert isinstance(info.value.__cause__, jax.errors.JaxRuntimeError)

  def other(*args):
    raise jax.errors.JaxRuntimeError("INTERNAL: something else")
  monkeypatch.setattr(mixers, "init_buffer", other)
  with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL"):
    gen.generate(prompt(2, 5), 12, method=method)


def test_memory_check_can_be_skipped_with_a_warning(gen, monkeypatch):
  """FLASH_LCSM_SKIP_MEMORY_CHECK=1: the same refusal becomes a warning and the generation runs
  (any other value keeps the refusal)."""
  plan = mixers.make_plan("flash", 5, 200, 4, "fft")
  need = validation.estimate_peak_bytes(gen.params, gen.cfg, plan, 1)
  monkeypatch.setattr(validation, "device_memory_limit", lambda: need // 2)
  monkeypatch.setenv(validation.SKIP_MEMORY_CHECK_ENV, "0")
  with pytest.raises(MemoryError, match="FLASH_LCSM_SKIP_MEMORY_CHECK=1 tries anyway"):
    gen.generate(prompt(1, 5), 196)
  monkeypatch.setenv(validation.SKIP_MEMORY_CHECK_ENV, "1")
  with pytest.warns(RuntimeWarning, match=r"needs about .* GiB.*Going on"):
    out = gen.generate(prompt(1, 5), 196)
  assert out.tokens.shape == (1, 196)


def test_memory_check_counts_transient_bytes(gen, monkeypatch):
  """Room for what a generation holds is not enough: lazy's autotuner buffer copy and flash's
  largest FFT tile temporaries must fit too (an 80 GB H100 failed there, not on holdings)."""
  M, D = gen.cfg.n_layers, gen.cfg.d_model
  lazy = mixers.make_plan("lazy", 5, 200, 4, "fft")
  monkeypatch.setenv("XLA_FLAGS", "")
  assert validation.estimate_working_bytes(gen.cfg, lazy, 3) == 4 * M * 3 * D * lazy.buffer_length
  plan = mixers.make_plan("flash", 5, 200, 4, "fft")
  held = validation.estimate_generation_bytes(gen.params, gen.cfg, plan, 1)
  working = validation.estimate_working_bytes(gen.cfg, plan, 1)
  # Flash: no buffer copy (measured on an H100), four spectra of the top tile's FFT.
  assert working == 4 * 8 * M * D * ((1 << max(plan.levels)) + 1)
  assert validation.estimate_working_bytes(gen.cfg, plan, 8) == 8 * working
  monkeypatch.setattr(validation, "device_memory_limit", lambda: int((held + working / 2) / 0.9))
  with pytest.raises(MemoryError, match="transient"):
    gen.generate(prompt(1, 5), 196)
  monkeypatch.setattr(validation, "device_memory_limit", lambda: int(2 * (held + working)))
  assert gen.generate(prompt(1, 5), 196).tokens.shape == (1, 196)


@pytest.mark.parametrize("flags, copies", [
    ("", True), ("--xla_gpu_autotune_level=0", False),
    ("--xla_gpu_autotune_level=4", True),
    ("--xla_dump_to=/tmp/x --xla_gpu_autotune_level=0", False),
    ("--xla_gpu_autotune_level=0 --xla_gpu_autotune_level=4", True)])
def test_autotuner_flag_is_read_from_xla_flags(monkeypatch, flags, copies):
  """The last --xla_gpu_autotune_level in XLA_FLAGS decides whether the autotuner runs."""
  monkeypatch.setenv("XLA_FLAGS", flags)
  assert validation.autotuner_copies_buffer() is copies


@pytest.mark.parametrize("method", ["lazy", "eager"])
def test_baselines_compile_untuned_where_the_autotuner_copy_would_not_fit(gen, monkeypatch,
                                                                           method):
  """Where what a lazy / eager generation holds fits but the autotuner's copy of its history
  buffer does not, the engine compiles its blocks without the autotuner (no copy to count)
  instead of refusing; with room for the copy, or for flash, it keeps the autotuner."""
  from flash_lcsm_jax.engine import generation
  plan = mixers.make_plan(method, 5, 200, 4, "fft")
  held = validation.estimate_generation_bytes(gen.params, gen.cfg, plan, 1)
  monkeypatch.setenv("XLA_FLAGS", "")
  copy = validation.estimate_working_bytes(gen.cfg, plan, 1)
  assert copy > 0 and validation.estimate_working_bytes(gen.cfg, plan, 1, tuned=False) == 0
  monkeypatch.setattr(validation, "device_memory_limit", lambda: int(2 * (held + copy)))
  assert not validation.baseline_untuned(gen.params, gen.cfg, plan, 1)
  assert validation.estimate_peak_bytes(gen.params, gen.cfg, plan, 1) == held + copy
  tuned = gen.generate(prompt(1, 5), 196, method=method).tokens
  monkeypatch.setattr(validation, "device_memory_limit", lambda: int((held + copy / 2) / 0.9))
  assert validation.baseline_untuned(gen.params, gen.cfg, plan, 1)
  assert validation.estimate_peak_bytes(gen.params, gen.cfg, plan, 1) == held
  before = generation._run_block_untuned._cache_size()
  untuned = gen.generate(prompt(1, 5), 196, method=method).tokens
  assert generation._run_block_untuned._cache_size() > before
  np.testing.assert_array_equal(untuned, tuned)
  flash = mixers.make_plan("flash", 5, 200, 4, "fft")
  assert not validation.baseline_untuned(gen.params, gen.cfg, flash, 1)
  # Nothing helps where even what it holds does not fit.
  monkeypatch.setattr(validation, "device_memory_limit", lambda: int(held / 2))
  with pytest.raises(MemoryError, match="generation needs about"):
    gen.generate(prompt(1, 5), 196, method=method)


def test_flash_working_bytes_one_layer_at_a_time(gen, monkeypatch):
  """Above tau.FFT_CHUNK_BYTES the top tile runs one layer at a time: one layer's spectra."""
  plan = mixers.make_plan("flash", 5, 200, 4, "fft")
  whole = validation.estimate_working_bytes(gen.cfg, plan, 2)
  monkeypatch.setattr(tau_ops, "FFT_CHUNK_BYTES", 1)
  assert validation.estimate_working_bytes(gen.cfg, plan, 2) == whole // gen.cfg.n_layers
