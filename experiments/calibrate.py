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


def main(_):
  cfg = HyenaConfig(vocab_size=256, d_model=_WIDTH.value, n_layers=_LAYERS.value, d_inner=64,
                    l_max=2 << _LEVELS.value, filter_order=64, emb_dim=33)
  params = init_params(jax.random.PRNGKey(0), cfg)
  filters = materialise_filter(params["layers"]["filter"], cfg, cfg.l_max)
  tables, measured = {}, {}
  for B in [int(b) for b in _BATCHES.value]:
    measured[B] = calibration.measure(filters, B, range(_LEVELS.value + 1))
    tables[B] = calibration.derive(measured[B])
    for level, times in measured[B].items():
      row = "  ".join(f"{k}={v:7.1f}" for k, v in sorted(times.items()))
      print(f"B={B} level={level:2d} best={tables[B].get(level, '-'):10s} {row}", flush=True)
  print("wrote", calibration.save(tables, measured, directory=_DIR.value))


if __name__ == "__main__":
  app.run(main)
