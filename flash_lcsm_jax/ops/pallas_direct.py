"""tau "pallas": the direct tile convolution as one Pallas kernel per tile level.

A level-q tile (U = 2^q) computes, for every layer m, batch row b and channel d,

  out[m, b, d, j] = sum_{k < U} taps[m, d, U + j - k] * seg[m, b, d, k],   j < U

(taps = h_0..h_{2U-1}, see `tau.taps`). All layers, batch rows and channels of a level run in ONE
launch: the grid is (M, channel blocks, batch blocks); a program holds `batch_block` rows of
`channel_block` channels and loops over the U input lags in static Python, so one (channels, U)
load of lagged taps serves every batch row of the block. Accumulation is float32 whatever the
input dtype. Channel padding happens in the wrapper (`prepare` pads the taps once per model), so the
body has no masks.

Three parts, as for every kernel of the package:
  `reference` (tau.reference, plain jnp), `direct_pallas` (the kernel, frozen block configs per
  level, `interpret` static) and `direct_conv` (the dispatcher: Triton on GPU, interpret mode on
  CPU, the XLA Toeplitz product where Pallas cannot run; it logs once which it used).

Shape letters: M layers, B batch, D channels, U tile size, Dp channels padded to the block.

Version notes (jax 0.10 / 0.11): the default GPU lowering of `pallas_call` is Mosaic GPU
(`jax_pallas_use_mosaic_gpu` defaults to True), so the kernel names the Triton backend through
`jax.experimental.pallas.triton.CompilerParams` (called `TritonCompilerParams` in older releases);
Triton needs every loaded block to have a power-of-two size, hence power-of-two channel and batch
blocks; 0.11 warns that the Pallas Triton backend is deprecated.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import tau as tau_ops

try:
  from jax.experimental import pallas as pl
except ImportError:  # A jax build without Pallas: every kernel falls back to XLA.
  pl = None

log = logging.getLogger(__name__)

IMPLEMENTATIONS = ("pallas", "interpret", "xla")
MAX_LEVEL = 6  # U = 64: beyond it the O(U^2) direct product loses to the DFT/FFT taus.

# jax >= 0.11 warns on every Triton lowering; the kernels name Triton on purpose (see above).
warnings.filterwarnings("ignore", message="The Pallas Triton backend is deprecated",
                        category=DeprecationWarning)


# ----------------------------------------------------------------------------- shared helpers


@dataclasses.dataclass(frozen=True)
class BlockConfig:
  """Frozen launch configuration of one tile level (hashable: passed to jit as static).

  channel_block and batch_block are upper bounds: `resolve_blocks` shrinks them to powers of two
  that fit the actual D and B.
  """
  channel_block: int
  batch_block: int
  num_warps: int = 4
  num_stages: int = 1


# About 4K float32 accumulators per program (32 registers a thread at 4 warps) at every level.
DIRECT_CONFIGS: dict[int, BlockConfig] = {
    0: BlockConfig(channel_block=256, batch_block=8, num_warps=2),
    1: BlockConfig(channel_block=256, batch_block=8, num_warps=4),
    2: BlockConfig(channel_block=128, batch_block=8),
    3: BlockConfig(channel_block=64, batch_block=8),
    4: BlockConfig(channel_block=32, batch_block=8),
    5: BlockConfig(channel_block=32, batch_block=4),
    6: BlockConfig(channel_block=32, batch_block=2),
}


def _largest_pow2_divisor(n: int) -> int:
  return n & -n


def next_pow2(n: int) -> int:
  return 1 << max(0, (n - 1).bit_length())


def round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def channel_block(num_channels: int, preferred: int, minimum: int = 16) -> int:
  """Channels per program: a power of two <= preferred.

  Prefers a block that divides D (no padding copies around the kernel; D = 864 gives 32) and pads
  only when D's largest power-of-two divisor is below `minimum`.
  """
  divisor = _largest_pow2_divisor(num_channels)
  if divisor >= minimum:
    return min(divisor, preferred)
  return min(preferred, max(minimum, next_pow2(num_channels)))


def padded_channels(num_channels: int, block: int) -> int:
  return round_up(num_channels, block)


def batch_block(batch: int, preferred: int) -> int:
  """Batch rows per program: the largest power of two dividing B, at most `preferred`."""
  return min(_largest_pow2_divisor(batch), preferred)


def pad_axis(x: jax.Array, axis: int, size: int) -> jax.Array:
  if x.shape[axis] == size:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, widths)


def triton_compiler_params(num_warps: int, num_stages: int) -> Any:
  """Triton compiler params under whichever name this jax spells them."""
  from jax.experimental.pallas import triton as pl_triton  # pylint: disable=g-import-not-at-top
  for name in ("CompilerParams", "TritonCompilerParams"):
    cls = getattr(pl_triton, name, None) or getattr(pl, name, None)
    if cls is not None and "triton" in getattr(cls, "__module__", ""):
      return cls(num_warps=num_warps, num_stages=num_stages)
  return dict(triton=dict(num_warps=num_warps, num_stages=num_stages))  # jax < 0.4.31


def _backend() -> str:
  return jax.default_backend()


_LOGGED: set[tuple[str, str]] = set()
# Kernel key ("direct U=8") -> implementation the dispatcher last chose, and why (for reports).
CHOSEN: dict[str, str] = {}
REASONS: dict[str, str] = {}


def _log_once(kernel: str, implementation: str, reason: str, fallback: bool = False):
  if (kernel, implementation) not in _LOGGED:
    _LOGGED.add((kernel, implementation))
    (log.warning if fallback else log.info)("%s: using %s (%s)", kernel, implementation, reason)


@functools.lru_cache(maxsize=None)
def _compiles(build: Callable[[], Any]) -> str | None:
  """None if `build()` lowers and compiles, else the error (cached by the build key)."""
  try:
    build()
    return None
  except Exception as e:  # pylint: disable=broad-except
    return f"{type(e).__name__}: {e}"


@dataclasses.dataclass(frozen=True)
class _Probe:
  """Hashable description of one kernel launch, compiled once to test that Triton accepts it."""
  fn: Any
  avals: tuple[jax.ShapeDtypeStruct, ...]
  static: tuple[tuple[str, Any], ...]

  def __call__(self):
    return self.fn.lower(*self.avals, **dict(self.static)).compile()


def resolve_implementation(kernel: str, requested: str | None, probe: _Probe | None) -> str:
  """Which implementation runs `kernel`: pallas on GPU, interpret on CPU, xla otherwise.

  Args:
    kernel: a name for logs, e.g. "direct U=8".
    requested: None (choose) or one of IMPLEMENTATIONS. An explicit request that cannot run
      raises instead of falling back.
    probe: compiles the Triton kernel for the shapes at hand (only used on GPU).

  Raises:
    ValueError: unknown name, or an explicitly requested implementation is unavailable.
  """
  if requested is not None and requested not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {IMPLEMENTATIONS}, got {requested!r}")
  backend = _backend()
  if requested == "xla":
    choice, reason = "xla", "requested"
  elif pl is None:
    if requested is not None:
      raise ValueError(f"{kernel}: {requested!r} requested but jax.experimental.pallas is missing")
    choice, reason = "xla", "jax.experimental.pallas is not importable"
  elif requested == "interpret" or (requested is None and backend == "cpu"):
    choice, reason = "interpret", "requested" if requested else "CPU backend"
  elif backend in ("gpu", "cuda", "rocm"):
    error = _compiles(probe) if probe is not None else None
    if error is None:
      choice, reason = "pallas", "Triton on GPU"
    elif requested == "pallas":
      raise ValueError(f"{kernel}: the Triton kernel does not compile here: {error}")
    else:
      choice, reason = "xla", f"Triton kernel failed to compile: {error}"
  elif requested == "pallas":
    raise ValueError(f"{kernel}: compiled Pallas kernels need a GPU (backend is "
                     f"{backend!r}); use implementation='interpret' or 'xla'")
  else:
    choice, reason = "xla", f"no Triton on backend {backend!r}"
  _log_once(kernel, choice, reason, fallback=choice == "xla" and requested is None)
  CHOSEN[kernel], REASONS[kernel] = choice, reason
  return choice


# ----------------------------------------------------------------------------- kernel


def _direct_kernel(taps_ref, seg_ref, out_ref):
  """One (layer, channel block, batch block) program.

  taps_ref: (Cb, 2U); seg_ref, out_ref: (Bb, Cb, U).
  """
  n_batch, n_channels, tile = seg_ref.shape
  acc = [jnp.zeros((n_channels, tile), jnp.float32) for _ in range(n_batch)]
  for k in range(tile):
    lags = taps_ref[:, pl.ds(tile - k, tile)].astype(jnp.float32)  # taps[U + j - k], j < U
    for b in range(n_batch):
      acc[b] = acc[b] + lags * seg_ref[b, :, pl.ds(k, 1)].astype(jnp.float32)
  for b in range(n_batch):
    out_ref[b] = acc[b]


def resolve_blocks(config: BlockConfig, num_channels: int, batch: int,
                   min_channels: int = 16) -> BlockConfig:
  return dataclasses.replace(
      config, channel_block=channel_block(num_channels, config.channel_block, min_channels),
      batch_block=batch_block(batch, config.batch_block))


@functools.partial(jax.jit, static_argnames=("config", "interpret"))
def direct_pallas(taps: jax.Array, seg: jax.Array, *, config: BlockConfig,
                  interpret: bool = False) -> jax.Array:
  """The Pallas kernel with resolved blocks.

  Args:
    taps: (M, Dp, 2U) h_0..h_{2U-1}, Dp a multiple of config.channel_block.
    seg: (M, B, D, U) with D <= Dp and B a multiple of config.batch_block.
    config: resolved block config (`resolve_blocks`).
    interpret: run the kernel body as XLA ops (any backend) instead of compiling with Triton.

  Returns:
    (M, B, D, U) float32.
  """
  M, B, D, U = seg.shape
  Dp = taps.shape[1]
  cb, bb = config.channel_block, config.batch_block
  seg = pad_axis(seg, 2, Dp)
  out = pl.pallas_call(
      _direct_kernel,
      out_shape=jax.ShapeDtypeStruct((M, B, Dp, U), jnp.float32),
      grid=(M, Dp // cb, B // bb),
      in_specs=[
          pl.BlockSpec(block_shape=(None, cb, 2 * U), index_map=lambda m, c, b: (m, c, 0)),
          pl.BlockSpec(block_shape=(None, bb, cb, U), index_map=lambda m, c, b: (m, b, c, 0)),
      ],
      out_specs=pl.BlockSpec(block_shape=(None, bb, cb, U),
                             index_map=lambda m, c, b: (m, b, c, 0)),
      interpret=interpret,
      compiler_params=None if interpret else triton_compiler_params(config.num_warps,
                                                                    config.num_stages),
      name=f"tau_direct_u{U}",
  )(taps, seg)
  return out[:, :, :D]


def direct_xla(taps: jax.Array, seg: jax.Array) -> jax.Array:
  """XLA fallback: the Toeplitz product as one multiply-reduce fusion (as tau 'direct'; a dot over
  (M, D) tiny matrices would become a slow batched GEMM, TF32 at default precision on GPU)."""
  M, B, D, U = seg.shape
  idx = U + np.arange(U)[:, None] - np.arange(U)[None, :]
  toeplitz = taps[:, :D, idx].astype(jnp.float32)  # (M, D, U, U): taps[U + j - k]
  return jnp.sum(toeplitz[:, None] * seg.astype(jnp.float32)[:, :, :, None, :], axis=-1)


def _check_shapes(taps, seg):
  if seg.ndim != 4 or taps.ndim != 3:
    raise ValueError(f"expected taps (M, D, 2U) and seg (M, B, D, U), got {taps.shape} and "
                     f"{seg.shape}")
  M, _, D, U = seg.shape
  if U & (U - 1):
    raise ValueError(f"tile size U must be a power of two, got seg.shape[-1] = {U}")
  if taps.shape[0] != M or taps.shape[1] < D or taps.shape[2] != 2 * U:
    raise ValueError(f"taps {taps.shape} do not match seg {seg.shape}: need (M, >=D, 2U)")


def direct_conv(taps: jax.Array, seg: jax.Array, *, implementation: str | None = None,
                config: BlockConfig | None = None) -> jax.Array:
  """out[m, b, d, j] = sum_{k<U} taps[m, d, U+j-k] * seg[m, b, d, k], float32.

  Args:
    taps: (M, D or Dp, 2U) h_0..h_{2U-1} (as from `tau.taps` or this module's `prepare`).
    seg: (M, B, D, U), U = 2^q with q <= MAX_LEVEL for the Pallas kernel.
    implementation: None picks Triton on GPU, interpret mode on CPU and XLA where Pallas cannot
      run (logged once); or force one of "pallas", "interpret", "xla".
    config: block config override (defaults to DIRECT_CONFIGS[q]).

  Returns:
    (M, B, D, U) float32.
  """
  _check_shapes(taps, seg)
  M, B, D, U = seg.shape
  level = U.bit_length() - 1
  if level > MAX_LEVEL and implementation in (None, "pallas", "interpret"):
    if implementation is not None:
      raise ValueError(f"the Pallas direct kernel supports U <= {1 << MAX_LEVEL}, got U = {U}")
    implementation = "xla"
  config = resolve_blocks(config or DIRECT_CONFIGS[min(level, MAX_LEVEL)], D, B)
  Dp = padded_channels(D, config.channel_block)
  taps = pad_axis(taps[:, :Dp], 1, Dp)
  probe = _Probe(direct_pallas, (jax.ShapeDtypeStruct(taps.shape, taps.dtype),
                                 jax.ShapeDtypeStruct(seg.shape, seg.dtype)),
                 (("config", config), ("interpret", False)))
  choice = resolve_implementation(f"direct U={U}", implementation, probe)
  if choice == "xla":
    return direct_xla(taps, seg)
  return direct_pallas(taps, seg, config=config, interpret=choice == "interpret")


# ----------------------------------------------------------------------------- tau registration


def prepare(filters: jax.Array, q: int) -> jax.Array:
  """Taps h_0..h_{2U-1} (M, Dp, 2U) float32, channels padded once to the level's block."""
  D = filters.shape[1]
  block = channel_block(D, DIRECT_CONFIGS[min(q, MAX_LEVEL)].channel_block)
  return pad_axis(tau_ops.taps(filters, q).astype(jnp.float32), 1, padded_channels(D, block))


def apply(taps: jax.Array, seg: jax.Array) -> jax.Array:
  return direct_conv(taps, seg)


tau_ops.register(tau_ops.TauImpl("pallas", prepare, apply, max_level=MAX_LEVEL))

# tau._load_optional imports only this module; the DFT kernel registers itself from here.
try:
  from flash_lcsm_jax.ops import pallas_dft  # noqa: F401,E402  pylint: disable=g-import-not-at-top
except ImportError as _e:  # pragma: no cover
  log.warning("tau 'pallas_dft' unavailable: %s", _e)
