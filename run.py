"""flash_lcsm_jax command line.

Usage:
  python run.py                                    # generate with every method (tiny model)
  python run.py --mode=verify                      # parity of every method and tau, JSON report
  python run.py --mode=generate --config=configs/paper.py --config.num_tokens=4096
  python run.py --mode=bench --experiment=all      # benchmarks (experiments/), JSON under results/
  python run.py --mode=figures                     # plots from results/*.json into figures/
  python run.py --mode=train                       # train a byte-level model (see configs/train.py)

Config overrides: --config.key=value, e.g. --config.model.n_layers=4 --config.batch=8.
"""

import os

from absl import app, flags
from ml_collections import config_flags

_HERE = os.path.dirname(os.path.abspath(__file__))
config_flags.DEFINE_config_file("config", os.path.join(_HERE, "configs", "tiny.py"),
                                "ml_collections config file.", lock_config=False)
_MODE = flags.DEFINE_enum("mode", "generate",
                          ["generate", "verify", "bench", "figures", "train"], "What to run.")
_OUT = flags.DEFINE_string("out", "", "Output JSON path (verify / bench) or directory.")
_EXPERIMENT = flags.DEFINE_string("experiment", "all", "Experiment name for --mode=bench.")
_SIZE = flags.DEFINE_enum("size", "gpu", ["gpu", "cpu"],
                          "Experiment sizes for --mode=bench: the GPU sizes or tiny CPU ones.")
_CACHE = flags.DEFINE_string(
    "compilation_cache", os.path.join("~", ".cache", "flash_lcsm_jax", "xla"),
    "Persistent XLA compilation cache for generate / verify / train: a later run with the same "
    "shapes loads its executables instead of compiling them (seconds to a minute each on a GPU). "
    "'' turns it off; JAX_COMPILATION_CACHE_DIR, if set, wins.")


BENCH_MEM_FRACTION = "0.92"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = flags.FLAGS.config
  mode = _MODE.value
  if mode in ("generate", "verify", "train"):
    from flash_lcsm_jax import cli
    cli.enable_compilation_cache(_CACHE.value)
  if mode in ("generate", "verify"):
    code = cli.generate_main(config) if mode == "generate" else cli.verify_main(config, _OUT.value)
  elif mode == "train":
    from flash_lcsm_jax import training
    code = training.main(config)
  elif mode == "bench":
    # Benchmarks hold up to ~46 GB at L = 2^17: on an 80 GB GPU, XLA's default 75% pool leaves
    # cuFFT no scratch for the largest tile (seen on an H100). Set before JAX starts a backend;
    # an explicit setting wins.
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", BENCH_MEM_FRACTION)
    from experiments import registry
    code = registry.bench_main(_EXPERIMENT.value, _SIZE.value, _OUT.value or "results")
  else:
    from experiments import registry
    code = registry.figures_main(_OUT.value or "figures")
  raise SystemExit(code or 0)


if __name__ == "__main__":
  app.run(main)
