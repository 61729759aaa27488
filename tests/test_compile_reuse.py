"""Flash executables are shared between generations of nearby lengths and prompt lengths."""

import jax.numpy as jnp
import numpy as np

from experiments import common
from flash_lcsm_jax import Generator
from flash_lcsm_jax.engine import generation, mixers


def _compiled():
  return generation._run_block._cache_size(), generation._run_tile._cache_size()


def test_new_length_and_prompt_length_compile_no_new_flash_block():
  cfg = common.model_config("cpu")
  gen = Generator(common.random_params(cfg), cfg, 4)
  rng = np.random.default_rng(0)
  runs = ((5, 53), (13, 41), (2, 49))  # (prompt length, new tokens): whole blocks, one bucket
  lengths = {mixers.make_plan("flash", P, P + N - 1, 4, "fft").buffer_length for P, N in runs}
  assert len(lengths) == 1, lengths
  for i, (P, N) in enumerate(runs):
    prompt = jnp.asarray(rng.integers(0, cfg.vocab_size, (2, P)), jnp.int32)
    before = _compiled()
    out = gen.generate(prompt, N, method="flash", tau="fft")
    assert out.tokens.shape == (2, N)
    if i:  # the first run compiled the blocks and tiles; the others reuse them
      assert _compiled() == before, (P, N)
    # ... and stay exact: the same tokens as lazy (which compiles per length)
    want = gen.generate(prompt, N, method="lazy")
    np.testing.assert_array_equal(np.asarray(out.tokens), np.asarray(want.tokens))
