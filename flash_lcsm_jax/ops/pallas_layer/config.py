"""Configuration of the fused dense-path kernels: block shapes, orders, sync modes, the
measured per-batch defaults, and the launch geometry of the persistent kernel."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.ops import pallas_direct as pd


IMPLEMENTATIONS = pd.IMPLEMENTATIONS  # ("pallas", "interpret", "xla")
LAYER_LOOPS = ("unroll", "scan", "persistent")
GPU_BACKENDS = ("gpu", "cuda", "rocm")
K_ALIGN = 16  # the reduction axis (D or I) is padded to a multiple of this once, at prepare time
# Above this many rows the default dispatch runs XLA (a GEMM, tensor cores); an explicit
# implementation still runs the kernels in batch blocks.
MAX_BATCH = 16
# Row blocks are the largest power of two (<= 16) leaving at least this many programs:
# 1.5 programs per SM on a 132-SM H100 (the paper shape gets 216 per kernel).
TARGET_PROGRAMS = 198
ORDERS = ("batch", "chunk", "tile")
# Batch sizes (per weight dtype) at which the persistent loop of a persistent_config runs the
# "tile" order without the weight prefetch (LayerConfig.batch_tiles): measured on an H200, float32,
# checked against XLA at HIGHEST (experiments/NOTES.md, session 9): B = 4 0.446 ms/token vs XLA's
# 0.681; B = 8 0.511-0.523 vs 0.621-0.668 (the batch order: 1.17; the tile order with the prefetch
# 0.61-0.72, whose prefetched tiles make its (rows_b, rows, chunk) products spill). bfloat16 is not
# listed: at B = 4 it took 0.646 against XLA's 0.619.
TILE_BATCHES = {"float32": (4, 8)}


# Batch sizes (per weight dtype) at which the engine runs the persistent kernel as two 4-warp
# programs per SM with half the rows each (LayerConfig.programs_per_sm = 2): measured on an H100
# in session 10, checked against XLA at HIGHEST, side by side with one program per SM
# (experiments/NOTES.md): bfloat16 B = 1 0.3489 -> 0.3226 ms/token (and 0.3445 -> 0.3145 in
# another run), B = 2 0.4460 -> 0.4100; float32 B = 2 0.4591 -> 0.4369; on an H200 (call 4)
# 0.3339 -> 0.3144, 0.4212 -> 0.3905, 0.4075 -> 0.3827. Not listed: float32 B = 1 (H100 0.3869 ->
# 0.3897, H200 0.3485 -> 0.3381: mixed, and the published B = 1 end-to-end figures use one program
# per SM) and the tile order's batches (B = 8: 0.545 -> 0.943, its 4-warp layouts).
PAIRED_BATCHES = {"bfloat16": (1, 2), "float32": (2,)}

# How the persistent loop's phases wait for the previous phase's activations (LayerConfig.sync):
# "barrier": a grid-wide barrier (an atomic arrival count) between phases, then plain loads;
# "data": the activations carry their own readiness. Every phase writes a buffer of its own,
# filled with PENDING beforehand, and a program polls the values it needs with volatile loads
# until none is PENDING: no fence, no arrival, no separate poll, and a program waits only for
# the values it reads. "data_l1": the same buffers, but a program polls one compact
# (rows, columns) tile of the rows it needs with volatile loads, then reads them in the products'
# replicated layouts with ordinary loads (L1 hits) whose layer index depends on the poll's result:
# "data"'s volatile polls skip L1, so its replicated tiles cost up to 8-16x the L2 requests.
SYNCS = ("barrier", "data", "data_l1")
# Memory orders of the barrier's atomics (LayerConfig.barrier_order): both acquire-release, or a
# releasing arrival and acquiring polls (flash_lcsm_jax.ops.ordered_atomics).
BARRIER_ORDERS = ("acq_rel", "release_acquire")
# Batch sizes (per weight dtype) at which the persistent loop of a persistent_config polls
# instead of its barriers (sync="data_l1", LayerConfig.batch_tiles): measured on an H100 in
# session 12, checked against XLA at HIGHEST, side by side (experiments/NOTES.md): B = 2 with two
# programs per SM (the engine's layout there) float32 0.4243 -> 0.4109 ms/token, bfloat16 0.4015
# -> 0.3659 (one per SM: 0.4434 -> 0.4146, 0.4335 -> 0.3814). Not listed: B = 1 (float32
# 0.374 -> 0.356 and 0.366 -> 0.363 in two runs at one per SM, 0.375 -> 0.393 at two; bfloat16's
# default, two per SM, 0.313 -> 0.337), B = 4 (bfloat16 0.789 -> 0.848, float32 0.488 -> 0.537),
# B = 8 (0.541 -> 0.625; "data": 0.558).
DATA_SYNC_BATCHES = {"bfloat16": (2,), "float32": (2,)}
# Column chunks (per weight dtype and batch size) of the persistent loop of a persistent_config,
# for the kernels whose blocks leave the warp-wide default (LayerConfig.batch_tiles): measured on
# an H100 in session 22 (experiments/NOTES.md), each run checked against XLA at HIGHEST, four
# runs side by side: bfloat16 B = 1 (two programs per SM) 0.3320 / 0.3388 / 0.3298 / 0.3281 ->
# 0.3235 / 0.3210 / 0.3214 / 0.3201 ms/token with 128 columns instead of 256. Not listed: 64
# columns (0.3098 / 0.3325 / 0.3086: unsteady), 512 (0.3483), other batches (not measured), and
# float32 B = 8's tile order (64: 0.624, 256: 2.60 against 128's 0.531).
BATCH_CHUNKS = {"bfloat16": {1: 128}}
# The bits of a not-yet-written float32 activation under sync="data": a quiet NaN whose payload
# float arithmetic never produces (NVIDIA GPUs return the canonical NaN 0x7FFFFFFF). Every value
# a phase stores is the result of arithmetic; the token's input rows are canonicalised first.
PENDING_BITS = 0x7FC5A5A5


def is_tile_batch(batch: int, dtype) -> bool:
  """Whether B = batch rows of `dtype` weights run the tile order (TILE_BATCHES)."""
  return batch in TILE_BATCHES.get(jnp.dtype(dtype).name, ())


# ----------------------------------------------------------------------------- configuration


def _is_pow2(n: int) -> bool:
  return isinstance(n, int) and n >= 1 and not n & (n - 1)


@dataclasses.dataclass(frozen=True)
class KernelBlocks:
  """Launch shape of one kernel (hashable: static under jit).

  rows:      output features per program (power of two); for "mix" channels, each 3 weight rows.
  chunk:     columns of the weight tile per step of the reduction (power of two >= 16); None:
             one warp-wide vector load per row, 32 lanes x 16 bytes (128 float32 / 256 bfloat16
             columns), so that with rows >= num_warps a row's partial sums stay in one warp.
  num_warps, num_stages: Triton launch parameters (stages only matter for loops: there are none).
  order:     loop order of the reduction, "batch" (batch rows outer: fewer live registers at
             B = 8) or "chunk" (column chunks outer), see `_matvec`; or "tile" (all batch rows
             of the program at once as (rows_b, 1, chunk) activation tiles, each loaded once
             instead of once per weight row; power-of-two batch blocks, others fall back to
             "chunk"), see `_matvec_tile`.
  """
  rows: int
  chunk: int | None = None
  num_warps: int = 4
  num_stages: int = 1
  order: str = "batch"

  def __post_init__(self):
    for name in ("rows", "num_warps") + (("chunk",) if self.chunk is not None else ()):
      if not _is_pow2(getattr(self, name)):
        raise ValueError(f"KernelBlocks.{name} must be a power of two, got "
                         f"{getattr(self, name)!r}")
    if self.chunk is not None and self.chunk < K_ALIGN:
      raise ValueError(f"KernelBlocks.chunk must be >= {K_ALIGN}, got {self.chunk}")
    if self.num_stages < 1:
      raise ValueError(f"KernelBlocks.num_stages must be >= 1, got {self.num_stages}")
    if self.order not in ORDERS:
      raise ValueError(f"KernelBlocks.order must be one of {ORDERS}, got {self.order!r}")

  def chunk_for(self, dtype) -> int:
    return self.chunk or 512 // jnp.dtype(dtype).itemsize


@dataclasses.dataclass(frozen=True)
class LayerConfig:
  """Blocks of the four kernels, and the most batch rows one program handles (any int >= 1;
  the batch block is the largest divisor of B not above it, so every program streams its
  weights once per batch block). prefetch: in the persistent loop, a program that owns one
  block of a phase loads its weight tile before it waits at the phase's barrier. arrive_early:
  in the persistent loop, a program announces its arrival at a barrier BEFORE it issues that
  prefetch and waits after it, so the arrival's release (which waits for the program's
  outstanding memory operations) does not wait for the weight tile (on an H200: 1-5% off the
  dense path at B = 1 and 2, results bit-identical; experiments/NOTES.md, session 8).
  persistent: the blocks are sized for the persistent loop (persistent_config), which is then
  token_step_fused's default layer loop. batch_tiles: the persistent loop makes its measured
  per-batch choices (`for_batch`): batches of the sizes in TILE_BATCHES[dtype] run every kernel
  in the "tile" order without the prefetch, those in DATA_SYNC_BATCHES[dtype] poll instead of
  the barriers (sync="data_l1"), those in BATCH_CHUNKS[dtype] take its column chunk;
  persistent_config sets it. programs_per_sm: how many programs of the persistent loop share
  an SM (the kernel needs them all resident at once: 2 only with num_warps <= 4, the register
  file holding two 4-warp programs of 255 registers).
  sync: how the persistent loop's phases wait for each other, "barrier", "data" or "data_l1"
  (SYNCS). prefetch_operands: in the persistent loop under barriers, a program that owns one
  block of a phase also loads the block's operands that do not depend on the phase's inputs
  (layer-norm scale and shift, biases, the short convolution's taps and window, acc, residual
  rows) before it waits, not after (independent of prefetch, which the tile order turns off).
  barrier_order: the memory order of the persistent loop's barrier atomics (BARRIER_ORDERS):
  "acq_rel" (Pallas' atomic add, for the arrival and every poll), or "release_acquire" (the
  arrival releases, the polls acquire: ordered_atomics). An acquire-release poll first waits for
  every load its thread has in flight, the prefetched weight tile and operands included, so the
  prefetch is drained before the first poll goes out; an acquiring poll leaves it in flight."""
  mix: KernelBlocks
  out: KernelBlocks
  up: KernelBlocks
  down: KernelBlocks
  batch_block: int = 8
  prefetch: bool = True
  arrive_early: bool = True
  persistent: bool = False
  batch_tiles: bool = False
  programs_per_sm: int = 1
  sync: str = "barrier"
  prefetch_operands: bool = False
  barrier_order: str = "acq_rel"

  def map_blocks(self, fn) -> "LayerConfig":
    """This config with fn(blocks) -> KernelBlocks applied to each of the four kernels' blocks."""
    return dataclasses.replace(self, **{k: fn(getattr(self, k))
                                        for k in ("mix", "out", "up", "down")})

  def replace_blocks(self, **changes) -> "LayerConfig":
    """This config with `changes` (KernelBlocks fields) applied to all four kernels' blocks."""
    return self.map_blocks(lambda b: dataclasses.replace(b, **changes))

  def for_batch(self, batch: int, dtype) -> "LayerConfig":
    """The config the persistent loop runs for B = batch rows of `dtype` weights: with
    batch_tiles, sync="data_l1" instead of the barriers for B in DATA_SYNC_BATCHES[dtype], the
    column chunk of BATCH_CHUNKS[dtype][B] for blocks that leave the default, and with one
    program per SM and B in TILE_BATCHES[dtype] the tile order without the prefetch; else self
    (two programs per SM keep their order: the tile order's 4-warp layouts lost at B = 8,
    0.545 -> 0.943 ms/token on an H100)."""
    if not self.batch_tiles:
      return self
    config, name = self, jnp.dtype(dtype).name
    if self.sync == "barrier" and batch in DATA_SYNC_BATCHES.get(name, ()):
      config = dataclasses.replace(config, sync="data_l1")
    chunk = BATCH_CHUNKS.get(name, {}).get(batch)
    if chunk is not None:
      config = config.map_blocks(
          lambda b: dataclasses.replace(b, chunk=chunk) if b.chunk is None else b)
    if self.programs_per_sm > 1 or not is_tile_batch(batch, dtype):
      return config
    return dataclasses.replace(config.replace_blocks(order="tile"), prefetch=False,
                               batch_tiles=False)

  def __post_init__(self):
    if not isinstance(self.batch_block, int) or self.batch_block < 1:
      raise ValueError(f"LayerConfig.batch_block must be an int >= 1, got {self.batch_block!r}")
    if self.sync not in SYNCS:
      raise ValueError(f"LayerConfig.sync must be one of {SYNCS}, got {self.sync!r}")
    if self.barrier_order not in BARRIER_ORDERS:
      raise ValueError(f"LayerConfig.barrier_order must be one of {BARRIER_ORDERS}, got "
                       f"{self.barrier_order!r}")
    if self.programs_per_sm not in (1, 2):
      raise ValueError(f"LayerConfig.programs_per_sm must be 1 or 2, got "
                       f"{self.programs_per_sm!r}")
    warps = max(b.num_warps for b in (self.mix, self.out, self.up, self.down))
    if self.programs_per_sm * warps > 8:
      raise ValueError(f"LayerConfig.programs_per_sm = {self.programs_per_sm} needs num_warps <= "
                       f"{8 // self.programs_per_sm}, got {warps}")


def _rows_for(n: int, target: int = TARGET_PROGRAMS, max_rows: int = 16) -> int:
  rows = max_rows
  while rows > 1 and -(-n // rows) < target:
    rows //= 2
  return rows


def default_config(d_model: int, d_inner: int) -> LayerConfig:
  """Rows per program: the largest power of two <= 16 leaving >= TARGET_PROGRAMS programs (paper
  shape: 4 / 4 / 8 / 4 rows, 216 programs each); warp-wide chunks, 4 warps, batch blocks of 8."""
  return LayerConfig(mix=KernelBlocks(_rows_for(d_model)), out=KernelBlocks(_rows_for(d_model)),
                     up=KernelBlocks(_rows_for(d_inner)), down=KernelBlocks(_rows_for(d_model)))


def batch_block(batch: int, config: LayerConfig) -> int:
  """The largest divisor of B that is <= config.batch_block."""
  return max(d for d in range(1, min(batch, config.batch_block) + 1) if batch % d == 0)


def _chunks(width: int, chunk: int) -> tuple[int, int]:
  """(chunk, count): equal power-of-two column chunks covering [0, width) (the last one may
  cross width: it is loaded with a mask); chunk shrinks to the next power of two of width."""
  chunk = min(chunk, 1 << max(0, (width - 1).bit_length()))
  return chunk, -(-width // chunk)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """Everything static about the prepared layers (the model's shapes, eps, weight dtype, blocks)."""
  n_layers: int
  d_model: int
  d_inner: int
  short_order: int
  eps: float
  dtype: str
  config: LayerConfig

  @property
  def dk(self) -> int:  # D as a reduction axis
    return pd.round_up(self.d_model, K_ALIGN)

  @property
  def ik(self) -> int:  # I as a reduction axis
    return pd.round_up(self.d_inner, K_ALIGN)

  @property
  def dm(self) -> int:
    return pd.round_up(self.d_model, self.config.mix.rows)

  @property
  def do(self) -> int:
    return pd.round_up(self.d_model, self.config.out.rows)

  @property
  def iu(self) -> int:
    return pd.round_up(self.d_inner, self.config.up.rows)

  @property
  def dd(self) -> int:
    return pd.round_up(self.d_model, self.config.down.rows)

  def matches(self, cfg: HyenaConfig) -> bool:
    return (self.n_layers, self.d_model, self.d_inner, self.short_order, self.eps,
            self.dtype) == (cfg.n_layers, cfg.d_model, cfg.d_inner, cfg.short_filter_order,
                            cfg.layer_norm_eps, cfg.dtype)


def persistent_config(d_model: int, d_inner: int, programs: int = 132,
                      num_warps: int | None = None, programs_per_sm: int = 1) -> LayerConfig:
  """Blocks for `layer_loop="persistent"`: per phase the smallest power-of-two row block that
  leaves at most `programs` x `programs_per_sm` blocks (paper shape on 132 SMs: 8 / 8 / 16 / 8
  rows, 108 blocks each; with two programs per SM 4 / 4 / 8 / 4 rows, 216 blocks), so that each
  program owns at most one block per phase and loads its weights before it waits at the barrier.
  num_warps: 8 / programs_per_sm by default (two programs of 4 warps fill the register file)."""
  total = programs * programs_per_sm

  def blocks(n):
    rows = 1
    while -(-n // rows) > total:
      rows *= 2
    return KernelBlocks(rows, num_warps=num_warps or 8 // programs_per_sm)
  return LayerConfig(mix=blocks(d_model), out=blocks(d_model), up=blocks(d_inner),
                     down=blocks(d_model), persistent=True, batch_tiles=True,
                     programs_per_sm=programs_per_sm)


# The largest row block the engine runs the persistent kernel with: measured at the paper shape
# with 8 / 16 rows per program (108 programs on an H100); a GPU with fewer SMs would need larger
# blocks, whose prefetched weight tiles no longer fit in registers.
MAX_PERSISTENT_ROWS = 16


def device_persistent_config(d_model: int, d_inner: int,
                             programs_per_sm: int = 1) -> LayerConfig | None:
  """persistent_config for this device's SM count (132 if it does not say), or None where its
  row blocks would exceed MAX_PERSISTENT_ROWS."""
  config = persistent_config(d_model, d_inner, programs=gpu_core_count() or 132,
                             programs_per_sm=programs_per_sm)
  rows = max(b.rows for b in (config.mix, config.out, config.up, config.down))
  return config if rows <= MAX_PERSISTENT_ROWS else None


def programs_per_sm_for(batch: int, dtype) -> int:
  """Programs per SM the engine's persistent kernel runs for B = batch rows of `dtype` weights:
  2 for the batches of PAIRED_BATCHES[dtype], else 1."""
  return 2 if batch in PAIRED_BATCHES.get(jnp.dtype(dtype).name, ()) else 1


def _phase_blocks(spec: LayerSpec) -> tuple[int, int, int, int]:
  """Blocks of the mix / out / up / down phases."""
  cfg = spec.config
  return (spec.dm // cfg.mix.rows, spec.do // cfg.out.rows, spec.iu // cfg.up.rows,
          spec.dd // cfg.down.rows)


def persistent_grid(spec: LayerSpec) -> int:
  """Programs of the persistent kernel on a GPU: the most blocks any phase has."""
  return max(_phase_blocks(spec))


def gpu_core_count() -> int | None:
  """Streaming multiprocessors of the default device (None if the backend does not say)."""
  return getattr(jax.devices()[0], "core_count", None)
