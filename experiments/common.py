"""What every benchmark shares: model sizes, the timing harness, device rates, JSON and plots.

Timing follows DESIGN section 8: same process, side by side, compile first, block_until_ready,
medians of several repeats. Generation times come from a *reference* plan per (model, method,
batch, part): the longest length that fits (up to REF_MAX), compiled once; a generation of any
shorter length L runs the blocks of L's own plan on the reference's executables. Each length is
timed in one of two ways:

  full        its blocks run back to back from a fresh state, as `Generator.run` does.
  integrated  each distinct compiled block (its key: tile levels and static window) is timed on
              its own, and the total is the sum over the blocks. A block's cost depends only on
              its key (positions enter as dynamic offsets), so this is the integral of the
              per-step cost over t. Flash times every key; lazy and eager (two windows per
              octave) time up to `max_keys` windows spread over the range and interpolate the
              per-step cost linearly in the window for the rest.

Every length gets the integral; a full run is added where its cost (compilation included) fits
the point's budget, and the shortest length is always run in full, so the JSON records the
relative difference of integral and full run (the check of the integral at a smaller L).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import json
import math
import os
import statistics
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import HyenaConfig, Generator, init_params, validation
from flash_lcsm_jax.cli import environment as _cli_environment
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.engine.generation import DENSE_PATHS, DecodeState
from flash_lcsm_jax.engine.schedule import NO_TILE
from flash_lcsm_jax.ops import tau as tau_ops

SIZES = ("gpu", "cpu")
# Steps per compiled block (Generator.block_size): FLASH_LCSM_BLOCK overrides it for every
# experiment (recorded in the JSON configs); the long convolutions alone are bound by the host's
# cost per executable call, which larger blocks spread over more steps.
BLOCK_ENV = "FLASH_LCSM_BLOCK"
BLOCK_SIZE = int(os.environ.get(BLOCK_ENV, "") or 16)
if BLOCK_SIZE < 1 or BLOCK_SIZE & (BLOCK_SIZE - 1):
  raise ValueError(f"{BLOCK_ENV} must be a power of two, got {BLOCK_SIZE}")
# Longest reference plan per size (halved until it fits the device); keep it shared by all
# experiments so they reuse each other's executables through the compilation cache.
REF_MAX = {"gpu": 2**17, "cpu": 128}
# The CPU variant every test runs: a model small enough to compile and run in seconds.
CPU_MODEL = dict(vocab_size=64, d_model=16, n_layers=2, d_inner=32, l_max=512, filter_order=8,
                 emb_dim=5)


def check_size(size: str):
  if size not in SIZES:
    raise ValueError(f"size must be one of {SIZES}, got {size!r}")


# ----------------------------------------------------------------------------- models


def model_config(size: str, **overrides) -> HyenaConfig:
  """Paper-size Hyena (configs/paper.py) for "gpu", the tiny CPU model for "cpu"."""
  check_size(size)
  if size == "gpu":
    from configs import paper  # needs ml_collections, like run.py itself
    base = paper.get_config().model.to_dict()
  else:
    base = dict(CPU_MODEL)
  return HyenaConfig.from_mapping({**base, **overrides})


# "1" / "0" forces the per-token layer loop unrolled / scanned in every experiment (recorded in
# each JSON's config); unset: the Generator's default (unrolled on GPU for batches >= 4). A
# scanned block compiles 4-5x faster, which is what makes the B = 8 experiments fit a session.
UNROLL_ENV = "FLASH_LCSM_UNROLL_LAYERS"


def _switch(name: str) -> bool | None:
  """An environment switch: "1" True, "0" False, unset None (the Generator's default)."""
  value = os.environ.get(name, "")
  if value not in ("", "0", "1"):
    raise ValueError(f"{name} must be 0, 1 or unset, got {value!r}")
  return None if value == "" else value == "1"


def unroll_layers() -> bool | None:
  return _switch(UNROLL_ENV)


# "xla" / "fused" / "persistent" forces the Generator's per-token dense path in every experiment (recorded in
# each JSON's config); unset: the Generator's default (Generator.dense_path_for).
DENSE_ENV = "FLASH_LCSM_DENSE"


def _env_choice(name: str, choices: tuple[str, ...]) -> str | None:
  """An environment choice: one of `choices`, or None where unset (the Generator's default)."""
  value = os.environ.get(name, "")
  if value not in ("",) + choices:
    raise ValueError(f"{name} must be one of {choices} or unset, got {value!r}")
  return value or None


def dense_path() -> str | None:
  return _env_choice(DENSE_ENV, DENSE_PATHS)


# "xla" / "pallas" picks how the lazy and eager baselines stream their buffers
# (Generator.baseline_kernels) in every experiment (recorded in each JSON's environment and
# config); unset: the Generator's default.
BASELINE_ENV = "FLASH_LCSM_BASELINE_KERNELS"


def baseline_kernels() -> str | None:
  return _env_choice(BASELINE_ENV, mixers.BASELINE_KERNELS)


# "1" / "0" forces lazy / eager blocks to unroll / scan their steps (recorded in each JSON);
# unset: the Generator's default (unrolled with the fused or persistent dense path). Scanned steps compile
# once per block instead of once per step: what makes lazy with the fused path fit at B = 8.
UNROLL_STEPS_ENV = "FLASH_LCSM_UNROLL_STEPS"


def unroll_steps() -> bool | None:
  return _switch(UNROLL_STEPS_ENV)


def generator(cfg: HyenaConfig, seed: int = 0, block_size: int | None = None) -> Generator:
  """A Generator over random parameters (timings do not depend on the weights' values);
  block_size: steps per compiled block (None: BLOCK_SIZE, i.e. FLASH_LCSM_BLOCK or 16)."""
  return Generator(random_params(cfg, seed), cfg, block_size or BLOCK_SIZE,
                   unroll_layers=unroll_layers(), dense_path=dense_path(),
                   unroll_steps=unroll_steps(), baseline_kernels=baseline_kernels())


def engine_config(gen: Generator, batch: int) -> dict:
  """The engine choices a JSON's config records: layer loop, dense path, baseline kernels."""
  return {"unroll_layers": gen.unroll_layers, "dense_path": gen.dense_path_for(batch),
          "baseline_kernels": gen.baseline_kernels or "xla"}


@functools.lru_cache(maxsize=2)
def random_params(cfg: HyenaConfig, seed: int = 0):
  # One compiled init with the "rbg" generator: op-by-op threefry compiles a kernel per shape,
  # which costs seconds on CPU.
  return jax.jit(init_params, static_argnums=1)(jax.random.key(seed, impl="rbg"), cfg)


# Flash variants: label -> (tau, hybrid table). "X+fft" runs tau X at every level it supports
# and fft above, so every tau gets a full generation at any length.
def flash_variants(labels: Sequence[str] | None = None) -> dict[str, tuple[str, dict | None]]:
  # hybrid: the device's calibrated table; hybrid_default: the built-in table (what a device
  # without a calibration gets), to check that calibrating pays.
  out = {"hybrid": ("hybrid", None), "hybrid_default": ("hybrid", dict(tau_ops.DEFAULT_HYBRID))}
  first = ("fft", "matmul", "direct")  # the XLA ones first: an experiment's budget may end early
  for name in sorted(tau_ops.names(), key=lambda n: (n not in first, first.index(n)
                                                      if n in first else 0, n)):
    impl = tau_ops.get(name)
    if name == "fft":
      out["fft"] = ("fft", None)
    else:
      out[f"{name}+fft"] = ("hybrid", {q: name for q in range(impl.max_level + 1)})
  if labels is None:
    return out
  unknown = sorted(set(labels) - set(out))
  if unknown:
    raise ValueError(f"unknown flash variants {unknown}; available: {sorted(out)}")
  return {k: out[k] for k in labels}


def method_label(method: str, variant: str | None) -> str:
  return method if method != "flash" else f"flash/{variant}"


class Budget:
  """Wall-clock budget of one experiment: work not started in time is recorded as skipped, so
  an experiment stays within its share of a device session."""

  def __init__(self, seconds: float | None):
    self.seconds, self.started = seconds, time.perf_counter()

  def spent(self) -> str | None:
    if self.seconds is not None and time.perf_counter() - self.started > self.seconds:
      return f"not started: the experiment's time budget ({self.seconds:.0f} s) was spent"
    return None


# ----------------------------------------------------------------------------- device rates


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
  jax.block_until_ready(fn())  # compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def marginal_ms(many: Callable[[], Any], one: Callable[[], Any], tokens: int,
                repeats: int) -> tuple[float, float, float]:
  """(ms per token, ms of `many`, ms of `one`): `many` runs `tokens` dependent tokens in one
  call, `one` a single token; their difference leaves out each call's fixed cost (dispatch,
  buffer copies). Medians of `repeats` calls each, `many` first."""
  many_ms = median_seconds(many, repeats) * 1e3
  one_ms = median_seconds(one, repeats) * 1e3
  return (many_ms - one_ms) / (tokens - 1), many_ms, one_ms


COPY_PASSES = 8


def copy_seconds(n: int, repeats: int = 10, warmups: int = 3) -> tuple[float, list]:
  """(median, all) seconds of one pass over n float32 values (each read once, written once,
  in place): COPY_PASSES passes per timed call, so the call's host dispatch (~1e-5 s, about 5%
  of a single 1 GiB pass) is amortised, after `warmups` untimed calls that also bring an idle
  card's clocks up (session 26 measured 1.79 TB/s from a single-pass median right after an idle
  spell, 2.45-2.60 in other processes on the same kind of card)."""
  passes = jax.jit(lambda a: jax.lax.fori_loop(0, COPY_PASSES, lambda i, v: v + 1.0, a),
                   donate_argnums=0)
  x = jnp.zeros((n,), jnp.float32)
  for _ in range(warmups):
    x = jax.block_until_ready(passes(x))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    x = jax.block_until_ready(passes(x))
    times.append((time.perf_counter() - start) / COPY_PASSES)
  del x
  return statistics.median(times), times


@functools.lru_cache(maxsize=None)
def device_rates(size: str) -> dict:
  """Stream bandwidth (read + write of a large array, copy_seconds) and float32 matmul rates,
  once a run."""
  n = (1 << 28) if size == "gpu" else (1 << 22)  # 1 GiB on the GPU
  copy_s, copy_times = copy_seconds(n)
  N = 8192 if size == "gpu" else 512
  a = jnp.ones((N, N), jnp.float32)
  rates = {}
  for label, precision in (("default", None), ("highest", jax.lax.Precision.HIGHEST)):
    mm = jax.jit(lambda u, v, p=precision: jnp.dot(u, v, precision=p))
    rates[label] = 2 * N**3 / median_seconds(lambda: mm(a, a), 5) / 1e12
  return {"copy_bandwidth_GBps": 2 * 4 * n / copy_s / 1e9, "copy_bytes": 2 * 4 * n,
          "copy_bandwidth_GBps_spread": [2 * 4 * n / max(copy_times) / 1e9,
                                         2 * 4 * n / min(copy_times) / 1e9],
          "copy_passes": COPY_PASSES,
          "matmul_tflops": rates["default"], "matmul_tflops_highest": rates["highest"],
          "matmul_n": N}


def environment(size: str, rates: bool = True) -> dict:
  env = _cli_environment()
  env["devices"] = len(jax.devices())
  stats = _memory_stats()
  env["memory_limit_bytes"] = stats.get("bytes_limit") if stats else None
  for var in ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR",
              "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_FLAGS", UNROLL_ENV, DENSE_ENV,
              BLOCK_ENV, UNROLL_STEPS_ENV, BASELINE_ENV):
    env[var] = os.environ.get(var)  # None: unset, the default
  if rates:
    env.update(device_rates(size))
  return env


def _memory_stats() -> dict | None:
  try:
    return jax.devices()[0].memory_stats()
  except Exception:  # not every backend reports
    return None


def peak_bytes_in_use() -> int | None:
  stats = _memory_stats()
  return None if not stats else stats.get("peak_bytes_in_use")


# ----------------------------------------------------------------------------- running blocks


def zero_state(gen: Generator, plan: mixers.Plan, batch: int, position: int) -> DecodeState:
  """A decode state of the plan's layout at `position`, all zeros (timing only; the buffer
  fills with real mixer inputs as the timed steps run)."""
  cfg = gen.cfg
  M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
  with validation.explain_out_of_memory(gen.params, cfg, plan, batch):
    buffer = jnp.zeros(mixers.buffer_shape(plan, batch, M, D), jnp.float32)
  return DecodeState(buffer,
                     jnp.zeros((M, batch, K - 1, 3 * D), jnp.float32),
                     jnp.zeros((batch,), jnp.int32), jnp.asarray(position, jnp.int32))


def run_blocks(gen: Generator, plan: mixers.Plan, consts, batch: int, blocks: Sequence,
               part: str = "all", state: DecodeState | None = None) -> float:
  """Seconds to run `blocks` back to back (with the plan's executables) from `state` (default:
  a fresh zero state; it is donated), until the final state, including any block-boundary
  tile, is ready."""
  if state is None:
    state = zero_state(gen, plan, batch, blocks[0].first)
  jax.block_until_ready(state)
  sub = dataclasses.replace(plan, blocks=tuple(blocks))
  start = time.perf_counter()
  state, _, _ = gen.run(sub, consts, state, jax.random.PRNGKey(0), part=part)
  jax.block_until_ready(state)
  return time.perf_counter() - start


def run_blocks_synced(gen: Generator, plan: mixers.Plan, consts, batch: int, blocks: Sequence,
                      part: str = "all") -> list[float]:
  """Seconds of each block when every block is waited for before the next is issued."""
  state = zero_state(gen, plan, batch, blocks[0].first)
  jax.block_until_ready(state)
  rng, out = jax.random.PRNGKey(0), []
  for block in blocks:
    sub = dataclasses.replace(plan, blocks=(block,))
    start = time.perf_counter()
    state, _, _ = gen.run(sub, consts, state, rng, part=part)
    jax.block_until_ready(state)
    out.append(time.perf_counter() - start)
  return out


@dataclasses.dataclass
class KeyTiming:
  """Median seconds of one compiled block, and how many blocks of the plan share its key."""
  levels: tuple[int, ...]
  window: int
  count: int
  first: int  # position of the first block with this key
  seconds: float
  copies: int  # blocks run back to back per repeat

  @property
  def key(self) -> tuple:
    return (self.levels, self.window)

  @property
  def steps(self) -> int:
    return len(self.levels)

  @property
  def per_step_s(self) -> float:
    return self.seconds / self.steps


def block_groups(blocks: Sequence) -> dict[tuple, list]:
  """Blocks by compiled key, in order of first appearance."""
  groups: dict[tuple, list] = {}
  for block in blocks:
    groups.setdefault(block.key, []).append(block)
  return groups


def _sampled(keys: list[tuple], groups, max_keys: int | None) -> list[tuple]:
  if max_keys is None or len(keys) <= max_keys:
    return keys
  keys = sorted(keys, key=lambda k: (groups[k][0].window, len(k[0])))
  picks = np.unique(np.linspace(0, len(keys) - 1, max(max_keys, 2)).round().astype(int))
  return [keys[i] for i in picks]


def time_keys(gen: Generator, plan: mixers.Plan, consts, batch: int, part: str, *,
              repeats: int, max_keys: int | None, min_seconds: float,
              blocks: Sequence | None = None) -> tuple[list[KeyTiming], float]:
  """Times the distinct blocks of `blocks` (default: the plan's) with the plan's executables:
  every key for flash, up to max_keys windows spread over the range for lazy / eager.

  Returns the timings and the warm-up seconds (compilation plus one run per key).
  """
  groups = block_groups(plan.blocks if blocks is None else blocks)
  keys = list(groups)
  if plan.method != "flash":
    keys = _sampled(keys, groups, max_keys)
  timings, warm = [], 0.0
  for key in keys:
    blocks = groups[key]
    warm += run_blocks(gen, plan, consts, batch, blocks[:1], part)
    single = run_blocks(gen, plan, consts, batch, blocks[:1], part)
    copies = int(min(32, max(1, math.ceil(min_seconds / max(single, 1e-9)))))
    seq = [blocks[j % len(blocks)] for j in range(copies)]
    secs = [run_blocks(gen, plan, consts, batch, seq, part) / copies for _ in range(repeats)]
    b = blocks[0]
    timings.append(KeyTiming(b.levels, b.window, len(blocks), b.first, statistics.median(secs),
                             copies))
  return timings, warm


def integrate(blocks: Sequence, timings: list[KeyTiming]) -> float:
  """Total seconds of `blocks` from per-key timings; interpolated linearly in the window
  (per step) for keys that were not timed, which only lazy and eager need."""
  by_key = {t.key: t for t in timings}
  groups = block_groups(blocks)
  if all(k in by_key for k in groups):
    return sum(by_key[k].seconds * len(bl) for k, bl in groups.items())
  if any(k[0][-1] != NO_TILE for k in groups):
    raise ValueError("flash blocks can only be integrated from timings of their own keys")
  order = sorted(timings, key=lambda t: t.window)
  windows = np.array([t.window for t in order], float)
  per_step = np.array([t.per_step_s for t in order])
  return float(sum(np.interp(b.window, windows, per_step) * b.num_steps for b in blocks))


def fits(gen: Generator, plan: mixers.Plan, batch: int, headroom: float = 0.85) -> str | None:
  """None if the generation fits the device's memory, else the reason it does not."""
  need = validation.estimate_peak_bytes(gen.params, gen.cfg, plan, batch)
  limit = validation.device_memory_limit()
  if limit is not None and need > headroom * limit:
    reason = f"needs about {need / 2**30:.1f} GiB, device has {limit / 2**30:.1f} GiB"
    if validation.memory_check_skipped():  # measure instead of refusing
      print(f"{reason}; going on ({validation.SKIP_MEMORY_CHECK_ENV}=1)", flush=True)
      return None
    return reason
  return None


# ----------------------------------------------------------------------------- length sweeps


@dataclasses.dataclass
class Reference:
  """One compiled plan (the longest that fits, up to ref_max) whose executables time every
  shorter generation of the same method, batch and part.

  A generation of length L runs the blocks of make_plan(method, 0, L) — the same keys as the
  reference's first blocks (flash, lazy) or with windows from the same ladder (eager) — so it
  reuses the reference's executables (the buffer is longer, which no step reads beyond its
  window). One compilation then serves every length, and experiments that share a reference
  (same model, batch, part) share compiled executables through the compilation cache.
  """
  gen: Generator
  method: str
  variant: str | None
  batch: int
  part: str
  tau: str
  table: dict | None
  plan: mixers.Plan
  consts: Any
  timings: list[KeyTiming]
  warmup_s: float
  compiled: set

  def blocks(self, length: int) -> tuple:
    return mixers.make_plan(self.method, 0, length, self.gen.block_size, self.tau,
                            self.table).blocks


def variant_spec(method: str, variant: str | None, batch: int) -> tuple[str, dict | None]:
  """(tau, hybrid table) the Generator uses for this method / flash variant and batch."""
  if method != "flash":
    return "hybrid", None
  tau, table = flash_variants([variant])[variant]
  if tau == "hybrid" and table is None:  # the device's calibrated table, as Generator.plan
    from flash_lcsm_jax.ops import calibration
    table = calibration.table_for(batch)
  return tau, table


def reference(gen: Generator, method: str, variant: str | None, batch: int, part: str, *,
              ref_max: int, repeats: int, max_keys: int | None,
              min_seconds: float = 0.05) -> Reference | str:
  """Compiles and times the reference plan; returns the reason instead if none fits."""
  tau, table = variant_spec(method, variant, batch)
  gen.hybrid_table = table
  length, reason = ref_max, None
  while length >= gen.block_size:
    reason = fits(gen, mixers.make_plan(method, 0, length, gen.block_size, tau, table), batch)
    if reason is None:
      break
    length //= 2
  if reason:
    return reason
  plan, consts = gen.plan(method, tau, 0, length, batch)
  timings, warm = time_keys(gen, plan, consts, batch, part, repeats=repeats,
                            max_keys=max_keys, min_seconds=min_seconds)
  return Reference(gen, method, variant, batch, part, tau, table, plan, consts, timings, warm,
                   {t.key for t in timings})


def measure_length(ref: Reference, length: int, *, repeats: int, full_budget_s: float,
                   force_full: bool = False, min_seconds: float = 0.05) -> dict:
  """Time of generating `length` positions from position 0 with the reference's executables.

  The integral of the per-key timings always; full runs (median of up to `repeats`) when their
  estimated cost, compilation of missing keys included, fits full_budget_s, or force_full.
  Returns a record: seconds (full-run median, else the integral), per_token_s, tokens_per_s,
  integrated, integrated_s, full_s, integration_rel_diff, warmup_s, keys.
  """
  record = {"method": ref.method, "variant": ref.variant,
            "label": method_label(ref.method, ref.variant), "length": length,
            "batch": ref.batch, "part": ref.part, "steps": length,
            "reference_length": ref.plan.stop, "tau_by_level": dict(ref.plan.tau_by_level),
            # lazy / eager blocks compiled without XLA's autotuner (no room for its buffer copy)
            "untuned_blocks": validation.baseline_untuned(ref.gen.params, ref.gen.cfg, ref.plan,
                                                          ref.batch)}
  if length > ref.plan.stop:
    return {**record, "skipped": f"longer than the longest length that fits ({ref.plan.stop})"}
  blocks = ref.blocks(length)
  groups = block_groups(blocks)
  warm = 0.0
  if ref.method == "flash":  # e.g. a partial last block when L is not a multiple of 16
    missing = [k for k in groups if k not in ref.compiled]
    if missing:
      more, warm = time_keys(ref.gen, ref.plan, ref.consts, ref.batch, ref.part,
                             repeats=repeats, max_keys=None, min_seconds=min_seconds,
                             blocks=[groups[k][0] for k in missing])
      ref.timings += more
      ref.compiled |= {t.key for t in more}
  estimate = integrate(blocks, ref.timings)
  untimed = [k for k in groups if k not in ref.compiled]
  compile_each = ref.warmup_s / max(len(ref.timings), 1)
  full_repeats = min(repeats, int((full_budget_s - compile_each * len(untimed)) // estimate))
  if force_full:
    full_repeats = max(full_repeats, 1)
  full = []
  if full_repeats >= 1:
    for key in untimed:  # compile the rest before timing the whole generation
      warm += run_blocks(ref.gen, ref.plan, ref.consts, ref.batch, groups[key][:1], ref.part)
      ref.compiled.add(key)
    full = [run_blocks(ref.gen, ref.plan, ref.consts, ref.batch, blocks, ref.part)
            for _ in range(full_repeats)]
  seconds = statistics.median(full) if full else estimate
  in_range = [t for t in ref.timings if t.first < length or ref.method == "eager"]
  return {**record, "seconds": seconds, "per_token_s": seconds / length,
          "tokens_per_s": ref.batch * length / seconds, "integrated": not full,
          "integrated_s": estimate, "full_s": full,
          "integration_rel_diff": (estimate - seconds) / seconds if full else None,
          "warmup_s": ref.warmup_s + warm,
          "keys": [_key_record(t, ref.method, ref.gen.cfg, ref.batch) for t in in_range]}


def sweep_lengths(gen: Generator, method: str, variant: str | None, lengths: Sequence[int],
                  batch: int, part: str = "all", *, ref_max: int, repeats: int = 3,
                  full_budget_s: float = 20.0, max_keys: int | None = 6,
                  check: bool = True) -> list[dict]:
  """Records for every length (ascending). check: run the shortest length in full even over
  budget, so the integral is checked against a full run at least once."""
  lengths = sorted(lengths)
  base = {"method": method, "variant": variant, "label": method_label(method, variant),
          "batch": batch, "part": part}
  try:
    ref = reference(gen, method, variant, batch, part, ref_max=max(ref_max, lengths[-1]),
                    repeats=repeats, max_keys=max_keys)
  except Exception as err:  # e.g. out of device memory: keep the rest of the experiment
    return [{**base, "length": L, "error": error_text(err)} for L in lengths]
  if isinstance(ref, str):
    return [{**base, "length": L, "skipped": ref} for L in lengths]
  records = []
  for L in lengths:
    try:
      records.append(measure_length(ref, L, repeats=repeats, full_budget_s=full_budget_s,
                                    force_full=check and L == lengths[0]))
    except Exception as err:
      records.append({**base, "length": L, "error": error_text(err)})
  return records


def error_text(err: BaseException, limit: int = 300) -> str:
  """One line for a JSON record: the exception's type and the start of its message."""
  return f"{type(err).__name__}: {str(err)[:limit]}"


def jaxlib_version() -> str:
  try:
    return importlib.metadata.version("jaxlib")
  except Exception:  # pylint: disable=broad-except
    return "?"


def max_relative_error(got, want) -> float:
  """max |got - want| / max |want|, in float64."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def _key_record(t: KeyTiming, method: str, cfg: HyenaConfig, batch: int) -> dict:
  rec = dataclasses.asdict(t)
  rec.update(steps=t.steps, last_level=t.levels[-1], per_step_s=t.per_step_s)
  del rec["levels"]
  if method == "lazy":  # the history window and the filter window, read every step
    read = 4 * cfg.n_layers * t.window * cfg.d_model * (batch + 1)
    rec["history_read_bytes"] = read
    rec["history_read_GBps"] = read / t.per_step_s / 1e9
  return rec


def integration_checks(records: list[dict]) -> list[dict]:
  """Relative differences of integral vs full run, wherever both were measured."""
  return [{k: r[k] for k in ("label", "length", "batch", "part", "integration_rel_diff")}
          for r in records if r.get("integration_rel_diff") is not None]


# ----------------------------------------------------------------------------- tile timing


def time_chain(fn: Callable, consts, seg: jax.Array, chain: int, repeats: int) -> float:
  """Seconds per call of fn(consts, seg) -> like seg, over `chain` dependent calls in one jit.

  Each call's input depends on the last output (seg <- seg/2 + out/1000, like the engine's
  accumulate into pending outputs), so nothing is hoisted and launch overhead is amortised.
  """
  @jax.jit
  def run(c, s):
    for _ in range(chain):
      s = 0.5 * s + 1e-3 * fn(c, s)
    return s

  return median_seconds(lambda: run(consts, seg), repeats) / chain


# ----------------------------------------------------------------------------- JSON


def payload(name: str, size: str, config: dict, records: list[dict], started: float,
            env: dict | None = None, **extra) -> dict:
  """The JSON every experiment writes: environment, config, records, wall time."""
  env = env or environment(size)
  return {"experiment": name, "size": size, "environment": env, "dtype": config.get(
      "model", {}).get("dtype", "float32"), "matmul_precision": env["matmul_precision"],
          "config": config, "records": records, "wall_s": time.perf_counter() - started, **extra}


class Progress(list):
  """An experiment's record list that rewrites outdir/NAME.json ("complete": false) after every
  record, so a run stopped by its time limit still leaves what it measured. The experiment's
  final write_json replaces it with the complete payload."""

  def __init__(self, outdir: str, name: str, size: str, started: float):
    super().__init__()
    self._where = (outdir, name, size, started)
    self._env = None
    self.config: dict = {}  # set by the experiment once known, so partial JSON describes itself

  def _save(self):
    outdir, name, size, started = self._where
    self._env = self._env or environment(size, rates=False)
    write_json(outdir, name, payload(name, size, self.config, list(self), started, env=self._env,
                                     complete=False), quiet=True)

  def append(self, rec):
    super().append(rec)
    self._save()

  def extend(self, recs):
    super().extend(recs)
    self._save()

  def __iadd__(self, recs):
    self.extend(recs)
    return self


def write_json(outdir: str, name: str, data: dict, quiet: bool = False) -> str:
  path = write_json_file(os.path.join(outdir, f"{name}.json"), data)
  if not quiet:
    print(f"[{name}] wrote {path} ({data.get('wall_s', 0):.1f} s)", flush=True)
  return path


def write_json_file(path: str, data: dict) -> str:
  """Writes `data` to `path` atomically (a reader never sees half a file: the programs rewrite
  their JSON after every record), creating its folder."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=1, default=_jsonable)
  os.replace(tmp, path)
  return path


def _jsonable(x):
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(f"not JSON serialisable: {type(x)}")


def output_path(flag_value: str | None, filename: str) -> str:
  """Where a standalone GPU program writes: its --out flag, else $OUT (the device tool's
  return folder), else results/."""
  if flag_value:
    return flag_value
  return os.path.join(os.environ.get("OUT") or "results", filename)


def read_json(results_dir: str, name: str) -> dict | None:
  path = os.path.join(results_dir, f"{name}.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def log(name: str, msg: str):
  print(f"[{name}] {msg}", flush=True)


def ok(rec: dict) -> bool:
  return "seconds" in rec


def describe(rec: dict) -> str:
  if not ok(rec):
    why = rec.get("skipped") or rec.get("error")
    return f"{rec['label']:16s} L={rec['length']:7d} B={rec['batch']:3d} not run: {why}"
  how = ("integrated" if rec["integrated"] else f"full x{len(rec['full_s'])}") + (
      f"; compile+warm-up {rec['warmup_s']:.1f} s; {len(rec['keys'])} keys timed")
  diff = rec.get("integration_rel_diff")
  return (f"{rec['label']:16s} L={rec['length']:7d} B={rec['batch']:3d} {rec['part']:5s} "
          f"{rec['seconds']:9.3f} s  {rec['per_token_s'] * 1e3:8.3f} ms/token ({how}"
          + (f", integral {diff:+.1%}" if diff is not None else "") + ")")


# ----------------------------------------------------------------------------- plots


def pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def subtitle(data: dict) -> str:
  env = data["environment"]
  return (f"{env['device']} · jax {env['jax']} · {data['dtype']} · matmul precision "
          f"{env['matmul_precision']}")


def save_figure(fig, path: str):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120, bbox_inches="tight")
  pyplot().close(fig)


_PALETTE = {"lazy": "tab:red", "eager": "tab:orange", "flash/hybrid": "tab:blue",
            "flash/fft": "tab:green", "flash/matmul+fft": "tab:purple",
            "flash/direct+fft": "tab:brown", "flash/pallas+fft": "tab:pink"}
_SPARE = ["tab:cyan", "tab:olive", "tab:gray", "black", "gold", "navy"]


def log_axes(ax, xlabel: str, ylabel: str | None = None, title: str | None = None,
             ylog: bool = True, title_size: float | None = None):
  """The figures' axes: x on log2 (lengths, tile sizes), y on log10 unless ylog=False, grid."""
  ax.set_xscale("log", base=2)
  if ylog:
    ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  if ylabel is not None:
    ax.set_ylabel(ylabel)
  if title is not None:
    ax.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
  ax.grid(True, which="both", alpha=0.3)


def line_style(label: str) -> dict:
  """Stable colours and markers per method label across figures."""
  if label not in _PALETTE:
    _PALETTE[label] = _SPARE[(len(_PALETTE) - 7) % len(_SPARE)]
  return {"color": _PALETTE[label], "marker": "o", "markersize": 4}
