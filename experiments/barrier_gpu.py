"""What one grid-wide barrier of the persistent token kernel costs on the GPU, alone and with a
load in flight through it.

  PYTHONPATH=. python experiments/barrier_gpu.py [--grids=16,108,132] [--barriers=71]
      [--orders=acq_rel,release_acquire] [--load_kb=0,32]
  PYTHONPATH=. python experiments/barrier_gpu.py --tiny      # CPU smoke run (interpret, grid 1)

A kernel of G programs that passes N barriers (pallas_layer.persistent's _grid_arrive /
_grid_wait, with LayerConfig.barrier_order's atomics), launched R times in one jitted chain,
against the same kernel with N = 0: (t(N) - t(0)) / N is the time of one barrier, the fixed cost
that each of the 4 M - 1 barriers of the persistent token kernel pays. With --load_kb = K > 0
every program loads K KiB of its own (fresh every step, from HBM) after its arrival and before
its wait, and sums it after the wait: the persistent kernel's weight prefetch. Order "none" runs
the same loads without barriers (the loads' own time). Prediction (session 31): an
acquire-release poll first waits for the load (its release fence), so "acq_rel" costs about the
barrier plus the load; acquiring polls let the two overlap, so "release_acquire" costs about
the larger of the two. The final count of every launch is checked (N * G arrivals), and the
sums against XLA's, so a barrier that lets a program through early, a lost count or a wrong load
shows as an error rather than a fast time.
JSON (--out, default $OUT/barrier_gpu.json or results/barrier_gpu.json): device, jax, records.
"""

from __future__ import annotations

import functools
import statistics
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops import pallas_layer as pal

_GRIDS = flags.DEFINE_list("grids", ["16", "108", "132"], "Programs per launch.")
_BARRIERS = flags.DEFINE_integer("barriers", 71, "Barriers per launch (4 M - 1 at M = 18).")
_ORDERS = flags.DEFINE_list("orders", ["acq_rel", "release_acquire"],
                            "Barrier atomics (LayerConfig.barrier_order), or none (no barrier).")
_LOAD_KB = flags.DEFINE_list("load_kb", ["0"], "KiB each program loads through each barrier.")
_LAUNCHES = flags.DEFINE_integer("launches", 32, "Launches per timed chain.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed chains (median).")
_WARPS = flags.DEFINE_integer("num_warps", 8, "Warps per program.")
_OUT = flags.DEFINE_string("out", None, "JSON path.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run: interpret mode, grid 1, few barriers.")

ORDERS = pal.BARRIER_ORDERS + ("none",)


def _kernel(*refs, barriers: int, grid: int, order: str, interpret: bool):
  """Per step i: arrive at barrier i + 1, load this program's tile i, wait, add up the tile.
  refs: count_in (aliased to count), [tiles], count, sums."""
  tiles = refs[1] if len(refs) == 4 else None
  count, sums = refs[-2:]
  q = pd.pl.program_id(0)
  # pylint: disable-next=protected-access
  arrive, wait = pal.persistent._grid_arrive, pal.persistent._grid_wait

  def body(i, total):
    if order != "none":
      arrive(count, i + 1, interpret, order)
    tile = None if tiles is None else tiles[i, q, :]
    if order != "none":
      wait(count, i + 1, grid, interpret, order)
    return total if tile is None else total + jnp.sum(tile)

  sums[q] = jax.lax.fori_loop(0, barriers, body, jnp.float32(0))


def launch(tiles, barriers: int, grid: int, order: str, interpret: bool):
  """One kernel of `grid` programs passing `barriers` barriers, loading tiles (barriers, grid,
  n) float32 (or nothing: None) through them: the final count (1,) int32 and the programs' sums
  (grid,)."""
  args = [jnp.zeros((1,), jnp.int32)] + ([] if tiles is None else [tiles])
  return pd.pl.pallas_call(
      functools.partial(_kernel, barriers=barriers, grid=grid, order=order, interpret=interpret),
      out_shape=(jax.ShapeDtypeStruct((1,), jnp.int32), jax.ShapeDtypeStruct((grid,),
                                                                             jnp.float32)),
      grid=(grid,),
      in_specs=[pd.pl.BlockSpec()] * len(args),
      out_specs=(pd.pl.BlockSpec(), pd.pl.BlockSpec()),
      input_output_aliases={0: 0},
      interpret=interpret,
      compiler_params=None if interpret else pd.triton_compiler_params(_WARPS.value, 1),
      name="grid_barrier",
  )(*args)


def time_chain(barriers: int, grid: int, order: str, load_floats: int, interpret: bool,
               launches: int) -> dict:
  tiles = None
  if load_floats and barriers:  # distinct tiles per launch, so no launch reads another's from L2
    rng = np.random.default_rng(barriers * 1000 + grid)
    tiles = [jnp.asarray(rng.standard_normal((barriers, grid, load_floats)), jnp.float32)
             for _ in range(min(launches, 4))]

  @jax.jit
  def chain(tiles):
    outs = [launch(None if tiles is None else tiles[k % len(tiles)], barriers, grid, order,
                   interpret) for k in range(launches)]
    return jnp.stack([c[0] for c, _ in outs]), [s for _, s in outs]

  counts, sums = jax.block_until_ready(chain(tiles))  # compile, warm up, and check
  expected = barriers * grid if barriers and order != "none" else 0
  if not bool(jnp.all(counts == expected)):
    raise AssertionError(f"final counts {counts.tolist()} != {expected}")
  if tiles is not None:
    for k, got in enumerate(sums):
      want = np.asarray(tiles[k % len(tiles)], np.float64).sum(axis=(0, 2))
      np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-2)
  times = []
  for _ in range(_REPEATS.value):
    t0 = time.perf_counter()
    jax.block_until_ready(chain(tiles))
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
  orders, loads = _ORDERS.value, [int(k) for k in _LOAD_KB.value]
  bad = [o for o in orders if o not in ORDERS]
  if bad or any(k < 0 or k * 256 & (k * 256 - 1) for k in loads):
    raise app.UsageError(f"--orders from {ORDERS}, --load_kb powers of two or 0: got {orders}, "
                         f"{loads}")
  size = "cpu" if tiny else "gpu"
  out = common.output_path(_OUT.value, "barrier_gpu.json")
  result = dict(experiment="barrier_gpu", environment=common.environment(size, rates=False),
                barriers=barriers, launches=launches, num_warps=_WARPS.value,
                interpret=interpret, records=[])
  for grid in grids:
    try:
      empty = time_chain(0, grid, "acq_rel", 0, interpret, launches)["launch_us"]
    except Exception as e:  # pylint: disable=broad-except
      result["records"].append(dict(grid=grid, error=common.error_text(e, 400)))
      continue
    for kb in loads:
      for order in orders:
        rec = dict(grid=grid, order=order, load_kb=kb, empty_launch_us=empty)
        try:
          full = time_chain(barriers, grid, order, kb * 256, interpret, launches)
          rec.update(launch_us=full["launch_us"],
                     barrier_us=(full["launch_us"] - empty) / barriers)
          print(f"grid {grid:4d} {order:15s} load {kb:3d} KiB: {rec['barrier_us']:7.3f} us per "
                f"step (launch {rec['launch_us']:8.2f} us, empty {empty:6.2f})", flush=True)
        except Exception as e:  # pylint: disable=broad-except
          rec["error"] = common.error_text(e, 400)
          print(f"grid {grid} {order} {kb}: {rec['error']}", flush=True)
        result["records"].append(rec)
        common.write_json_file(out, result)
  common.write_json_file(out, result)
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
