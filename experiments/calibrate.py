"""Calibrates tau='hybrid' on this device: times the gray tile of every tau at every level.

  PYTHONPATH=. python experiments/calibrate.py            # writes flash_lcsm_jax/ops/tables/<device>.json

Uses the paper config's filters (M=18, D=864) and batch sizes 1 and 8 by default.
"""

from absl import app, flags
import jax

from flash_lcsm_jax import HyenaConfig, init_params, materialise_filter
from flash_lcsm_jax.ops import calibration

_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes to calibrate.")
_LEVELS = flags.DEFINE_integer("max_level", 12, "Calibrate levels 0..max_level.")
_LAYERS = flags.DEFINE_integer("layers", 18, "M.")
_WIDTH = flags.DEFINE_integer("width", 864, "D.")
_DIR = flags.DEFINE_string("dir", calibration.TABLE_DIR, "Where the table is written.")
_MIN_LEVEL = flags.DEFINE_integer("min_level", 0, "First level to calibrate.")
_IMPLS = flags.DEFINE_list("impls", [], "Tau implementations to time (default: all).")


def main(_):
  cfg = HyenaConfig(vocab_size=256, d_model=_WIDTH.value, n_layers=_LAYERS.value, d_inner=64,
                    l_max=2 << _LEVELS.value, filter_order=64, emb_dim=33)
  params = init_params(jax.random.PRNGKey(0), cfg)
  filters = materialise_filter(params["layers"]["filter"], cfg, cfg.l_max)
  impls = _IMPLS.value or None
  tables, measured = {}, {}
  for B in [int(b) for b in _BATCHES.value]:
    measured[B], tables[B] = {}, {}
    for level in range(_MIN_LEVEL.value, _LEVELS.value + 1):
      # One level at a time, saved after each: a device call that runs out of time keeps
      # every level it finished.
      measured[B].update(calibration.measure(filters, B, [level], impls))
      tables[B] = calibration.derive(measured[B])
      row = "  ".join(f"{k}={v:7.1f}" for k, v in sorted(measured[B][level].items()))
      print(f"B={B} level={level:2d} best={tables[B].get(level, '-'):14s} {row}", flush=True)
      path = calibration.save(tables, measured, directory=_DIR.value)
  print("wrote", path)


if __name__ == "__main__":
  app.run(main)
