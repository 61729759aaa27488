"""What one grid-wide barrier of the persistent token kernel costs on the GPU.

  PYTHONPATH=. python experiments/barrier_gpu.py [--grids=16,108,132] [--barriers=71]
  PYTHONPATH=. python experiments/barrier_gpu.py --tiny      # CPU smoke run (interpret, grid 1)

A kernel of G programs that does nothing but pass N barriers
(pallas_layer.persistent._grid_barrier), launched R times in one jitted chain, against the same
kernel with N = 0:
(t(N) - t(0)) / N is the time of one barrier before any work, the fixed cost that each of the
4 M - 1 barriers of the persistent token kernel (ops/pallas_layer, layer_loop="persistent") pays.
The final count of every launch is checked (N * G arrivals), so a barrier that lets a program
through early, or a count that is lost, shows as an error rather than a fast time.
JSON (--out, default $OUT/barrier_gpu.json or results/barrier_gpu.json): device, jax, records.
"""

from __future__ import annotations

import functools
import statistics
import time

from absl import app, flags
import jax
import jax.numpy as jnp

from experiments import common
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops import pallas_layer as pal

_GRIDS = flags.DEFINE_list("grids", ["16", "108", "132"], "Programs per launch.")
_BARRIERS = flags.DEFINE_integer("barriers", 71, "Barriers per launch (4 M - 1 at M = 18).")
_LAUNCHES = flags.DEFINE_integer("launches", 32, "Launches per timed chain.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed chains (median).")
_WARPS = flags.DEFINE_integer("num_warps", 8, "Warps per program.")
_OUT = flags.DEFINE_string("out", None, "JSON path.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run: interpret mode, grid 1, few barriers.")


def _kernel(count_in, count, *, barriers: int, grid: int, interpret: bool):
  del count_in  # aliased to count

  def body(i, carry):
    pal.persistent._grid_barrier(count, i + 1, grid, interpret)  # pylint: disable=protected-access
    return carry

  jax.lax.fori_loop(0, barriers, body, 0)


def launch(barriers: int, grid: int, interpret: bool) -> jax.Array:
  """One kernel of `grid` programs passing `barriers` barriers: the final count, (1,) int32."""
  return pd.pl.pallas_call(
      functools.partial(_kernel, barriers=barriers, grid=grid, interpret=interpret),
      out_shape=jax.ShapeDtypeStruct((1,), jnp.int32),
      grid=(grid,),
      in_specs=[pd.pl.BlockSpec()],
      out_specs=pd.pl.BlockSpec(),
      input_output_aliases={0: 0},
      interpret=interpret,
      compiler_params=None if interpret else pd.triton_compiler_params(_WARPS.value, 1),
      name="grid_barrier",
  )(jnp.zeros((1,), jnp.int32))


def time_chain(barriers: int, grid: int, interpret: bool, launches: int) -> dict:
  @jax.jit
  def chain():
    return jnp.stack([launch(barriers, grid, interpret)[0] for _ in range(launches)])

  counts = jax.block_until_ready(chain())  # compile, warm up, and check
  expected = barriers * (grid if barriers else 0)
  if not bool(jnp.all(counts == expected)):
    raise AssertionError(f"final counts {counts.tolist()} != {expected}")
  times = []
  for _ in range(_REPEATS.value):
    t0 = time.perf_counter()
    jax.block_until_ready(chain())
    times.append(time.perf_counter() - t0)
  return dict(launch_us=statistics.median(times) / launches * 1e6,
              min_launch_us=min(times) / launches * 1e6)


def main(argv):
  del argv
  tiny = _TINY.value
  interpret = tiny or jax.default_backend() not in pal.GPU_BACKENDS
  grids = [1] if interpret else [int(g) for g in _GRIDS.value]
  barriers = 3 if tiny else _BARRIERS.value
  launches = 2 if tiny else _LAUNCHES.value
  size = "cpu" if tiny else "gpu"
  out = common.output_path(_OUT.value, "barrier_gpu.json")
  result = dict(experiment="barrier_gpu", environment=common.environment(size, rates=False),
                barriers=barriers, launches=launches, num_warps=_WARPS.value,
                interpret=interpret, records=[])
  for grid in grids:
    rec = dict(grid=grid)
    try:
      empty = time_chain(0, grid, interpret, launches)
      full = time_chain(barriers, grid, interpret, launches)
      rec.update(empty_launch_us=empty["launch_us"], launch_us=full["launch_us"],
                 barrier_us=(full["launch_us"] - empty["launch_us"]) / barriers)
      print(f"grid {grid:4d}: {rec['barrier_us']:7.3f} us per barrier (launch "
            f"{rec['launch_us']:8.2f} us, empty {rec['empty_launch_us']:6.2f})", flush=True)
    except Exception as e:  # pylint: disable=broad-except
      rec["error"] = common.error_text(e, 400)
      print(f"grid {grid}: {rec['error']}", flush=True)
    result["records"].append(rec)
    common.write_json_file(out, result)
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
