"""Checks on user input: every failure names the argument and the allowed range."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.ops import tau as tau_ops


def check_tokens(tokens, cfg: HyenaConfig, name: str) -> jax.Array:
  """A (B, L) integer array of ids in [0, vocab_size)."""
  arr = np.asarray(tokens) if not isinstance(tokens, jax.Array) else tokens
  if arr.ndim != 2:
    raise ValueError(f"{name} must be a (batch, length) array, got shape {tuple(arr.shape)}")
  if not jnp.issubdtype(arr.dtype, jnp.integer):
    raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
  if arr.shape[0] < 1:
    raise ValueError(f"{name} must have batch size >= 1, got shape {tuple(arr.shape)}")
  if arr.size:
    # Range-check before any conversion: JAX (x64 off) would wrap int64 ids into int32.
    host = np.asarray(arr)
    lo, hi = int(host.min()), int(host.max())
    if lo < 0 or hi >= cfg.vocab_size:
      raise ValueError(f"{name}: token ids must be in [0, {cfg.vocab_size - 1}] (vocab_size="
                       f"{cfg.vocab_size}), got values in [{lo}, {hi}]")
  return jnp.asarray(arr, jnp.int32)


def check_count(value, name: str, minimum: int = 1) -> int:
  """A plain integer >= minimum (numpy integers accepted, bools refused); returned as int."""
  is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
  if not is_int or value < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
  return int(value)


def check_token_id(value, cfg: HyenaConfig, name: str) -> int:
  """A single token id in [0, vocab_size)."""
  value = check_count(value, name, 0)
  if value >= cfg.vocab_size:
    raise ValueError(f"{name} must be a token id in [0, {cfg.vocab_size - 1}], got {value}")
  return value


def check_positions(positions, length: int) -> np.ndarray:
  """Sorted, unique integer positions in [0, length)."""
  pos = np.asarray(positions)
  if pos.ndim != 1 or not np.issubdtype(pos.dtype, np.integer):
    raise ValueError(f"positions must be a 1-D integer array, got shape {pos.shape}, "
                     f"dtype {pos.dtype}")
  if pos.size and (pos.min() < 0 or pos.max() >= length):
    raise ValueError(f"positions must be in [0, {length - 1}], got values in "
                     f"[{pos.min()}, {pos.max()}]")
  if np.any(np.diff(pos) <= 0):
    raise ValueError("positions must be sorted and unique")
  return pos


def check_length(length: int, cfg: HyenaConfig, what: str = "sequence length"):
  if length > cfg.l_max:
    raise ValueError(f"{what} {length} exceeds the model's l_max={cfg.l_max}; the implicit "
                     "filter is not defined beyond it")


def check_prompt(prompt, cfg: HyenaConfig, prompt_lengths, num_tokens: int) -> jax.Array:
  """A non-empty prompt (B, P), optional per-row lengths (B,) in [1, P], and a length budget."""
  prompt = check_tokens(prompt, cfg, "prompt")
  B, P = prompt.shape
  if P < 1:
    raise ValueError("prompt must hold at least one token per row (got length 0)")
  check_count(num_tokens, "num_tokens")
  check_length(P + num_tokens - 1, cfg, f"prompt length {P} + num_tokens {num_tokens} - 1 =")
  if prompt_lengths is not None:
    lengths = np.asarray(prompt_lengths)
    if lengths.shape != (B,):
      raise ValueError(f"prompt_lengths must have shape (batch,) = ({B},), got {lengths.shape}")
    if not np.issubdtype(lengths.dtype, np.integer):
      raise TypeError(f"prompt_lengths must be integers, got dtype {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > P:
      raise ValueError(f"prompt_lengths must be in [1, {P}] (the padded prompt length), got "
                       f"values in [{lengths.min()}, {lengths.max()}]")
  return prompt


def check_tau(tau: str):
  from flash_lcsm_jax.ops import tau as tau_ops
  if tau != "hybrid":
    tau_ops.get(tau)


def check_finite(x, name: str):
  if not bool(jnp.all(jnp.isfinite(x))):
    raise ValueError(f"{name} contain NaN or Inf")


def check_params(params, cfg: HyenaConfig):
  """Shapes match the config and every weight is finite."""
  from flash_lcsm_jax.models import hyena
  expected = jax.eval_shape(lambda: hyena.init_params(jax.random.PRNGKey(0), cfg))
  exp_flat = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  got_flat = dict(jax.tree_util.tree_flatten_with_path(params)[0])
  fmt = lambda ks: "/".join(str(getattr(k, "key", k)) for k in ks)
  missing = sorted(fmt(k) for k in exp_flat.keys() - got_flat.keys())
  extra = sorted(fmt(k) for k in got_flat.keys() - exp_flat.keys())
  if missing or extra:
    raise ValueError(f"params do not match the config: missing {missing}, unexpected {extra}")
  for path, want in exp_flat.items():
    got = got_flat[path]
    if tuple(got.shape) != tuple(want.shape):
      raise ValueError(f"params[{fmt(path)}] has shape {tuple(got.shape)}, the config needs "
                       f"{tuple(want.shape)}")
    if not jnp.issubdtype(got.dtype, jnp.floating):
      raise TypeError(f"params[{fmt(path)}] must be floating point, got {got.dtype}")
    if got.dtype != want.dtype:
      raise TypeError(f"params[{fmt(path)}] has dtype {got.dtype}, the config (dtype="
                      f"{cfg.dtype!r}) needs {want.dtype}; cast with hyena.cast_params")
  paths = list(exp_flat)
  finite = jax.device_get(_each_finite([got_flat[path] for path in paths]))
  for path, ok in zip(paths, finite):
    if not ok:
      raise ValueError(f"params[{fmt(path)}] contain NaN or Inf")


@jax.jit
def _each_finite(leaves):
  # One executable for the whole tree: checked leaf by leaf, every distinct shape would compile
  # its own isfinite and reduction (~0.1 s each on CPU, at every Generator and forward).
  return [jnp.all(jnp.isfinite(x)) for x in leaves]


def device_memory_limit() -> int | None:
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # CPU backends may not report
    return None
  return None if not stats else stats.get("bytes_limit")


def estimate_generation_bytes(params, cfg: HyenaConfig, plan, batch: int) -> int:
  """Device bytes a generation holds: weights, engine buffer, engine constants, filters."""
  M, D = cfg.n_layers, cfg.d_model
  weights = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(params))
  buffer = 4 * M * batch * D * plan.buffer_length
  filters = 4 * M * D * plan.stop
  return weights + buffer + engine_constant_bytes(cfg, plan) + filters


def engine_constant_bytes(cfg: HyenaConfig, plan) -> int:
  """Bytes of the engine's per-model constants (mixers.make_consts: each tile level's spectra or
  taps in its tau's form, lazy's / eager's filter window), from their shapes alone."""
  # Cached without the blocks (make_consts does not read them): tracing costs ~20-40 ms.
  return _constant_bytes(cfg.n_layers, cfg.d_model, dataclasses.replace(plan, blocks=()))


@functools.lru_cache(maxsize=64)
def _constant_bytes(M: int, D: int, plan) -> int:
  from flash_lcsm_jax.engine import mixers  # the engine imports this module
  filters = jax.ShapeDtypeStruct((M, D, plan.stop), jnp.float32)
  consts = jax.eval_shape(functools.partial(mixers.make_consts, plan), filters)
  return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(consts))


def estimate_working_bytes(cfg: HyenaConfig, plan, batch: int, tuned: bool = True) -> int:
  """Transient device bytes on top of what a generation holds (seen on an 80 GB H100):

  - lazy and eager: XLA's autotuner runs the fusion that reads the whole history on a redzone
    copy of its operands, i.e. one more buffer (30.4 GiB for lazy at B = 8, L = 2^16, where it
    ran out of memory on an H100 in session 20); none with the autotuner off, for the
    process (`autotuner_copies_buffer`) or for this generation's blocks (tuned=False: the
    engine compiles them that way where the copy would not fit, `baseline_untuned`);
  - flash: no such copy (its buffer is touched only by slices, updates, Pallas kernels and
    FFTs, none autotuned; B = 8, L = 2^16 peaked at 47.5 GiB against 49.9 GiB held, session
    19), but its largest FFT tile holds the spectrum, the product, the inverse FFT's output
    and cuFFT's scratch: about 4 spectra of one FFT call (one layer at a time above
    tau.FFT_CHUNK_BYTES).
  """
  M, D = cfg.n_layers, cfg.d_model
  if plan.method != "flash":
    copies = tuned and autotuner_copies_buffer()
    return 4 * M * batch * D * plan.buffer_length if copies else 0
  if not plan.levels:
    return 0
  U = 1 << max(plan.levels)
  spectrum = 8 * M * batch * D * (U + 1)
  if tau_ops.by_layer(M, batch, D, U):
    spectrum //= M
  return 4 * spectrum


# XLA's autotuner level (a DebugOptions field): 0 turns it off. One name for the XLA_FLAGS
# spelling and the per-executable compiler option below.
_AUTOTUNE_OPTION = "xla_gpu_autotune_level"
AUTOTUNE_OFF_FLAG = f"--{_AUTOTUNE_OPTION}=0"


def autotuner_copies_buffer() -> bool:
  """Whether XLA's GPU autotuner is on, so that it runs lazy's / eager's history fusion on a
  copy of the buffer (off: AUTOTUNE_OFF_FLAG, the last --xla_gpu_autotune_level in XLA_FLAGS).
  With it off, lazy ran at the same speed on an H100 (B = 8, L = 2^15: 4.079 ms/token both
  ways, session 20): XLA's default choice for these fusions is the one the autotuner keeps."""
  level = None
  for flag in os.environ.get("XLA_FLAGS", "").split():
    if flag.startswith(f"--{_AUTOTUNE_OPTION}="):
      level = flag.split("=", 1)[1]
  return level != "0"


# How the engine compiles the blocks of a generation that baseline_untuned picks out.
UNTUNED_COMPILER_OPTIONS = {_AUTOTUNE_OPTION: 0}


# The share of JAX's memory pool a generation's estimated peak may take (the rest: the margin
# for what the estimate leaves out).
_POOL_SHARE = 0.9


def _footprint(params, cfg: HyenaConfig, plan, batch: int) -> tuple[int, int, bool]:
  """(bytes the generation holds, its transient bytes, whether the engine compiles its blocks
  without XLA's autotuner): lazy and eager go untuned where the autotuner's copy of the history
  buffer would not fit beside what they hold (_POOL_SHARE of the pool), and then have no copy
  to count."""
  held = estimate_generation_bytes(params, cfg, plan, batch)
  transient = estimate_working_bytes(cfg, plan, batch)
  limit = device_memory_limit()
  untuned = (plan.method != "flash" and autotuner_copies_buffer() and limit is not None
             and held + transient > _POOL_SHARE * limit)
  if untuned:
    transient = estimate_working_bytes(cfg, plan, batch, tuned=False)
  return held, transient, untuned


def baseline_untuned(params, cfg: HyenaConfig, plan, batch: int) -> bool:
  """Whether the engine compiles this generation's blocks without XLA's autotuner
  (UNTUNED_COMPILER_OPTIONS): lazy and eager where the autotuner's copy of the history buffer
  would not fit beside what the generation holds (90% of JAX's pool). Without the autotuner
  XLA keeps its default for these fusions, which is what the autotuner chose where both were
  measured (lazy at B = 8, L = 2^15 on an H100: 4.079 ms/token either way, session 20), and
  lazy at B = 8, L = 2^16 fits an 80 GB card (39.5 GiB instead of 70; its heaviest block
  peaked at 39.7 GiB in session 19: without the copy the estimate is what the generation
  holds, and the 10% of the pool left over is the margin)."""
  return _footprint(params, cfg, plan, batch)[2]


def estimate_peak_bytes(params, cfg: HyenaConfig, plan, batch: int) -> int:
  """What a generation holds plus its transient bytes: what must fit on the device."""
  held, transient, _ = _footprint(params, cfg, plan, batch)
  return held + transient


# "1": check_memory warns instead of refusing (the estimate is meant to err on the large side;
# with this set, a generation that does not fit fails inside XLA instead).
SKIP_MEMORY_CHECK_ENV = "FLASH_LCSM_SKIP_MEMORY_CHECK"


def memory_check_skipped() -> bool:
  """Whether SKIP_MEMORY_CHECK_ENV asks to go on past a failed memory estimate."""
  return os.environ.get(SKIP_MEMORY_CHECK_ENV) == "1"


def check_memory(params, cfg: HyenaConfig, plan, batch: int):
  limit = device_memory_limit()
  held, transient, _ = _footprint(params, cfg, plan, batch)
  need = held + transient
  if limit is None or need <= _POOL_SHARE * limit:
    return
  message = (
      f"generation needs about {need / 2**30:.2f} GiB of device memory ({held / 2**30:.2f} "
      f"GiB held, the rest transient; method={plan.method}, batch={batch}, "
      f"length={plan.stop}); JAX's memory pool has {limit / 2**30:.2f} GiB.")
  if memory_check_skipped():
    warnings.warn(f"{message} Going on: {SKIP_MEMORY_CHECK_ENV}=1.", RuntimeWarning)
    return
  raise MemoryError(
      f"{message} Use a smaller batch or length, or give JAX more of the GPU "
      f"(XLA_PYTHON_CLIENT_MEM_FRACTION, default 0.75, e.g. 0.92); {SKIP_MEMORY_CHECK_ENV}=1 "
      f"tries anyway (the estimate errs on the large side).")


@contextlib.contextmanager
def explain_out_of_memory(params, cfg: HyenaConfig, plan, batch: int):
  """Turns XLA's RESOURCE_EXHAUSTED inside the block (allocating a generation's buffer) into a
  MemoryError that says what the generation needs and what to try.

  The estimate can fit while the allocation fails: XLA's pool (BFC) needs the buffer in one
  piece, and the filter spectra built before it can leave the free memory in pieces (flash at
  B = 8, L = 2^17 on an H200: a 60.75 GiB buffer refused in a 128 GiB pool holding ~24 GiB;
  CUDA's own pool, XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async, ran it)."""
  try:
    yield
  except jax.errors.JaxRuntimeError as err:
    if "RESOURCE_EXHAUSTED" not in str(err):
      raise
    held, transient, _ = _footprint(params, cfg, plan, batch)
    limit = device_memory_limit()
    pool = "unknown" if limit is None else f"{limit / 2**30:.2f} GiB"
    raise MemoryError(
        f"out of device memory allocating the generation's buffer (method={plan.method}, "
        f"batch={batch}, length={plan.stop}): {str(err).splitlines()[0][:200]}. The generation "
        f"needs about {(held + transient) / 2**30:.2f} GiB ({held / 2**30:.2f} held); JAX's "
        f"pool has {pool}. Where that fits, the pool is in pieces: try "
        "XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async (CUDA's stream-ordered pool); else a smaller "
        "batch or length, or a larger XLA_PYTHON_CLIENT_MEM_FRACTION.") from err
