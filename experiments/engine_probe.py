"""GPU probe of the engines on the paper config: parity at large L, then per-token timings.

  PYTHONPATH=. python experiments/engine_probe.py --out=$OUT/probe.json

Checks parity of every method against the parallel forward (HIGHEST precision), then times,
side by side: flash (all / mixer / dense parts), lazy's history read (GB/s) at several
positions, eager's update, the device copy bandwidth and the matmul rate. Writes JSON.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import os
import sys
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import Generator, HyenaConfig, forward, init_params
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.engine.generation import DecodeState
from experiments import common, hlo_kernels

_OUT = flags.DEFINE_string("out", "", "JSON output path.")
_VERIFY_L = flags.DEFINE_integer("verify_length", 2**17, "Largest parity length.")
_SPEED_L = flags.DEFINE_list("speed_lengths", ["4096", "16384"], "Flash timing lengths.")
_LAZY_T = flags.DEFINE_list("lazy_positions", ["4096", "32768", "65536"], "Lazy window positions.")
_BATCH = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes.")
_UNROLL = flags.DEFINE_list("unroll_layers", ["1", "0"], "Per-token layer loop unrolled (1) / scan (0).")
_SKIP_VERIFY = flags.DEFINE_bool("skip_verify", False, "Skip the parity checks.")
_CASES = flags.DEFINE_list("verify_cases", ["4096:777:lazy:hybrid", "4096:777:eager:hybrid",
                                            "4096:777:flash:hybrid", "4096:0:flash:fft",
                                            "131072:0:flash:hybrid"],
                           "Parity checks as L:P:method:tau[:B] (B rows, default 1).")
_SKIP_SPEED = flags.DEFINE_bool("skip_speed", False, "Only the parity checks.")
_BLOCK = flags.DEFINE_integer("block_size", 16, "Steps per compiled block.")
_PARTS = flags.DEFINE_list("parts", ["all", "mixer", "dense"], "Parts to time (flash hybrid).")
_TAUS = flags.DEFINE_list("taus", ["hybrid", "fft"], "Flash taus to time.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run on a tiny model.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Matmul weight dtype.")
_STACKS = flags.DEFINE_integer("stack_dump_s", 0, "Dump Python's stacks every this many seconds "
                                "(0: never): shows where a slow or stuck run is.")
_RATES = flags.DEFINE_bool("rates", True, "Measure the device's copy bandwidth and matmul rate "
                           "first (seconds; off for a parity-only run in a short slot).")
_COUNT = flags.DEFINE_bool("count_kernels", True,
                           "Record the kernels each timed block launches per token (from its HLO).")

PAPER = dict(vocab_size=50257, d_model=864, n_layers=18, d_inner=1728, l_max=2**17,
             filter_order=64, emb_dim=33, short_filter_order=3)


def rel(a, b):
  return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def verify(gen, cfg, results):
  jax.config.update("jax_default_matmul_precision", "highest")
  key = jax.random.PRNGKey(1)
  refs = {}
  for case in _CASES.value:
    L, P, method, tau, *batch = case.split(":")
    L, B = min(int(L), cfg.l_max), int(batch[0]) if batch else 1
    P = int(P) % L
    if (L, B) not in refs:
      tokens = jax.random.randint(key, (B, L), 0, cfg.vocab_size)
      positions = np.unique(np.concatenate([np.arange(0, L, max(1, L // 1024)),
                                            np.arange(max(0, L - 256), L)]))
      refs = {(L, B): (tokens, positions, forward(gen.params, cfg, tokens,
                                                  filters=gen.filters(L), positions=positions))}
    tokens, positions, ref = refs[L, B]
    t0 = time.perf_counter()
    lg = gen.decode_logits(tokens, P, method=method, tau=tau, positions=positions)
    dense_path = gen.dense_path_for(B)
    row = dict(L=L, P=P, B=B, method=method, tau=tau, dense_path=dense_path,
               sync=gen.dense_sync_for(B),
               matmul_precision="highest", rel_error=rel(lg, ref),
               logit_positions_compared=len(positions), seconds=time.perf_counter() - t0)
    print("verify", row, flush=True)
    results["verify"].append(row)
  jax.config.update("jax_default_matmul_precision", None)


def time_run(gen, plan, consts, make_state, part, reps=2):
  """Median seconds of gen.run over the plan (after a compile run)."""
  t0 = time.perf_counter()
  st, toks, _ = gen.run(plan, consts, make_state(), jax.random.PRNGKey(0), part=part)
  jax.block_until_ready((st, toks))
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(reps):
    s = make_state()
    jax.block_until_ready(s)
    t = time.perf_counter()
    st, toks, _ = gen.run(plan, consts, s, jax.random.PRNGKey(0), part=part)
    jax.block_until_ready((st, toks))
    times.append(time.perf_counter() - t)
  return float(np.median(times)), compile_s


def kernels_per_token(gen, plan, consts, state, part) -> dict:
  """Kernel launches per token of the plan's first full block (see hlo_kernels)."""
  index = next(i for i, b in enumerate(plan.blocks) if b.num_steps == gen.block_size)
  c = hlo_kernels.count(gen.compiled_block_text(plan, consts, state, index, part))
  steps = plan.blocks[index].num_steps
  return dict(kernels_per_token=c.total / steps,
              kernels_by_opcode={k: v / steps for k, v in c.by_opcode.items()},
              kernels_unknown_trip_counts=c.unknown_trip_counts)


def random_state(plan, cfg, B, key):
  M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
  shape = (M, B, D, plan.buffer_length) if plan.method == "flash" else (
      M, B, plan.buffer_length, D)
  # Non-zero data (never time on zeros); a constant avoids the RNG's temporaries at 45 GB.
  return lambda: DecodeState(jnp.full(shape, 0.37, jnp.float32),
                             jnp.zeros((M, B, K - 1, 3 * D), jnp.float32),
                             jnp.ones((B,), jnp.int32), jnp.asarray(plan.start, jnp.int32))


def speed(params, cfg, results, save=lambda: None):
  key = jax.random.PRNGKey(2)
  for unroll in [int(u) for u in _UNROLL.value]:
    gen = Generator(params, cfg, block_size=_BLOCK.value, unroll_layers=bool(unroll))
    for B in [int(b) for b in _BATCH.value]:
      # Clamped to the model (the defaults are for the paper model: --tiny runs them too).
      for L in sorted({min(int(x), cfg.l_max) for x in _SPEED_L.value}):
        for method, tau in [("flash", t) for t in _TAUS.value]:
          plan, consts = gen.plan(method, tau, 1, L)
          parts = _PARTS.value if tau == "hybrid" else ["mixer"]
          for part in parts:
            if unroll != 1 and part != "dense":
              continue
            make_state = random_state(plan, cfg, B, key)
            sec, comp = time_run(gen, plan, consts, make_state, part)
            row = dict(method=method, tau=tau, B=B, L=L, part=part, unroll_layers=unroll,
                       dtype=cfg.dtype, us_per_token=1e6 * sec / (L - 1), compile_s=comp)
            if _COUNT.value:
              row.update(kernels_per_token(gen, plan, consts, make_state(), part))
            print("speed", row, flush=True)
            results["speed"].append(row)
            save()
    if unroll != 1 or not _LAZY_T.value:
      continue
    for B in [int(b) for b in _BATCH.value]:
      for t in sorted({min(int(x), max(1, cfg.l_max - 64)) for x in _LAZY_T.value}):
        for method in ["lazy", "eager"]:
          if method == "lazy":  # cost depends on t: steps t..t+63
            plan = mixers.make_plan("lazy", t, min(t + 64, cfg.l_max), 16)
          else:  # cost depends on L - t: the first 64 steps of a generation from t to l_max
            if B > 1:
              continue  # the full-length eager buffer at B > 1 does not fit next to the rest
            plan = mixers.make_plan("eager", t, cfg.l_max, 16)
            plan = dataclasses.replace(plan, blocks=plan.blocks[:4])
          consts = mixers.make_consts(plan, gen.filters(cfg.l_max))
          sec, comp = time_run(gen, plan, consts, random_state(plan, cfg, B, key), "mixer")
          steps = sum(b.num_steps for b in plan.blocks)
          window = plan.blocks[-1].window
          M, D = cfg.n_layers, cfg.d_model
          per_step = 4 * M * D * window * ((B + 1) if method == "lazy" else (2 * B + 1))
          row = dict(method=method, B=B, t=t, window=window, part="mixer",
                     us_per_token=1e6 * sec / steps, compile_s=comp,
                     gb_per_s=per_step / (sec / steps) / 1e9)
          print("quadratic", row, flush=True)
          results["quadratic"].append(row)
          save()
          del consts


def main(_):
  if _STACKS.value > 0:
    faulthandler.dump_traceback_later(_STACKS.value, repeat=True, file=sys.stderr)
  if not _TINY.value:  # the kernel counts recompile each timed block: a cache hit
    from experiments import registry
    registry.enable_compilation_cache()
  cfg = HyenaConfig(**(dict(PAPER, d_model=16, n_layers=2, d_inner=32, vocab_size=64,
                            l_max=512, filter_order=8, emb_dim=5) if _TINY.value else PAPER),
                    dtype=_DTYPE.value)
  params = init_params(jax.random.PRNGKey(0), cfg)
  dev = jax.devices()[0]
  results = {"device": dev.device_kind, "jax": jax.__version__, "dtype": cfg.dtype,
             "xla_flags": os.environ.get("XLA_FLAGS", ""),
             "verify": [], "speed": [], "quadratic": []}
  if _RATES.value:
    results.update(common.device_rates("cpu" if _TINY.value else "gpu"))
  print({k: v for k, v in results.items() if not isinstance(v, list)}, flush=True)
  out = common.output_path(_OUT.value, "probe.json")

  def save():
    common.write_json_file(out, results)

  if not _SKIP_VERIFY.value:
    verify(Generator(params, cfg, dense_path=common.dense_path()), cfg, results)  # env override
    save()
  if not _SKIP_SPEED.value:
    speed(params, cfg, results, save)
  save()
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
