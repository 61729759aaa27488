"""A/B of the in-place Pallas gray tile's block configs at small levels (ops/pallas_inplace).

  PYTHONPATH=. python experiments/inplace_blocks_gpu.py [--levels=0,1,2] [--out=PATH]

The H100 calibration (session 3) timed the whole-tile kernel at 9.9 / 14.1 / 7.3 us for U = 1 /
2 / 4: U = 2 slower than U = 4 points at the block config (levels 0 and 1 use 256-channel blocks,
level 2 128). For each named config set and level, `calibration.measure` times chains of 8 tiles
(paper filters, M = 18, D = 864, B = --batch) for pallas_inplace and the XLA direct taus, in
--rounds alternating rounds so that drift shows; JSON with the medians per round.
"""

from __future__ import annotations


from absl import app, flags
import jax

from flash_lcsm_jax import HyenaConfig, init_params, materialise_filter
from flash_lcsm_jax.ops import calibration
from flash_lcsm_jax.ops import pallas_inplace
from flash_lcsm_jax.ops.pallas_direct import BlockConfig
from experiments import common

_LEVELS = flags.DEFINE_list("levels", ["0", "1", "2"], "Tile levels.")
_BATCH = flags.DEFINE_integer("batch", 1, "B.")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "Alternating rounds over the config sets.")
_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT or results/).")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run (M=2, D=40, interpret mode).")

CONFIG_SETS = {
    "current": {},  # pallas_inplace.INPLACE_CONFIGS as committed
    "ch128": {0: BlockConfig(channel_block=128, batch_block=8),
              1: BlockConfig(channel_block=128, batch_block=8)},
    "ch64": {0: BlockConfig(channel_block=64, batch_block=8),
             1: BlockConfig(channel_block=64, batch_block=8),
             2: BlockConfig(channel_block=64, batch_block=8)},
}


def main(argv):
  del argv
  layers, width = (2, 40) if _TINY.value else (18, 864)
  levels = [int(q) for q in _LEVELS.value]
  cfg = HyenaConfig(vocab_size=256, d_model=width, n_layers=layers, d_inner=64,
                    l_max=2 << max(levels), filter_order=64, emb_dim=33)
  filters = materialise_filter(init_params(jax.random.PRNGKey(0), cfg)["layers"]["filter"], cfg,
                               cfg.l_max)
  committed = dict(pallas_inplace.INPLACE_CONFIGS)
  rows = []
  result = dict(experiment="inplace_blocks", device=jax.devices()[0].device_kind,
                jax_version=jax.__version__, batch=_BATCH.value, levels=levels,
                configs={k: {str(q): str(c) for q, c in v.items()} for k, v in CONFIG_SETS.items()},
                committed={str(q): str(c) for q, c in committed.items()}, rows=rows)
  out = common.output_path(_OUT.value, "inplace_blocks.json")
  for rnd in range(_ROUNDS.value):
    for name, overrides in CONFIG_SETS.items():
      pallas_inplace.INPLACE_CONFIGS.clear()
      pallas_inplace.INPLACE_CONFIGS.update({**committed, **overrides})
      impls = ["pallas_inplace"] + (["direct", "direct_dot"] if name == "current" else [])
      measured = calibration.measure(filters, _BATCH.value, levels, impls, repeats=20)
      for level, times in measured.items():
        rows.append(dict(round=rnd, configs=name, level=level, us=times))
        print(f"round {rnd} {name:8s} level {level} " + "  ".join(
            f"{k}={v:6.1f}" for k, v in times.items()), flush=True)
      common.write_json_file(out, result)
  pallas_inplace.INPLACE_CONFIGS.clear()
  pallas_inplace.INPLACE_CONFIGS.update(committed)
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
