"""Small gray tiles, Pallas vs XLA, by wall time and by the device's own kernel time.

  PYTHONPATH=. python experiments/tile_kernels_gpu.py [--levels=0,...,6] [--out=PATH]
  PYTHONPATH=. python experiments/tile_kernels_gpu.py --tiny      # CPU smoke run

A tile of U <= 32 does a few thousand multiply-adds per program: on the GPU its wall time in a
chain is mostly launch latency, which a profiler-free chain cannot separate from the kernel and
which moved by 2x between rounds of the same chain in session 4's first call. So each variant is
timed two ways on the paper shape (M = 18, D = 864, B = --batch), as a jitted chain of --count
tiles at distinct positions on a donated buffer:
  wall_us    median over --repeats chains of the host clock, per tile;
  kernel_us  the device's kernel time per tile, from a JAX profiler trace of --repeats chains
             (what Nsight Compute would report; it crashes inside JAX on this machine);
  kernels    launches per tile;
  marginal_us  with --long_count > --count: the host clock's extra time per extra tile between a
             chain of --count tiles and one of --long_count (medians): what a tile costs inside
             a long executable, without the executable's own fixed cost, which a chain of 16
             spreads over only 16 tiles (~3 us each on an H100, session 15).
--loop=unrolled writes the chain as --count tiles in a row, --loop=fori as a lax.fori_loop with
one tile per iteration (its wall time is mostly the while loop's per-iteration cost on the GPU,
and the loop adds 1-2 bookkeeping kernels per tile). The tiles' positions are an argument of the
chain, as in a generation; --constant_positions compiles them in, as sessions 4-15 did, which is
unfair to XLA: its dynamic slices become static, and XLA's GPU emitter then writes the tile's
dynamic-update-slice fusion out of place (the whole buffer per tile: XLA's kernel time grew with
the buffer's length on the H100, session 15-16); on the CPU the HLO copies the buffer instead.
`buffer_copies` counts copy instructions of the whole buffer in each row's compiled HLO, and
--hlo_dir keeps the HLO text for a look at what the device compiled.
Variants: the gray tile alone ("tile:<tau>" for pallas_inplace and the XLA direct taus) and a
flash step's whole buffer work ("step:pallas" = the fused kernel storing u_t, adding the tile and
reading acc_{t+1}; "step:xla" = the same three things as XLA ops around the direct tile).
"""

from __future__ import annotations

import functools
import os
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments import hlo_kernels
from experiments.profile_events import profile, summarize
from flash_lcsm_jax import HyenaConfig, init_params, materialise_filter
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.ops import calibration
from flash_lcsm_jax.ops import pallas_inplace
from flash_lcsm_jax.ops import tau as tau_ops

_LEVELS = flags.DEFINE_list("levels", [str(q) for q in range(7)], "Tile levels.")
_BATCH = flags.DEFINE_integer("batch", 1, "B.")
_COUNT = flags.DEFINE_integer("count", 16, "Tiles per jitted chain.")
_LONG_COUNT = flags.DEFINE_integer("long_count", 0,
                                   "Tiles of a second, longer chain for marginal_us (0: none).")
_REPEATS = flags.DEFINE_integer("repeats", 30, "Chains timed (and traced) per variant.")
_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT or results/).")
_LOOP = flags.DEFINE_enum("loop", "unrolled", ["unrolled", "fori"], "Chain structure (see above).")
_CONSTANT_POSITIONS = flags.DEFINE_bool("constant_positions", False,
                                        "Compile the positions in (the unfair form; see above).")
_HLO_DIR = flags.DEFINE_string("hlo_dir", None, "Write each chain's compiled HLO text here.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run (M=2, D=40, interpret mode).")

TILE_TAUS = ("pallas_inplace", "direct", "direct_dot")
STEPS = ("step:pallas", "step:xla")


def chain(variant: str, level: int, count: int, loop: str = "unrolled",
          constant_positions: bool = False):
  """jit(consts, buf, u, ts) -> (buf, acc): `count` tiles (or steps) at positions ts[j] (scalars).

  The positions come in as an argument, as a generation's step gets its position
  (constant_positions: compiled in, as sessions 4-15 did; unrolled only): positions known at
  compile time turn the tile's dynamic slices into static ones, and XLA's GPU emitter
  then writes its dynamic-update-slice fusion out of place, the whole buffer per tile (session 16:
  that, not launch latency, was most of XLA's time in the chains of sessions 4-15). One scalar
  per tile (calibration.tile_positions): sliced out of one array, each position would cost the
  Pallas tile a device-to-device copy of its scalar operand (~0.94 us on the H100, session 16
  call 2) that XLA's tile fuses away, where a generation's step has its position as a scalar.
  """
  fixed = calibration.tile_positions(level, count)  # closed over: compiled in

  def one(consts, buf, u, acc, t):
    if variant == "step:pallas":
      return pallas_inplace.flash_step(consts, buf, u + acc, t, level)
    if variant == "step:xla":
      return pallas_inplace.step_reference(consts, buf, u + acc, t, level)
    return mixers.gray_tile(consts, buf, t, level, variant.split(":")[1]), acc

  @functools.partial(jax.jit, donate_argnums=(1,))
  def run(consts, buf, u, ts):
    acc = jnp.zeros(u.shape, u.dtype)
    if loop == "fori":
      ts = jnp.stack(ts)
      return jax.lax.fori_loop(0, count, lambda j, c: one(consts, c[0], u, c[1], ts[j]),
                               (buf, acc))
    for j in range(count):
      buf, acc = one(consts, buf, u, acc, fixed[j] if constant_positions else ts[j])
    return buf, acc
  return run


def _chain_seconds(run, consts, buf, u, ts, repeats: int):
  """(median seconds of one chain, the buffer) after one compiling call."""
  buf, _ = jax.block_until_ready(run(consts, buf, u, ts))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    buf, _ = jax.block_until_ready(run(consts, buf, u, ts))
    times.append(time.perf_counter() - start)
  return float(np.median(times)), buf


def measure(variant: str, level: int, filters, batch: int, count: int, repeats: int,
            long_count: int = 0, loop: str = "unrolled", hlo_dir: str | None = None,
            constant_positions: bool = False) -> dict:
  M, D = filters.shape[:2]
  U = 1 << level
  name = "pallas_inplace" if variant.startswith("step:") else variant.split(":")[1]
  consts = tau_ops.get(name).prepare(filters, level)
  run = chain(variant, level, count, loop, constant_positions)
  u = jnp.full((M, batch, D), 0.01, jnp.float32)
  length = 2 * max(count, long_count) * U + U
  buf = jnp.full((M, batch, D, length), 0.37, jnp.float32)
  ts = calibration.tile_positions(level, count)
  run = run.lower(consts, buf, u, ts).compile()  # timed as compiled: its HLO is the one counted
  hlo = run.as_text()
  if hlo_dir:
    os.makedirs(hlo_dir, exist_ok=True)
    form = loop + ("_constant" if constant_positions else "")
    with open(os.path.join(hlo_dir, f"{form}_{variant.replace(':', '_')}_u{U}.txt"), "w") as f:
      f.write(hlo)
  seconds, buf = _chain_seconds(run, consts, buf, u, ts, repeats)
  marginal = {}
  if long_count > count:
    long_run = chain(variant, level, long_count, loop, constant_positions)
    long_seconds, buf = _chain_seconds(long_run, consts, buf, u,
                                       calibration.tile_positions(level, long_count),
                                       repeats)
    marginal = dict(marginal_us=1e6 * (long_seconds - seconds) / (long_count - count),
                    long_wall_us=1e6 * long_seconds / long_count)
  state = [buf]

  def traced():  # the buffer is donated: each chain takes the previous chain's output
    for _ in range(repeats):
      state[0], _ = jax.block_until_ready(run(consts, state[0], u, ts))
  summary = summarize(profile(traced), count * repeats, top=4)
  return dict(variant=variant, level=level, U=U, loop=loop, constant_positions=constant_positions,
              buffer_copies=len(hlo_kernels.large_copies(hlo, min_bytes=buf.nbytes)),
              wall_us=1e6 * seconds / count,
              kernel_us=summary["kernel_us_per_step"], busy_us=summary["busy_us_per_step"],
              kernels=summary["kernels_per_step"], top=summary["top"], **marginal)


def speedups(rows: list[dict]) -> list[dict]:
  """Pallas over XLA direct per level: tile alone and whole step, by wall and kernel time."""
  by = {(r["variant"], r["level"]): r for r in rows}
  out = []
  for level in sorted({r["level"] for r in rows}):
    for fast, slow in (("tile:pallas_inplace", "tile:direct"),
                       ("tile:pallas_inplace", "tile:direct_dot"), ("step:pallas", "step:xla")):
      a, b = by.get((fast, level)), by.get((slow, level))
      if a and b:
        out.append(dict(level=level, U=1 << level, fast=fast, slow=slow,
                        wall_speedup=b["wall_us"] / a["wall_us"],
                        kernel_speedup=b["kernel_us"] / max(a["kernel_us"], 1e-9)))
        if "marginal_us" in a and "marginal_us" in b:
          out[-1]["marginal_speedup"] = b["marginal_us"] / max(a["marginal_us"], 1e-9)
  return out


def main(argv):
  del argv
  layers, width = (2, 40) if _TINY.value else (18, 864)
  levels = [int(q) for q in _LEVELS.value]
  if _TINY.value:
    levels = [q for q in levels if q <= 2]
  cfg = HyenaConfig(vocab_size=256, d_model=width, n_layers=layers, d_inner=64,
                    l_max=2 << max(levels), filter_order=64, emb_dim=33)
  filters = materialise_filter(init_params(jax.random.PRNGKey(0), cfg)["layers"]["filter"], cfg,
                               cfg.l_max)
  count, repeats = (4, 3) if _TINY.value else (_COUNT.value, _REPEATS.value)
  long_count = min(_LONG_COUNT.value, 8) if _TINY.value else _LONG_COUNT.value
  rows = []
  result = dict(experiment="tile_kernels",
                environment=common.environment("cpu" if _TINY.value else "gpu", rates=False),
                dtype="float32",  # buffer, taps and accumulation
                matmul_precision="HIGHEST in direct_dot; the other variants have no matmul",
                config=dict(layers=layers, width=width, batch=_BATCH.value, count=count,
                            long_count=long_count, repeats=repeats, levels=levels,
                            loop=_LOOP.value, constant_positions=_CONSTANT_POSITIONS.value),
                rows=rows)
  out = common.output_path(_OUT.value, "tile_kernels.json")
  for level in levels:
    for variant in [f"tile:{t}" for t in TILE_TAUS] + list(STEPS):
      row = measure(variant, level, filters, _BATCH.value, count, repeats, long_count,
                    _LOOP.value, _HLO_DIR.value, _CONSTANT_POSITIONS.value)
      rows.append(row)
      extra = f"  marginal {row['marginal_us']:7.2f} us" if "marginal_us" in row else ""
      print(f"U={row['U']:3d} {variant:20s} wall {row['wall_us']:7.2f} us  kernel "
            f"{row['kernel_us']:7.2f} us  ({row['kernels']:.1f} kernels, "
            f"{row['buffer_copies']} buffer copies){extra}", flush=True)
    result["speedups"] = speedups(rows)
    common.write_json_file(out, result)
  for s in result["speedups"]:
    extra = (f", marginal {s['marginal_speedup']:.2f}x" if "marginal_speedup" in s else "")
    print(f"U={s['U']:3d} {s['fast']} over {s['slow']}: wall {s['wall_speedup']:.2f}x, kernel "
          f"{s['kernel_speedup']:.2f}x{extra}")
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
