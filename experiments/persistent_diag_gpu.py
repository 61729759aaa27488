"""Where does the engine hang with the persistent dense path? (session 7 diagnostic)

Runs a few small engine calls with dense_path="persistent" on the paper model, each timed, with
Python's stack dumped every 20 s (a dump inside block_until_ready means the GPU never finished;
one inside compile means compilation). Usage:
  PYTHONPATH=. python experiments/persistent_diag_gpu.py --case=generate
"""
import faulthandler
import sys
import time

from absl import app, flags
import jax
import jax.numpy as jnp

from experiments.engine_probe import PAPER
from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.engine.generation import Generator
from flash_lcsm_jax.models.hyena import init_params

_CASE = flags.DEFINE_string("case", "generate", "generate | decode | decode_highest | decode_prompt")
_DENSE = flags.DEFINE_string("dense", "persistent", "dense path")
_L = flags.DEFINE_integer("length", 256, "positions")


def main(_):
  faulthandler.dump_traceback_later(20, repeat=True, file=sys.stderr)
  cfg = HyenaConfig(**dict(PAPER, l_max=4096))
  params = init_params(jax.random.PRNGKey(0), cfg)
  gen = Generator(params, cfg, dense_path=_DENSE.value)
  L = _L.value
  tokens = jax.random.randint(jax.random.PRNGKey(1), (1, L), 0, cfg.vocab_size)
  for rep in range(2):
    t0 = time.perf_counter()
    case = _CASE.value
    if case == "generate":
      out = gen.generate(tokens[:, :16], L - 16).tokens
    else:
      if case == "decode_highest":
        jax.config.update("jax_default_matmul_precision", "highest")
      out = gen.decode_logits(tokens, 100 if case == "decode_prompt" else 0)
    jax.block_until_ready(out)
    print(f"{case} dense={_DENSE.value} L={L} rep {rep}: {time.perf_counter() - t0:.2f} s, "
          f"out {out.shape} finite {bool(jnp.isfinite(out.astype(jnp.float32)).all())}", flush=True)


if __name__ == "__main__":
  app.run(main)
