"""Samplers: greedy, temperature, top-k, top-p, and their keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flash_lcsm_jax import Sampler
from flash_lcsm_jax.engine import sampling

DRAWS = 4000  # rows sampled at once (one key per call, independent rows)


def random_logits(rng, rows, vocab, scale=2.0):
  return jnp.asarray(rng.normal(size=(rows, vocab)) * scale, jnp.float32)


def draw(sampler, logits, seed):
  return np.asarray(jax.jit(sampler.__call__)(logits, jax.random.PRNGKey(seed)))


def test_greedy_is_argmax(np_rng):
  logits = random_logits(np_rng, 64, 50)
  out = Sampler()(logits, jax.random.PRNGKey(0))
  assert out.dtype == jnp.int32 and out.shape == (64,)
  np.testing.assert_array_equal(out, np.argmax(np.asarray(logits), -1))
  assert Sampler().greedy and not Sampler(0.5).greedy


def test_tiny_temperature_equals_greedy(np_rng):
  logits = random_logits(np_rng, 512, 40)
  top2 = np.sort(np.asarray(logits), -1)[:, -2:]
  assert (top2[:, 1] - top2[:, 0]).min() > 1e-4  # no near-ties among the rows
  greedy = np.argmax(np.asarray(logits), -1)
  for seed in range(3):
    np.testing.assert_array_equal(draw(Sampler(temperature=1e-6), logits, seed), greedy)
    np.testing.assert_array_equal(draw(Sampler(1e-6, top_k=5), logits, seed), greedy)
    np.testing.assert_array_equal(draw(Sampler(1e-6, top_p=0.9), logits, seed), greedy)


def test_temperature_sampling_follows_softmax(np_rng):
  """Frequencies of 4000 draws from one row match softmax(logits / T) (5 sigma)."""
  for temperature in (0.7, 1.0, 2.0):
    row = np_rng.normal(size=6).astype(np.float32)
    logits = jnp.tile(jnp.asarray(row), (DRAWS, 1))
    counts = np.bincount(draw(Sampler(temperature), logits, 1), minlength=6) / DRAWS
    p = np.exp(row / temperature - (row / temperature).max())
    p /= p.sum()
    assert np.all(np.abs(counts - p) <= 5 * np.sqrt(p * (1 - p) / DRAWS) + 1e-3), (counts, p)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_never_samples_outside_the_top_k(k, np_rng):
  logits = random_logits(np_rng, DRAWS, 30, scale=0.5)  # flat: outside tokens would show up
  allowed = np.argsort(-np.asarray(logits), -1)[:, :k]
  for seed in range(3):
    out = draw(Sampler(1.0, top_k=k), logits, seed)
    assert np.all((allowed == out[:, None]).any(-1)), "sampled a token outside the top k"
  # Every one of the k tokens is reachable (the filter does not drop more than it should).
  out = draw(Sampler(1.0, top_k=k), jnp.tile(logits[:1], (DRAWS, 1)), 9)
  assert set(out.tolist()) == set(allowed[0].tolist())


def test_top_k_larger_than_vocab_is_plain_sampling(np_rng):
  logits = random_logits(np_rng, 8, 5)
  np.testing.assert_array_equal(draw(Sampler(1.0, top_k=50), logits, 3),
                                draw(Sampler(1.0), logits, 3))


def nucleus(row: np.ndarray, top_p: float, temperature: float = 1.0):
  """Smallest set of most likely tokens whose probability reaches top_p (float64)."""
  z = row.astype(np.float64) / temperature
  p = np.exp(z - z.max())
  p /= p.sum()
  order = np.argsort(-p)
  before = np.cumsum(p[order]) - p[order]
  return set(order[before < top_p].tolist()), before


@pytest.mark.parametrize("top_p,temperature", [(0.5, 1.0), (0.9, 1.0), (0.8, 0.6), (0.3, 2.0)])
def test_top_p_never_samples_outside_the_nucleus(top_p, temperature, np_rng):
  rows = 200
  logits = np.asarray(random_logits(np_rng, rows, 20, scale=1.5))
  sets = []
  for r in range(rows):
    keep, before = nucleus(logits[r], top_p, temperature)
    assert np.min(np.abs(before - top_p)) > 1e-5  # no float32 boundary cases among the rows
    sets.append(keep)
  tiled = jnp.asarray(np.repeat(logits, 20, axis=0))  # 20 draws of every row
  out = draw(Sampler(temperature, top_p=top_p), tiled, 5).reshape(rows, 20)
  for r in range(rows):
    assert set(out[r].tolist()) <= sets[r], (r, sorted(sets[r]), sorted(set(out[r].tolist())))
  # The nucleus is not over-trimmed: a row whose nucleus has several tokens, each likely
  # enough to show up in 4000 draws (renormalised p >= 0.01), samples them all.
  def smallest_share(r):
    z = logits[r].astype(np.float64) / temperature
    p = np.exp(z - z.max())
    keep = sorted(sets[r])
    return p[keep].min() / p[keep].sum() if len(keep) > 1 else 0.0
  r = max(range(rows), key=smallest_share)
  assert smallest_share(r) >= 0.01
  many = draw(Sampler(temperature, top_p=top_p), jnp.tile(jnp.asarray(logits[r:r + 1]),
                                                          (DRAWS, 1)), 6)
  assert set(many.tolist()) == sets[r]


def test_top_p_always_keeps_the_most_likely_token(np_rng):
  logits = random_logits(np_rng, 256, 16)
  np.testing.assert_array_equal(draw(Sampler(1.0, top_p=1e-6), logits, 2),
                                np.argmax(np.asarray(logits), -1))


def test_same_key_same_tokens_different_keys_differ(np_rng):
  logits = random_logits(np_rng, 256, 30, scale=0.5)
  for sampler in (Sampler(1.0), Sampler(1.0, top_k=8), Sampler(1.0, top_p=0.9)):
    a, b, c = draw(sampler, logits, 42), draw(sampler, logits, 42), draw(sampler, logits, 43)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3, sampler  # 256 independent rows: far from identical


def test_sampler_is_hashable_static_config():
  assert hash(Sampler(1.0, 5, 0.9)) == hash(Sampler(1.0, 5, 0.9))
  assert Sampler(1.0, 5, 0.9) != Sampler(1.0, 6, 0.9)


@pytest.mark.parametrize("kwargs,match", [
    (dict(temperature=-0.1), "temperature must be >= 0"),
    (dict(temperature=float("nan")), "temperature must be >= 0"),
    (dict(temperature=1.0, top_k=-1), "top_k must be an int >= 0"),
    (dict(temperature=1.0, top_k=2.5), "top_k must be an int >= 0"),
    (dict(temperature=1.0, top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(temperature=1.0, top_p=1.5), r"top_p must be in \(0, 1\]"),
])
def test_bad_sampler_settings(kwargs, match):
  with pytest.raises(ValueError, match=match):
    Sampler(**kwargs)


def test_named_samplers():
  assert sampling.from_name("greedy") == Sampler()
  assert sampling.from_name("temperature", 0.7) == Sampler(0.7)
  assert sampling.from_name("top_k", 1.0, top_k=5) == Sampler(1.0, top_k=5)
  assert sampling.from_name("top_k", 1.0).top_k > 0
  assert sampling.from_name("top_p", 1.0, top_p=0.8) == Sampler(1.0, top_p=0.8)
  assert sampling.from_name("top_p", 1.0).top_p < 1.0
  with pytest.raises(ValueError, match="unknown sampler 'beam'; choose from greedy"):
    sampling.from_name("beam")
