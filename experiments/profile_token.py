"""Lists the GPU kernels of one block of flash steps (run under Nsight Compute).

  ncu --profile-from-start off --csv --metrics gpu__time_duration.sum --cache-control none \
      python experiments/profile_token.py --part=dense > kernels.csv

Compiles and warms a flash plan on the paper config, then brackets one block of steps with
cudaProfilerStart/Stop so only its kernels are recorded: kernels per token and their times.
"""

import ctypes
import glob
import os
import sys

from absl import app, flags
import jax
import jax.numpy as jnp

from flash_lcsm_jax import Generator, HyenaConfig, init_params
from flash_lcsm_jax.engine.generation import DecodeState

_PART = flags.DEFINE_string("part", "all", "all | mixer | dense")
_B = flags.DEFINE_integer("batch", 1, "Batch size.")
_UNROLL = flags.DEFINE_bool("unroll_layers", True, "Unrolled layer loop.")
_START = flags.DEFINE_integer("start", 1024, "Position of the profiled block (block aligned).")

PAPER = dict(vocab_size=50257, d_model=864, n_layers=18, d_inner=1728, l_max=2**17,
             filter_order=64, emb_dim=33, short_filter_order=3)


def cudart():
  import nvidia  # the pip CUDA runtime that jaxlib uses
  for root in nvidia.__path__:
    for path in glob.glob(os.path.join(root, "**", "libcudart.so*"), recursive=True):
      return ctypes.CDLL(path)
  return ctypes.CDLL("libcudart.so")


def main(_):
  cfg = HyenaConfig(**PAPER)
  gen = Generator(init_params(jax.random.PRNGKey(0), cfg), cfg, block_size=8,
                  unroll_layers=_UNROLL.value)
  L = _START.value + 64
  plan, consts = gen.plan("flash", "hybrid", 1, L)
  M, D, B = cfg.n_layers, cfg.d_model, _B.value

  def state():
    return DecodeState(jnp.full((M, B, D, plan.buffer_length), 0.37, jnp.float32),
                       jnp.zeros((M, B, 2, 3 * D), jnp.float32), jnp.ones((B,), jnp.int32),
                       jnp.asarray(1, jnp.int32))

  st, toks, _ = gen.run(plan, consts, state(), jax.random.PRNGKey(0), part=_PART.value)
  jax.block_until_ready(toks)
  # Profile 8 steps from a block boundary (levels 0,1,0,2,0,1,0,3).
  import dataclasses
  blocks = [b for b in plan.blocks if b.first >= _START.value][:1]
  one = dataclasses.replace(plan, blocks=tuple(blocks))
  s = state()._replace(position=jnp.asarray(blocks[0].first, jnp.int32))
  jax.block_until_ready(s)
  rt = cudart()
  rt.cudaProfilerStart()
  st, toks, _ = gen.run(one, consts, s, jax.random.PRNGKey(0), part=_PART.value)
  jax.block_until_ready((st, toks))
  rt.cudaProfilerStop()
  print("profiled block", blocks[0], file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
