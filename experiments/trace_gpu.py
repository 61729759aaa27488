"""Where a generation step's time goes, kernel by kernel, from a JAX profiler trace.

  PYTHONPATH=. python experiments/trace_gpu.py [--parts=mixer,dense,all] [--out=PATH]
  PYTHONPATH=. python experiments/trace_gpu.py --tiny        # CPU smoke run

Nsight Compute crashes inside JAX on the device machine (experiments/NOTES.md), but JAX's own
profiler (CUPTI) records every kernel, and `jax.profiler.ProfileData` reads the trace in Python
(no TensorBoard needed). For each part of the model (part="mixer": the long convolutions alone;
"dense": the model without them; "all"), flash on the paper config at B = --batch: compile and
warm up the blocks of --steps positions from --position, trace --repeats runs of them, then
report per step:
  - wall time (host clock around the traced runs) and device busy time (the union of the device
    planes' kernel intervals): the gap between them is launch / dependency latency;
  - kernels launched and their total time, by kernel name (top --top), from the device planes'
    stream lines (on CPU, where there is no device plane, the XLA thread-pool lines stand in);
  - the host's own events by total time (JAX dispatch, PjRt execute, XLA's thunks, CUDA graph
    launches): where the step goes when the device is idle (profiling inflates them; compare
    wall times from the experiments, not from here).
The wall time under the profiler is longer than without it (session 4: 65 vs 21 us per
long-convolution step), so it ranks, it does not publish.
JSON: every line's totals, so nothing is lost when the names change between JAX versions.
"""

from __future__ import annotations

import os

from absl import app, flags
import jax

from experiments import common
from experiments.profile_events import profile, summarize

_PARTS = flags.DEFINE_list("parts", ["mixer", "dense", "all"], "Parts of the model to trace.")
_POSITION = flags.DEFINE_integer("position", 2**16, "First traced position.")
_STEPS = flags.DEFINE_integer("steps", 64, "Traced positions (a multiple of the block size).")
_BATCH = flags.DEFINE_integer("batch", 1, "B.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Traced runs of the steps.")
_TOP = flags.DEFINE_integer("top", 15, "Kernels listed per part.")
_BLOCK = flags.DEFINE_integer("block_size", common.BLOCK_SIZE,
                              "Steps per compiled block (host dispatches per token: 1/this).")
_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT or results/).")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run on the tiny model.")


def trace_part(gen, plan, consts, batch: int, blocks, part: str, repeats: int, top: int) -> dict:
  steps = sum(b.num_steps for b in blocks)
  common.run_blocks(gen, plan, consts, batch, blocks, part)  # compile and warm up
  common.run_blocks(gen, plan, consts, batch, blocks, part)
  # Fresh states made before the trace starts, so their zero fill is not counted as a step's.
  states = jax.block_until_ready(
      [common.zero_state(gen, plan, batch, blocks[0].first) for _ in range(repeats)])
  wall = []
  trace = profile(lambda: wall.extend(common.run_blocks(gen, plan, consts, batch, blocks, part,
                                                        state) for state in states))
  summary = summarize(trace, steps * repeats, top)
  # (Whether XLA runs the block in command buffers / CUDA graphs shows in the host events
  # "command_buffer*" and "cuGraphLaunch", not in the optimized HLO, which never names them.)
  return dict(part=part, steps=steps, repeats=repeats, wall_us_per_step=sum(wall) / steps / repeats
              * 1e6, xla_flags=os.environ.get("XLA_FLAGS", ""), **summary)


def main(argv):
  del argv
  size = "cpu" if _TINY.value else "gpu"
  cfg = common.model_config(size)
  gen = common.generator(cfg)
  gen.block_size = _BLOCK.value
  batch = _BATCH.value
  position = min(_POSITION.value, cfg.l_max // 2) if _TINY.value else _POSITION.value
  steps = 32 if _TINY.value else _STEPS.value
  plan, consts = gen.plan("flash", "hybrid", 0, position + steps, batch)
  blocks = [b for b in plan.blocks if b.first >= position]
  result = dict(experiment="trace_gpu", environment=common.environment(size, rates=False),
                config=dict(model=cfg.to_dict(), batch=batch, position=position, steps=steps,
                            block_size=gen.block_size,
                            **common.engine_config(gen, batch),
                            tau_by_level=dict(plan.tau_by_level)), records=[])
  out = common.output_path(_OUT.value, "trace_gpu.json")
  for part in _PARTS.value:
    rec = trace_part(gen, plan, consts, batch, blocks, part, _REPEATS.value, _TOP.value)
    result["records"].append(rec)
    common.write_json_file(out, result)
    print(f"{part:6s} wall {rec['wall_us_per_step']:8.1f} us/step, device busy "
          f"{rec['busy_us_per_step']:8.1f}, {rec['kernels_per_step']:6.1f} kernels/step",
          flush=True)
    for k in rec["top"]:
      print(f"    {k['us_per_step']:8.2f} us  x{k['per_step']:5.2f}  {k['name'][:100]}")
    print("    host:")
    for k in rec["host"]:
      print(f"    {k['us_per_step']:8.2f} us  x{k['per_step']:5.2f}  {k['name'][:100]}")
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
