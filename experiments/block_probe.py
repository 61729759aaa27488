"""Times one compiled block per (method, dense path, step loop) and counts its kernels and big
copies: the A/B behind Generator.unroll_steps_for.

  PYTHONPATH=. python experiments/block_probe.py [--positions=1024,65536] [--out=PATH]
  PYTHONPATH=. python experiments/block_probe.py --tiny        # CPU smoke run

For each method (lazy / eager / flash), dense path (xla / fused) and unroll_steps (0 / 1; flash
blocks always unroll): the plan of a generation from 0 to position + 16 on the paper config
(B = --batch), its last full block compiled as `Generator.run` would, the optimized HLO's
kernels per step (experiments/hlo_kernels) and copies of >= 1 MiB, then the block's median time
over --repeats back-to-back runs (common.run_blocks), per step.
"""

from __future__ import annotations

import json
import statistics
import sys
import traceback

from absl import app, flags
import jax

from flash_lcsm_jax import Generator
from experiments import common
from experiments import hlo_kernels

_POSITIONS = flags.DEFINE_list("positions", ["1024", "65536"], "Block start positions.")
_METHODS = flags.DEFINE_list("methods", ["lazy", "flash"], "Methods.")
_DENSE = flags.DEFINE_list("dense", ["fused", "xla"], "Dense paths.")
_UNROLL = flags.DEFINE_list("unroll_steps", ["0", "1"], "Lazy / eager step loop unrolled?")
_BATCH = flags.DEFINE_integer("batch", 1, "B.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per block (median).")
_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT or results/raw).")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run on the tiny model.")


def probe(gen: Generator, method: str, position: int, batch: int, repeats: int) -> dict:
  plan, consts = gen.plan(method, "hybrid", 0, position + common.BLOCK_SIZE, batch)
  block = plan.blocks[-1]
  state = common.zero_state(gen, plan, batch, block.first)
  text = gen.compiled_block_text(plan, consts, state, len(plan.blocks) - 1)
  counted = hlo_kernels.count(text)
  steps = block.num_steps
  times = [common.run_blocks(gen, plan, consts, batch, [block]) for _ in range(repeats + 1)][1:]
  return dict(steps=steps, kernels_per_step=counted.total / steps,
              by_opcode_per_step={k: v / steps for k, v in counted.by_opcode.items()},
              large_copies=hlo_kernels.large_copies(text),
              per_step_ms=statistics.median(times) / steps * 1e3,
              min_per_step_ms=min(times) / steps * 1e3)


def main(argv):
  del argv
  size = "cpu" if _TINY.value else "gpu"
  cfg = common.model_config(size)
  params = common.random_params(cfg)
  positions = [int(p) for p in _POSITIONS.value] if not _TINY.value else [32]
  rows = []
  out = common.output_path(_OUT.value, "block_probe.json")
  result = dict(experiment="block_probe", device=jax.devices()[0].device_kind,
                jax_version=jax.__version__, batch=_BATCH.value, model=cfg.to_dict(), rows=rows)
  for dense in _DENSE.value:
    for unroll in _UNROLL.value:
      gen = Generator(params, cfg, common.BLOCK_SIZE, dense_path=dense,
                      unroll_steps=unroll == "1")
      for method in _METHODS.value:
        if method == "flash" and unroll == "1":
          continue  # flash blocks always unroll
        for position in positions:
          row = dict(method=method, dense=dense, unroll_steps=unroll == "1", position=position)
          try:
            row.update(probe(gen, method, position, _BATCH.value, _REPEATS.value))
            print(f"{method:6s} dense={dense:5s} unroll_steps={unroll} t={position:6d} "
                  f"{row['per_step_ms']:.4f} ms/step {row['kernels_per_step']:.1f} kernels/step "
                  f"copies {row['large_copies'][:4]}", flush=True)
          except Exception as e:  # pylint: disable=broad-except
            row["error"] = common.error_text(e, 400)
            traceback.print_exc(limit=3, file=sys.stderr)
          rows.append(row)
          common.write_json_file(out, result)
      del gen
  print(json.dumps(rows)[:200])


if __name__ == "__main__":
  app.run(main)
