"""The per-token dense path of a Hyena layer as four fused Pallas kernels (exact, float32 math).

`hyena._token_layer` (one layer at one position, B = 1..16 rows) runs as ~18 XLA kernels per
layer on a GPU (measured: 333 launches per token for 18 layers, 0.70 ms/token at B = 1 on an
H200 against a 0.18 ms weight-bandwidth floor): it is launch-bound. Here a layer is FOUR launches,
each a matrix-vector product that streams one weight matrix with a prologue and an epilogue:

  K1 "mix"   layer_norm1(x) (every program recomputes the row mean / variance of x: D floats) ->
             the in_proj product restricted to the program's channel block [j0, j0 + bc) for all
             three of x0 / x1 / v (columns j, D + j, 2D + j of in_proj, channel-aligned, which is
             what makes this one kernel) -> short causal conv with the conv state of those
             channels -> u = x1 * v -> z = acc + red * u -> y = x0 * z.
             Writes y (B, D), u into the (M, B, D) u buffer at layer m, and the new conv window
             into the (M, B, K-1, 3D) conv state at layer m (both in place: aliased in -> out).
  K2 "out"   x1 = x + y @ out_proj + bias.
  K3 "up"    h = gelu_tanh(layer_norm2(x1) @ fc1 + bias)   (layer norm recomputed per program).
  K4 "down"  x2 = x1 + h @ fc2 + bias.

Launch layout. Every kernel's grid is (output-row blocks, batch blocks). A program owns `rows`
output features (K1: `rows` channels = 3 * rows weight rows) and the full reduction over K: there
is no split-K, so the nonlinear epilogues (gelu, gating, the residual add) run in the same
program, and nothing is left to sum afterwards. Paper shape (D = 864, I = 1728): 4 rows (216
programs) for mix / out / down, 8 rows (216 programs) for up: >= 1.5 programs per SM on a 132-SM
GPU, each streaming 14-41 KB of float32 weights; one batch block up to B = 8.

The weights are prepared ONCE per model (`prepare_layer_weights`): transposed to (N, K) so a
program streams `rows` contiguous rows; in_proj^T regrouped so a K1 program's x0 / x1 / v rows
are one contiguous (3, bc, K) block; K padded with zeros to a multiple of 16 (D = 864 and
I = 1728 need none; it keeps rows 64-byte aligned); output rows padded to the row block; biases,
norms and conv taps padded and laid out channel-major. Nothing is padded per call: the
activations (x, y, h) stay exact (B, D) / (B, I) arrays, loads and stores that cross their end
are masked (none at the paper shape except the last weight chunk, see below).

Inside a program. The reduction over K runs as a static loop over equal power-of-two column
chunks (`chunk`, default one warp-wide vector load per row: 128 float32 / 256 bfloat16 columns;
the last chunk is a masked load when K is not a multiple, e.g. 864 = 6 x 128 + 96), so every
block has the power-of-two shape Triton needs. Per batch row b, the (rows, chunk) weight tile
times the activation chunk is accumulated ELEMENTWISE over the chunks and reduced over the
columns once at the end (one in-warp shuffle reduction per row and group, not one per chunk). The
activation chunk is loaded as a (rows, chunk) tile whose every row reads the same memory (a
gather with integer index vectors): it arrives in the weight tile's register layout, where a
(1, chunk) load broadcast to (rows, chunk) would cost a shared-memory layout conversion and two
barriers per chunk. The layer-norm statistics (two passes, as hyena.layer_norm) are computed the
same way and reduced within a warp. Batch rows are processed one after the other, each with its
epilogue and stores right after its sums (`order="batch"`; `order="chunk"` is the alternative),
which keeps the register count below 200 at B = 8 without spills (checked by compiling the
Triton IR for sm_90a with ptxas). `order="tile"` (for batches; the persistent loop's default
at B = 4 and 8 in float32, TILE_BATCHES) loads all batch rows of a program as (rows_b, 1, chunk)
tiles, once, and the weights as (1, rows, chunk) tiles, and forms the products as
(rows_b, rows, chunk) broadcasts: the activation bytes read per program no longer scale with the
weight rows. Both are loaded in those shapes by integer-vector indices (broadcasting 2-D tiles
costs shared-memory layout conversions: 0.72 ms/token at B = 8 on an H200 that way, 0.51 with
the 3-D loads and no prefetch, XLA 0.62). Float32
accumulation throughout; bfloat16 weights are upcast in registers, and the activation is rounded
to the weight dtype first, exactly as `hyena.dense` does (x.astype(w.dtype)).

Every kernel takes the whole stacked (M, ...) weights / state and the layer index m as a (1,)
int32 operand (the Triton backend has no scalar prefetch), so neither the unrolled layer loop nor
`lax.fori_loop` over layers ever slices (copies) per-layer weights, acc or conv state; u and the
conv state are written in place. `token_step_fused` runs embed (XLA gather), the 4 kernels per
layer, and the final norm + unembedding in XLA (one product already near bandwidth). The layer
loop is unrolled by default (`layer_loop="unroll"`: 4 launches per layer and no while loop whose
per-iteration condition / counter kernels and host round trip would add to a ~15 us layer);
`layer_loop="scan"` (a fori_loop over layers) compiles the layer once, and both share one
jitted per-layer function, so the unrolled loop also lowers (and Triton-compiles) each kernel
once. Per token: 4 M + ~5 launches (embed, u buffer init, conv-state copy when not donated, final
norm, unembedding) = ~77 at M = 18 vs 333 today.

One launch per token (`layer_loop="persistent"`, weights prepared with `persistent_config`): the
same four bodies for every layer inside ONE pallas_call whose programs each own one block per
phase (108 programs at the paper shape: 8 / 8 / 16 / 8 rows), with a grid-wide barrier between
phases (`_grid_barrier`: an atomic arrival counter, acquire-release at GPU scope) and each
program's weight tile for the next phase loaded before it waits (the weights do not depend on the
activations). Needs every program resident at once (grid <= SMs, checked; nothing else on the
GPU). In interpret mode the grid is one program that walks every block (programs run one after
another there). H100, B = 1: 0.40 / 0.35 ms per token in float32 / bfloat16 against 0.49 / 0.39
for four launches per layer; what is left is each phase's chain of dependent memory round trips
(experiments/NOTES.md, session 6). `LayerConfig.sync="data"` drops the barriers: every phase
writes a buffer of its own, filled with PENDING (a NaN payload arithmetic never produces)
beforehand, and a program polls the values it reads with volatile loads, so the data is its own
readiness flag (no fence, arrival or separate poll per phase); "data_l1" polls one compact tile,
then reads the rows through L1. On an H100 (session 12) "data" is 1.5-3x slower (its volatile
reads of replicated tiles), "data_l1" wins at B = 2 (DATA_SYNC_BATCHES, the engine's default
there) and is within a few percent of the barrier elsewhere.

Expected floor. Weights per token at the paper shape: 4 D^2 + 2 D I = 5.97 M per layer x 18 =
107.5 M (430 MB float32, 215 MB bfloat16) + the 43.4 M tied unembedding (174 / 87 MB):
604 MB -> 0.18 ms at 3.4 TB/s (0.09 ms bfloat16). Per layer 23.9 MB -> 7.0 us of streaming
(in_proj 2.6, out 0.9, fc1 1.8, fc2 1.8 us) against ~4 x 2 us of launch latency, so ~0.3 ms /
token (~1.7x the floor) is the expectation for float32 at B = 1; B = 8 adds work per program
(8 rows through each weight tile, re-read from L1), not HBM bytes.

Three implementations, as every kernel of the package (version helpers from pallas_direct):
  "pallas"    the compiled Triton kernels (GPU only);
  "interpret" the same kernel bodies run as XLA ops (any backend; tests);
  "xla"       `hyena.token_step` (the reference and the fallback).
`token_step_fused(..., implementation=None)` picks pallas on GPU after a one-time compile probe
of the four kernels (xla if Triton rejects them, or for B > MAX_BATCH), interpret on CPU; it logs
its choice once and records it in pallas_direct.CHOSEN / REASONS under "layer D=.. I=.. B=..".

Triton-backend notes (jax 0.10.2 / 0.11): no scalar prefetch (m is a (1,) array read in the
kernel); masked accesses are pallas.triton.load / store on `ref.at[...]` (pallas_inplace's
helpers), whose interpret-mode discharge takes either slices with scalar indices or integer
index arrays alone (hence the gathers above use index arrays for every axis) and rejects plain
Python-int indices (`_at` makes them int32 scalars); a static slice that crosses the array's end
is rejected even under a mask (`_traced` makes its start a traced value); every load is a
ref-level index (Triton cannot lower lax.slice of loaded values); all operands are whole-array
BlockSpecs indexed by program id (BlockSpec memory spaces are ignored by Triton); the backend is
named through pallas_direct.triton_compiler_params (the default GPU lowering is Mosaic GPU).

Shape letters: M layers, B batch, D model width, I MLP width, K short-conv taps; bc channels per
mix program; Dk / Ik = D / I padded to 16 (the reduction axis), Dm / Do / Iu / Dd = D / D / I / D
padded to the row block of mix / out / up / down.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops.pallas_inplace import _load, _store, _triton_memory_op

pl = pd.pl
log = logging.getLogger(__name__)

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
# Batch sizes (per weight dtype) at which the persistent loop of a persistent_config polls
# instead of its barriers (sync="data_l1", LayerConfig.batch_tiles): measured on an H100 in
# session 12, checked against XLA at HIGHEST, side by side (experiments/NOTES.md): B = 2 with two
# programs per SM (the engine's layout there) float32 0.4243 -> 0.4109 ms/token, bfloat16 0.4015
# -> 0.3659 (one per SM: 0.4434 -> 0.4146, 0.4335 -> 0.3814). Not listed: B = 1 (float32
# 0.374 -> 0.356 and 0.366 -> 0.363 in two runs at one per SM, 0.375 -> 0.393 at two; bfloat16's
# default, two per SM, 0.313 -> 0.337), B = 4 (bfloat16 0.789 -> 0.848, float32 0.488 -> 0.537),
# B = 8 (0.541 -> 0.625; "data": 0.558).
DATA_SYNC_BATCHES = {"bfloat16": (2,), "float32": (2,)}
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
  the barriers (sync="data_l1"); persistent_config sets it. programs_per_sm: how many
  programs of the persistent loop share an SM (the kernel needs them all resident at once: 2
  only with num_warps <= 4, the register file holding two 4-warp programs of 255 registers).
  sync: how the persistent loop's phases wait for each other, "barrier", "data" or "data_l1"
  (SYNCS)."""
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

  def replace_blocks(self, **changes) -> "LayerConfig":
    """This config with `changes` (KernelBlocks fields) applied to all four kernels' blocks."""
    return dataclasses.replace(self, **{k: dataclasses.replace(getattr(self, k), **changes)
                                        for k in ("mix", "out", "up", "down")})

  def for_batch(self, batch: int, dtype) -> "LayerConfig":
    """The config the persistent loop runs for B = batch rows of `dtype` weights: with
    batch_tiles, sync="data_l1" instead of the barriers for B in DATA_SYNC_BATCHES[dtype], and
    with one program per SM and B in TILE_BATCHES[dtype] the tile order without the prefetch;
    else self (two programs per SM keep their order: the tile order's 4-warp layouts lost at
    B = 8, 0.545 -> 0.943 ms/token on an H100)."""
    if not self.batch_tiles:
      return self
    config = self
    if self.sync == "barrier" and batch in DATA_SYNC_BATCHES.get(jnp.dtype(dtype).name, ()):
      config = dataclasses.replace(config, sync="data_l1")
    if self.programs_per_sm > 1 or not is_tile_batch(batch, dtype):
      return config
    return dataclasses.replace(config.replace_blocks(order="tile"), prefetch=False,
                               batch_tiles=False)

  def __post_init__(self):
    if not isinstance(self.batch_block, int) or self.batch_block < 1:
      raise ValueError(f"LayerConfig.batch_block must be an int >= 1, got {self.batch_block!r}")
    if self.sync not in SYNCS:
      raise ValueError(f"LayerConfig.sync must be one of {SYNCS}, got {self.sync!r}")
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


# ----------------------------------------------------------------------------- prepared weights


class LayerWeights(NamedTuple):
  """The layers' weights in kernel layout, stacked over M (matrices in the weight dtype)."""
  mix_w: jax.Array  # (M, Dm / bc, 3, bc, Dk): in_proj^T, rows j, D + j, 2D + j of a block adjacent
  mix_b: jax.Array  # (M, 3, Dm) in_proj bias
  conv_w: jax.Array  # (M, K, 3, Dm) short-conv taps
  conv_b: jax.Array  # (M, 3, Dm) short-conv bias
  norm1: jax.Array  # (M, 2, Dk) layer norm 1 scale, bias (zero in the padding)
  out_w: jax.Array  # (M, Do, Dk) out_proj^T
  out_b: jax.Array  # (M, Do)
  norm2: jax.Array  # (M, 2, Dk)
  up_w: jax.Array  # (M, Iu, Dk) fc1^T
  up_b: jax.Array  # (M, Iu)
  down_w: jax.Array  # (M, Dd, Ik) fc2^T
  down_b: jax.Array  # (M, Dd)


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class PreparedLayers:
  """`prepare_layer_weights`' result: weight arrays (the pytree leaves) and the static spec.

  A second copy of the layer weights (in kernel layout): make it once per model and keep it next
  to the parameters. Passes through jit, tree_map and device_put like any pytree.
  """
  weights: LayerWeights
  spec: LayerSpec

  def tree_flatten(self):
    return (self.weights,), self.spec

  @classmethod
  def tree_unflatten(cls, spec, children):
    return cls(children[0], spec)


def _pad_to(x: jax.Array, axis: int, size: int) -> jax.Array:
  return pd.pad_axis(x, axis % x.ndim, size)


def _check_layer_params(layers, cfg: HyenaConfig):
  M, D, I, K = cfg.n_layers, cfg.d_model, cfg.d_inner, cfg.short_filter_order
  wdtype = jnp.dtype(cfg.dtype)
  want = {("norm1", "scale"): (M, D), ("norm1", "bias"): (M, D),
          ("in_proj", "kernel"): (M, D, 3 * D), ("in_proj", "bias"): (M, 3 * D),
          ("short_conv", "kernel"): (M, K, 3 * D), ("short_conv", "bias"): (M, 3 * D),
          ("out_proj", "kernel"): (M, D, D), ("out_proj", "bias"): (M, D),
          ("norm2", "scale"): (M, D), ("norm2", "bias"): (M, D),
          ("mlp", "fc1", "kernel"): (M, D, I), ("mlp", "fc1", "bias"): (M, I),
          ("mlp", "fc2", "kernel"): (M, I, D), ("mlp", "fc2", "bias"): (M, D)}
  for path, shape in want.items():
    leaf = layers
    try:
      for key in path:
        leaf = leaf[key]
    except (KeyError, TypeError):
      raise ValueError(f"params['layers'] has no {'/'.join(path)}") from None
    if tuple(leaf.shape) != shape:
      raise ValueError(f"params['layers']/{'/'.join(path)} has shape {tuple(leaf.shape)}, the "
                       f"config needs {shape}")
    if path[-1] == "kernel" and path[0] != "short_conv" and leaf.dtype != wdtype:
      raise ValueError(f"params['layers']/{'/'.join(path)} has dtype {leaf.dtype}, the config "
                       f"(dtype={cfg.dtype!r}) needs {wdtype}; cast with hyena.cast_params")


def prepare_layer_weights(params, cfg: HyenaConfig,
                          config: LayerConfig | None = None) -> PreparedLayers:
  """The layers' weights in kernel layout (once per model; a copy of ~all layer weights).

  Args:
    params: model parameters (hyena.init_params layout, matmul weights in cfg.dtype).
    cfg: the model config.
    config: block config (default `default_config(D, I)`).
  """
  layers = params["layers"]
  _check_layer_params(layers, cfg)
  config = config or default_config(cfg.d_model, cfg.d_inner)
  spec = LayerSpec(cfg.n_layers, cfg.d_model, cfg.d_inner, cfg.short_filter_order,
                   float(cfg.layer_norm_eps), cfg.dtype, config)
  return PreparedLayers(_prepare(layers, spec), spec)


@functools.partial(jax.jit, static_argnames=("spec",))
def _prepare(layers, spec: LayerSpec) -> LayerWeights:
  M, D, K = spec.n_layers, spec.d_model, spec.short_order
  bc, f32 = spec.config.mix.rows, jnp.float32

  def channel_major(a, pad):  # (M, ..., 3D) -> (M, ..., 3, pad)
    a = a.reshape(a.shape[:-1] + (3, D)).astype(f32)
    return _pad_to(a, -1, pad)

  def norm(p):
    return _pad_to(jnp.stack([p["scale"], p["bias"]], axis=1).astype(f32), -1, spec.dk)

  def transposed(w, rows, cols):  # (M, K, N) -> (M, N padded to rows, K padded to cols)
    return _pad_to(_pad_to(jnp.swapaxes(w, 1, 2), 1, rows), 2, cols)

  w_in = jnp.swapaxes(layers["in_proj"]["kernel"], 1, 2).reshape(M, 3, D, D)  # [m, g, j, k]
  w_in = _pad_to(_pad_to(w_in, 2, spec.dm), 3, spec.dk)
  w_in = w_in.reshape(M, 3, spec.dm // bc, bc, spec.dk).transpose(0, 2, 1, 3, 4)
  fc1, fc2 = layers["mlp"]["fc1"], layers["mlp"]["fc2"]
  return LayerWeights(
      mix_w=w_in,
      mix_b=channel_major(layers["in_proj"]["bias"], spec.dm),
      conv_w=channel_major(layers["short_conv"]["kernel"], spec.dm),  # (M, K, 3, Dm)
      conv_b=channel_major(layers["short_conv"]["bias"], spec.dm),
      norm1=norm(layers["norm1"]),
      out_w=transposed(layers["out_proj"]["kernel"], spec.do, spec.dk),
      out_b=_pad_to(layers["out_proj"]["bias"].astype(f32), 1, spec.do),
      norm2=norm(layers["norm2"]),
      up_w=transposed(fc1["kernel"], spec.iu, spec.dk),
      up_b=_pad_to(fc1["bias"].astype(f32), 1, spec.iu),
      down_w=transposed(fc2["kernel"], spec.dd, spec.ik),
      down_b=_pad_to(fc2["bias"].astype(f32), 1, spec.dd),
  )


# ----------------------------------------------------------------------------- kernel pieces


def _col_mask(off: int, size: int, n: int):
  """(1, size) mask of columns < n for a chunk crossing n, else None (no mask needed)."""
  if off + size <= n:
    return None
  return off + jax.lax.broadcasted_iota(jnp.int32, (1, size), 1) < n


def _row_mask(start, size: int, n: int):
  """(size,) mask of rows < n for a block that may cross n, else None (n a multiple of size)."""
  if n % size == 0:
    return None
  return start + jax.lax.broadcasted_iota(jnp.int32, (size,), 0) < n


def _traced(offset: int, like):
  """`offset` as a traced int32 (offset + 0 * like, `like` a traced int32 scalar such as the layer
  index): JAX rejects a static slice that crosses the array's end even under a mask; Triton folds
  the zero away again. (Not program_id: interpret mode cannot evaluate it inside loops.)"""
  return offset + 0 * like


def _at(ref, *idx):
  """ref.at[idx] with Python-int indices as int32 scalars (the masked load / store of jax 0.10
  rejects plain int indices)."""
  return ref.at[tuple(jnp.int32(i) if isinstance(i, int) else i for i in idx)]


def _load_cols(ref, idx: tuple, off: int, size: int, n: int):
  """ref[*idx, off:off + size] as float32, zero past column n (masked only if it crosses n);
  idx[0] is a traced int32 (the layer index)."""
  mask = _col_mask(off, size, n)
  start = off if mask is None else _traced(off, idx[0])
  return _load(_at(ref, *idx, pl.ds(start, size)), mask).astype(jnp.float32)


def _gather(ref, idx: tuple, row_idx, off: int, size: int, n: int, volatile: bool = False):
  """float32 ref[*idx, row_idx, off:off + size] by integer-vector indices, zero past column n:
  row_idx (..., 1) int32 against the columns (1, ..., size), the result of their broadcast shape.
  Integer-vector indices (no slices) also keep interpret mode's masked loads working. volatile:
  a volatile load (read from L2 every time: sync="data"'s polls)."""
  cols = (1,) * (row_idx.ndim - 1) + (size,)
  col_idx = off + jax.lax.broadcasted_iota(jnp.int32, cols, len(cols) - 1)
  mask = _col_mask(off, size, n)
  load = _triton_memory_op("load")
  view = _at(ref, *idx, row_idx, col_idx)
  if mask is not None and mask.ndim != len(cols):
    mask = mask.reshape(cols)
  kwargs = dict(volatile=True) if volatile else {}
  if mask is not None:
    kwargs.update(mask=mask, other=0.0)
  return load(view, **kwargs).astype(jnp.float32)


def _load_rep(ref, idx: tuple, i, rows: int, off: int, size: int, n: int,
              volatile: bool = False):
  """(rows, size) float32 tile whose every row is ref[*idx, i, off:off + size] (zero past column
  n). Indexed with integer vectors (a gather of one row into each tile row), the load comes out
  in the weight tile's register layout and costs L1 hits; a (1, size) load broadcast to
  (rows, size) would go through shared memory and two barriers per chunk instead."""
  return _gather(ref, idx, jnp.full((rows, 1), i, jnp.int32), off, size, n, volatile)


def _load_bcast(ref, idx: tuple, start, count: int, axis: int, off: int, size: int, n: int,
                volatile: bool = False):
  """float32 rows start .. start + count of ref[*idx], columns off .. off + size (zero past column
  n), shaped for the tile order's (rows_b, rows, chunk) products: (count, 1, size) with axis=0
  (batch rows), (1, count, size) with axis=1 (weight rows). Integer-vector indices load them
  straight into the products' register layout; broadcasting 2-D tiles instead (an expand_dims)
  goes through shared memory, with block barriers (experiments/ptx_broadcast.py: at B = 8, 181
  barriers for 7 chunks instead of 29)."""
  shape = [1, 1, 1]
  shape[axis] = count
  row_idx = start + jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis)
  return _gather(ref, idx, row_idx, off, size, n, volatile)


def _fit(mask, shape):
  """A (n,) row mask made to fit a block of `shape`: broadcast over a (rows_b, n) block of batch
  rows; None and masks of the block's rank as they are."""
  if mask is None or mask.ndim == len(shape):
    return mask
  return jnp.broadcast_to(mask, shape)


def _ld(view, mask, volatile: bool = False):
  """A masked load whose row mask is broadcast to the view's shape."""
  return _load(view, _fit(mask, view.shape), volatile)


def _st(view, value, mask):
  _store(view, value, _fit(mask, view.shape))


class _Act(NamedTuple):
  """An activation buffer as a phase reads or writes it: rows ref[*idx, b] (idx = () for the
  buffers the per-layer kernels and sync="barrier" update in place, (layer,) for sync="data"'s
  write-once buffers). poll: reads are volatile and repeated while any value is PENDING (spin;
  without spin, read once: interpret mode runs programs one after another, so a value still
  PENDING there is a bug, and it shows up as a NaN instead of a hang). compact (sync="data_l1"):
  the poll is one compact volatile tile, the reads after it ordinary loads whose layer index has
  the poll's final flag (zero) added, so they cannot be issued before it."""
  ref: object
  idx: tuple = ()
  poll: bool = False
  spin: bool = True
  compact: bool = False

  def at(self, *idx):
    return _at(self.ref, *self.idx, *idx)

  def rep(self, b, rows: int, off: int, size: int, n: int):
    return _load_rep(self.ref, self.idx, b, rows, off, size, n, self.poll)

  def bcast(self, start, count: int, off: int, size: int, n: int):
    return _load_bcast(self.ref, self.idx, start, count, 0, off, size, n, self.poll)

  def read(self, load, start=0, count: int = 1, n: int = 0):
    """load(view) -> a list of arrays read from this buffer through `view`; polled when
    self.poll. start, count, n: the rows (start .. start + count) and columns (< n) load reads,
    which a compact poll waits for."""
    if not self.poll:
      return load(self)
    view = self._replace(poll=False) if self.compact else self  # compact: ordinary loads
    if not self.spin:
      return load(view)
    if not self.compact:
      return jax.lax.while_loop(_any_pending, lambda _: load(view), load(view))
    if n < 1:
      raise ValueError(f"a compact poll needs the columns it waits for (n >= 1), got n={n}")
    n_pow2 = 1 << (n - 1).bit_length()
    rows = start + jax.lax.broadcasted_iota(jnp.int32, (count, 1), 0)
    poll = lambda _: _pending_flag([_gather(self.ref, self.idx, rows, 0, n_pow2, n, True)])
    zero = jax.lax.while_loop(lambda f: f > 0, poll, poll(0))
    return load(view._replace(idx=(self.idx[0] + zero,) + self.idx[1:]))


def _pending_flag(values: list):
  """1 (int32) if any of the float32 arrays `values` holds PENDING_BITS, else 0. Arrays of one
  shape are combined elementwise first, so each shape costs one reduction across the warps
  (Triton has no reduce_or, hence the max)."""
  by_shape = {}
  for v in values:
    flag = (jax.lax.bitcast_convert_type(v, jnp.int32) == PENDING_BITS).astype(jnp.int32)
    by_shape[v.shape] = flag if v.shape not in by_shape else jnp.maximum(by_shape[v.shape], flag)
  return functools.reduce(jnp.maximum, [jnp.max(f) for f in by_shape.values()])


def _any_pending(values: list):
  """Whether any of the float32 arrays `values` holds PENDING_BITS (a scalar bool)."""
  return _pending_flag(values) > 0


def pending_fill(shape) -> jax.Array:
  """A float32 array of `shape` whose every value has the bits PENDING_BITS."""
  return jax.lax.bitcast_convert_type(jnp.full(shape, PENDING_BITS, jnp.int32), jnp.float32)


def _tile_rows(rows: list, order: str):
  """(the batch rows as one pl.ds block, or None; the order for _matvec otherwise): "tile" runs
  for a power-of-two number of rows (Triton blocks are), else falls back to "chunk"."""
  if order != "tile":
    return None, order
  return (pl.ds(rows[0], len(rows)), order) if _is_pow2(len(rows)) else (None, "chunk")


def _stats(xs: list, chunk: int, n: int, eps: float):
  """Mean and 1 / sqrt(var + eps) over the columns < n of the (r, chunk) or (r, 1, chunk) tiles
  xs (column chunks of one row each tile row), as (r, 1) or (r, 1, 1) columns."""
  total = xs[0]
  for x in xs[1:]:
    total = total + x
  mean = jnp.sum(total, axis=-1, keepdims=True) / n
  sq = None
  for c, x in enumerate(xs):
    d = x - mean
    mask = _col_mask(c * chunk, chunk, n)
    if mask is not None:
      d = jnp.where(mask, d, 0.0)
    sq = d * d if sq is None else sq + d * d
  return mean, jax.lax.rsqrt(jnp.sum(sq, axis=-1, keepdims=True) / n + eps)


def _gelu_tanh(x):
  """jax.nn.gelu(x, approximate=True), written out (the same operations)."""
  sqrt_2_over_pi = np.sqrt(2 / np.pi).astype(np.float32)
  return x * (0.5 * (1.0 + jnp.tanh(sqrt_2_over_pi * (x + 0.044715 * (x ** 3)))))


def _weight_cast(x, wdtype):
  """x rounded to the weight dtype, back in float32 (x.astype(w.dtype) in hyena.dense)."""
  return x if wdtype == jnp.float32 else x.astype(wdtype).astype(jnp.float32)


def _batch_rows(bb: int, batch: int):
  q = pl.program_id(1)
  return list(range(bb)) if bb == batch else [q * bb + i for i in range(bb)]


def _matvec(tiles, row_vector, emit, batch_rows: int, chunk: int, count: int, rows: int,
            order: str):
  """sum_k W[r, k] v_b[k] for every weight tile stream and batch row, handed to emit.

  tiles(c) -> list of (rows, chunk) float32 weight tiles of chunk c (one per output group);
  row_vector(i) -> (function c -> (rows, chunk) float32 activation chunk of batch row i, every
  tile row the same values); calling it does the row's prologue (layer-norm statistics).
  emit(i, sums) gets batch row i's [group] -> (rows,) float32 sums and runs its epilogue.
  Products accumulate elementwise over the chunks in (rows, chunk) registers and are reduced over
  the columns once at the end: one in-warp reduction per (batch row, group), not per chunk.
  order "batch": batch rows outer, chunks inner, each row's epilogue (stores) right after its
  sums, so a row's activations live only while it is processed, and the stores keep the compiler
  from holding every weight tile in registers across rows (it re-reads them from L1 instead);
  "chunk": chunks outer (every row's accumulators and statistics live throughout).
  """
  def zeros(n):
    return [jnp.zeros((rows, chunk), jnp.float32) for _ in range(n)]

  def reduce(acc):
    return [jnp.sum(a, axis=1) for a in acc]

  if order == "batch":
    for i in range(batch_rows):
      vector, acc = row_vector(i), None
      for c in range(count):
        ws, v = tiles(c), vector(c)
        acc = acc or zeros(len(ws))
        acc = [a + w * v for a, w in zip(acc, ws)]
      emit(i, reduce(acc))
  else:
    vectors, accs = [row_vector(i) for i in range(batch_rows)], None
    for c in range(count):
      ws = tiles(c)
      accs = accs or [zeros(len(ws)) for _ in vectors]
      for i, vector in enumerate(vectors):
        v = vector(c)
        accs[i] = [a + w * v for a, w in zip(accs[i], ws)]
    for i, acc in enumerate(accs):
      emit(i, reduce(acc))


def _matvec_tile(tiles, vector, count: int):
  """[group] -> (rows_b, rows) float32 sums_k W[r, k] v[b, k] for all batch rows at once.

  tiles(c) -> list of (1, rows, chunk) float32 weight tiles of chunk c (one per output group);
  vector(c) -> the (rows_b, 1, chunk) float32 activation chunk of every batch row (both loaded
  in these shapes: _load_bcast). Products are (rows_b, rows, chunk) broadcasts accumulated
  elementwise over the chunks and reduced over the columns once at the end."""
  acc = None
  for c in range(count):
    ws, v = tiles(c), vector(c)
    prods = [v * w for w in ws]
    acc = prods if acc is None else [a + q for a, q in zip(acc, prods)]
  return [jnp.sum(a, axis=2) for a in acc]


# ----------------------------------------------------------------------------- K1 "mix"


class _MixRefs(NamedTuple):
  """K1's operands: x (B, D) (an _Act); norm1 (M, 2, Dk); w (M, Dm/bc, 3, bc, Dk); wb (M, 3,
  Dm); cw (M, K, 3, Dm); cb (M, 3, Dm); red (M, D); acc (M, B, D); conv_in (M, B, K-1, 3D) or
  None | y (B, D) (an _Act); u (M, B, D); conv (M, B, K-1, 3D) or None (u and conv aliased to
  their inputs)."""
  x: object
  norm: object
  w: object
  wb: object
  cw: object
  cb: object
  red: object
  acc: object
  conv_in: object
  y: object
  u: object
  conv: object


def _mix_chunks(spec: LayerSpec) -> tuple[int, int]:
  """(chunk, count) of K1's reduction over D."""
  return _chunks(spec.dk, spec.config.mix.chunk_for(jnp.dtype(spec.dtype)))


def _mix_tiles(r: _MixRefs, p, m, rows: list, spec: LayerSpec):
  """tiles(c) -> the x0 / x1 / v weight rows of channel block p, chunk c: (bc, chunk) each, or
  (1, bc, chunk) when the batch rows run in the tile order."""
  chunk, _ = _mix_chunks(spec)
  if _tile_rows(rows, spec.config.mix.order)[0] is not None:
    bc = spec.config.mix.rows
    return lambda c: [_load_bcast(r.w, (m, p, g), 0, bc, 1, c * chunk, chunk, spec.dk)
                      for g in range(3)]
  return lambda c: [_load_cols(r.w, (m, p, g, slice(None)), c * chunk, chunk, spec.dk)
                    for g in range(3)]


def _mix_block(r: _MixRefs, p, m, rows: list, spec: LayerSpec, tiles=None):
  """Channel block p of K1 at layer m for batch rows `rows` (tiles: preloaded weight tiles)."""
  K = spec.short_order
  D, dk, bc = spec.d_model, spec.dk, spec.config.mix.rows
  wdtype = jnp.dtype(spec.dtype)
  chunk, count = _mix_chunks(spec)
  j0 = p * bc
  chans = pl.ds(j0, bc)
  cmask = _row_mask(j0, bc, D)
  tiles = tiles or _mix_tiles(r, p, m, rows, spec)

  def row_vector(i):  # layer_norm1(x[b]) chunks, rounded to the weight dtype, as (bc, chunk)
    b = rows[i]
    xs = r.x.read(lambda a: [a.rep(b, bc, c * chunk, chunk, D) for c in range(count)], b, 1, D)
    mean, rstd = _stats(xs, chunk, D, spec.eps)

    def vector(c):
      off = c * chunk
      scale = _load_rep(r.norm, (m,), 0, bc, off, chunk, dk)
      shift = _load_rep(r.norm, (m,), 1, bc, off, chunk, dk)
      # polled rows are used as read; otherwise re-read (an L1 hit: fewer live registers)
      x = xs[c] if r.x.poll else r.x.rep(b, bc, off, chunk, D)
      return _weight_cast((x - mean) * rstd * scale + shift, wdtype)
    return vector

  in_b = [r.wb[m, g, chans] for g in range(3)]  # (bc,) each; padded: no mask
  taps = [[r.cw[m, k, g, chans] for g in range(3)] for k in range(K)]
  conv_b = [r.cb[m, g, chans] for g in range(3)]
  red = _load(_at(r.red, m, chans), cmask)

  def emit(b, sums):
    """b: one batch row (sums (bc,) per group) or a pl.ds of rows (sums (rows_b, bc))."""
    proj = [sums[g] + in_b[g] for g in range(3)]
    window = [[_ld(_at(r.conv_in, m, b, k, pl.ds(g * D + j0, bc)), cmask) for g in range(3)]
              for k in range(K - 1)] + [proj]
    c = []
    for g in range(3):  # sum_k window[k] * kernel[k] + bias, in hyena._token_layer's order
      total = window[0][g] * taps[0][g]
      for k in range(1, K):
        total = total + window[k][g] * taps[k][g]
      c.append(total + conv_b[g])
    x0, x1, v = c
    u = x1 * v
    z = _ld(_at(r.acc, m, b, chans), cmask) + red * u
    _st(r.y.at(b, chans), x0 * z, cmask)
    _st(_at(r.u, m, b, chans), u, cmask)
    for k in range(K - 1):  # the new window: window[1:]
      for g in range(3):
        _st(_at(r.conv, m, b, k, pl.ds(g * D + j0, bc)), window[k + 1][g], cmask)

  b, order = _tile_rows(rows, spec.config.mix.order)
  if b is not None:
    xs = r.x.read(lambda a: [a.bcast(rows[0], len(rows), c * chunk, chunk, D)
                             for c in range(count)], rows[0], len(rows), D)
    mean, rstd = _stats(xs, chunk, D, spec.eps)  # (rows_b, 1, 1)

    def vector(c):  # layer_norm1(x[rows]) chunk c, cast to the weight dtype: (rows_b, 1, chunk)
      off = c * chunk
      scale = _load_bcast(r.norm, (m,), 0, 1, 0, off, chunk, dk)
      shift = _load_bcast(r.norm, (m,), 1, 1, 0, off, chunk, dk)
      return _weight_cast((xs[c] - mean) * rstd * scale + shift, wdtype)
    emit(b, _matvec_tile(tiles, vector, count))
  else:
    _matvec(tiles, row_vector, lambda i, sums: emit(rows[i], sums), len(rows), chunk, count,
            bc, order)


def _mix_kernel(*refs, spec: LayerSpec, batch: int, bb: int):
  """One (channel block, batch block) program of K1.

  refs: m (1,) int32; x; norm1; mix_w; mix_b; conv_w; conv_b; red; acc; [conv_in]; u_in | y; u;
  [conv] (see _MixRefs; [..] only when the short conv has K > 1 taps).
  """
  if spec.short_order > 1:
    m_ref, x, norm, w, wb, cw, cb, red, acc, conv_in, _, y, u, conv = refs
  else:
    (m_ref, x, norm, w, wb, cw, cb, red, acc, _, y, u), conv_in, conv = refs, None, None
  _mix_block(_MixRefs(_Act(x), norm, w, wb, cw, cb, red, acc, conv_in, _Act(y), u, conv),
             pl.program_id(0), m_ref[0], _batch_rows(bb, batch), spec)


def _compiler_params(blocks: KernelBlocks, interpret: bool):
  return None if interpret else pd.triton_compiler_params(blocks.num_warps, blocks.num_stages)


def _whole(n: int):
  return [pl.BlockSpec() for _ in range(n)]


def _whole_call(kernel, ins: list, outs: list, grid: tuple, aliases: dict, blocks: KernelBlocks,
                interpret: bool, name: str):
  """kernel over `grid` with every operand whole (programs index them by their ids)."""
  return pl.pallas_call(
      kernel, out_shape=tuple(outs), grid=grid, in_specs=_whole(len(ins)),
      out_specs=tuple(_whole(len(outs))), input_output_aliases=aliases, interpret=interpret,
      compiler_params=_compiler_params(blocks, interpret), name=name)(*ins)


def _mix_call(w: LayerWeights, m, x, acc, conv_state, red, u_buf, spec: LayerSpec,
              interpret: bool):
  B, D = x.shape
  bb = batch_block(B, spec.config)
  blocks = spec.config.mix
  has_conv = spec.short_order > 1
  ins = [m, x, w.norm1, w.mix_w, w.mix_b, w.conv_w, w.conv_b, red, acc]
  ins += [conv_state] if has_conv else []
  ins += [u_buf]
  outs = [jax.ShapeDtypeStruct((B, D), jnp.float32), jax.ShapeDtypeStruct(u_buf.shape,
                                                                           jnp.float32)]
  aliases = {len(ins) - 1: 1}
  if has_conv:
    outs.append(jax.ShapeDtypeStruct(conv_state.shape, jnp.float32))
    aliases[len(ins) - 2] = 2
  res = _whole_call(functools.partial(_mix_kernel, spec=spec, batch=B, bb=bb), ins, outs,
                    (spec.dm // blocks.rows, B // bb), aliases, blocks, interpret,
                    "hyena_layer_mix")
  if has_conv:
    return res
  return res[0], res[1], conv_state


# ----------------------------------------------------------------------------- K2, K3, K4


@dataclasses.dataclass(frozen=True)
class _Dense:
  """What is static about one of out / up / down (hashable)."""
  n_in: int
  n_out: int
  blocks: KernelBlocks
  k_width: int
  wdtype: str
  eps: float | None  # layer norm of the input (with norm's scale / shift) if not None
  gelu: bool
  residual: bool

  def chunks(self) -> tuple[int, int]:
    return _chunks(self.k_width, self.blocks.chunk_for(jnp.dtype(self.wdtype)))


def _dense_tiles(w_ref, p, m, rows: list, d: _Dense):
  """tiles(c) -> [the (rows, chunk) weight tile of row block p, chunk c], or (1, rows, chunk)
  when the batch rows run in the tile order."""
  chunk, _ = d.chunks()
  if _tile_rows(rows, d.blocks.order)[0] is not None:
    return lambda c: [_load_bcast(w_ref, (m,), p * d.blocks.rows, d.blocks.rows, 1, c * chunk,
                                  chunk, d.k_width)]
  rows_sl = pl.ds(p * d.blocks.rows, d.blocks.rows)
  return lambda c: [_load_cols(w_ref, (m, rows_sl), c * chunk, chunk, d.k_width)]


def _dense_block(v: _Act, norm_ref, w_ref, b_ref, res: _Act | None, out: _Act, p, m, rows: list,
                 d: _Dense, tiles=None):
  """Row block p of out / up / down at layer m for batch rows `rows`:

    out[b, r] = [res[b, r] +] act(sum_k cast(prologue(v[b]))[k] * W^T[m, r, k] + bias[m, r])

  v (B, n_in); norm (M, 2, k_width) or None; w (M, rows_p, k_width); bias (M, rows_p); res
  (B, n_out) or None | out (B, n_out) (v, res and out as _Act views); tiles: preloaded weight
  tiles (default: loaded here).
  """
  rows_per, wdtype = d.blocks.rows, jnp.dtype(d.wdtype)
  chunk, count = d.chunks()
  r0 = p * rows_per
  rows_sl = pl.ds(r0, rows_per)
  rmask = _row_mask(r0, rows_per, d.n_out)
  tiles = tiles or _dense_tiles(w_ref, p, m, rows, d)

  def row_vector(i):  # (rows, chunk) tiles, every row the same activation chunk
    b = rows[i]
    vs = None
    if v.poll or d.eps is not None:  # polled: every chunk at once, before the products
      vs = v.read(lambda a: [a.rep(b, rows_per, c * chunk, chunk, d.n_in) for c in range(count)],
                  b, 1, d.n_in)
    if d.eps is not None:
      mean, rstd = _stats(vs, chunk, d.n_in, d.eps)

    def vector(c):
      off = c * chunk
      x = vs[c] if v.poll else v.rep(b, rows_per, off, chunk, d.n_in)
      if d.eps is not None:
        scale = _load_rep(norm_ref, (m,), 0, rows_per, off, chunk, d.k_width)
        shift = _load_rep(norm_ref, (m,), 1, rows_per, off, chunk, d.k_width)
        x = (x - mean) * rstd * scale + shift
      return _weight_cast(x, wdtype)
    return vector

  bias = b_ref[m, rows_sl]

  def emit(b, sums):
    """b: one batch row (sums (rows,)) or a pl.ds of rows (sums (rows_b, rows))."""
    y = sums[0] + bias
    if d.gelu:
      y = _gelu_tanh(y)
    if d.residual:
      y = res.read(lambda a: [_ld(a.at(b, rows_sl), rmask, a.poll)])[0] + y
    _st(out.at(b, rows_sl), y, rmask)

  b, order = _tile_rows(rows, d.blocks.order)
  if b is not None:
    vs = v.read(lambda a: [a.bcast(rows[0], len(rows), c * chunk, chunk, d.n_in)
                           for c in range(count)], rows[0], len(rows), d.n_in)
    if d.eps is not None:
      mean, rstd = _stats(vs, chunk, d.n_in, d.eps)  # (rows_b, 1, 1)

    def vector(c):  # (rows_b, 1, chunk): chunk c of every batch row's (normalised) activation
      x = vs[c]
      if d.eps is not None:
        off = c * chunk
        scale = _load_bcast(norm_ref, (m,), 0, 1, 0, off, chunk, d.k_width)
        shift = _load_bcast(norm_ref, (m,), 1, 1, 0, off, chunk, d.k_width)
        x = (x - mean) * rstd * scale + shift
      return _weight_cast(x, wdtype)
    emit(b, _matvec_tile(tiles, vector, count))
  else:
    _matvec(tiles, row_vector, lambda i, sums: emit(rows[i], sums), len(rows), chunk, count,
            rows_per, order)


def _dense_kernel(*refs, d: _Dense, batch: int, bb: int):
  """One (row block, batch block) program of out / up / down.

  refs: m (1,); v; [norm if d.eps is not None]; w; bias; [res if d.residual] | out.
  """
  refs = list(refs)
  m_ref, v_ref = refs.pop(0), refs.pop(0)
  norm_ref = refs.pop(0) if d.eps is not None else None
  w_ref, b_ref = refs.pop(0), refs.pop(0)
  res_ref = refs.pop(0) if d.residual else None
  (out_ref,) = refs
  res = None if res_ref is None else _Act(res_ref)
  _dense_block(_Act(v_ref), norm_ref, w_ref, b_ref, res, _Act(out_ref), pl.program_id(0),
               m_ref[0], _batch_rows(bb, batch), d)


def _dense_call(m, v, norm, w, bias, res, *, n_out: int, blocks: KernelBlocks, wdtype: str,
                eps: float | None, gelu: bool, interpret: bool, config: LayerConfig, name: str):
  B, n_in = v.shape
  bb = batch_block(B, config)
  ins = [m, v] + ([norm] if eps is not None else []) + [w, bias] + (
      [res] if res is not None else [])
  d = _Dense(n_in=n_in, n_out=n_out, blocks=blocks, k_width=w.shape[-1], wdtype=wdtype, eps=eps,
             gelu=gelu, residual=res is not None)
  kernel = functools.partial(_dense_kernel, d=d, batch=B, bb=bb)
  out, = _whole_call(kernel, ins, [jax.ShapeDtypeStruct((B, n_out), jnp.float32)],
                     (w.shape[1] // blocks.rows, B // bb), {}, blocks, interpret, name)
  return out


# ----------------------------------------------------------------------------- one layer


@functools.partial(jax.jit, static_argnames=("spec", "interpret"))
def fused_layer(w: LayerWeights, m: jax.Array, x: jax.Array, acc: jax.Array,
                conv_state: jax.Array, red: jax.Array, u_buf: jax.Array, *, spec: LayerSpec,
                interpret: bool = False):
  """Layer m at one position: the four kernels (jitted on its own, so repeated calls inside an
  outer jit share one lowering and one Triton compile per kernel; XLA inlines it).

  Args:
    w: PreparedLayers.weights.
    m: (1,) int32 layer index.
    x: (B, D) float32 residual.
    acc: (M, B, D) float32 long-convolution contributions (read at layer m).
    conv_state: (M, B, K-1, 3D) float32 (layer m is replaced by its new window, in place).
    red: (M, D) float32 red-cell taps h_0 + bias.
    u_buf: (M, B, D) float32 (layer m is overwritten with u_t, in place).
    spec: PreparedLayers.spec.
    interpret: run the kernel bodies as XLA ops (any backend) instead of compiling with Triton.

  Returns:
    x (B, D) after the layer, u_buf, conv_state.
  """
  cfg = spec.config
  y, u_buf, conv_state = _mix_call(w, m, x, acc, conv_state, red, u_buf, spec, interpret)
  x1 = _dense_call(m, y, None, w.out_w, w.out_b, x, n_out=spec.d_model, blocks=cfg.out,
                   wdtype=spec.dtype, eps=None, gelu=False, interpret=interpret, config=cfg,
                   name="hyena_layer_out")
  h = _dense_call(m, x1, w.norm2, w.up_w, w.up_b, None, n_out=spec.d_inner, blocks=cfg.up,
                  wdtype=spec.dtype, eps=spec.eps, gelu=True, interpret=interpret, config=cfg,
                  name="hyena_layer_up")
  x2 = _dense_call(m, h, None, w.down_w, w.down_b, x1, n_out=spec.d_model, blocks=cfg.down,
                   wdtype=spec.dtype, eps=None, gelu=False, interpret=interpret, config=cfg,
                   name="hyena_layer_down")
  return x2, u_buf, conv_state


def layer_index(m) -> jax.Array:
  return jnp.reshape(jnp.asarray(m, jnp.int32), (1,))


def reference_layer(cfg: HyenaConfig, lp, x, acc_m, conv_m, red_m):
  """The plain-jnp layer (hyena._token_layer): x, u, new conv window of one layer."""
  return hyena._token_layer(cfg, lp, x, acc_m, conv_m, red_m)  # pylint: disable=protected-access


# ----------------------------------------------------------------------------- one launch per token


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


def _grid_arrive(count_ref, index, interpret: bool):
  """This program has made every store before barrier `index` (0: no barrier): it adds 1 to the
  arrival count (count_ref (1,) int32 counts arrivals over the whole kernel, so barrier i is
  passed once it holds i * grid). The atomic is acquire-release at GPU scope (Pallas' Triton
  lowering) and runs once per program; the block barrier before it orders every warp's stores
  before the arrival."""
  if not interpret:
    _triton_memory_op("debug_barrier")()
  _triton_memory_op("atomic_add")(count_ref, (jnp.int32(0),),
                                  jnp.minimum(index, 1).astype(jnp.int32))


def _grid_wait(count_ref, index, grid: int, interpret: bool):
  """Waits until all `grid` programs have arrived at barrier `index`. The count is polled with
  atomic adds of 0, each an acquire (polling with volatile loads and one acquiring atomic at the
  end gave wrong results on an H100: session 6, NOTES); the block barrier after it orders every
  warp's later loads after the wait."""
  atomic_add = _triton_memory_op("atomic_add")
  target = (index * grid).astype(jnp.int32)
  jax.lax.while_loop(lambda seen: seen < target,
                     lambda seen: atomic_add(count_ref, (0 * seen,), 0 * seen), jnp.int32(0))
  if not interpret:
    _triton_memory_op("debug_barrier")()


def _grid_barrier(count_ref, index, grid: int, interpret: bool):
  """Arrive at barrier `index`, then wait for every program (see _grid_arrive / _grid_wait).
  Only safe when all `grid` programs are resident at once (grid <= SMs, nothing else running).
  """
  _grid_arrive(count_ref, index, interpret)
  _grid_wait(count_ref, index, grid, interpret)


def _token_kernel(*refs, spec: LayerSpec, batch: int, grid: int, interpret: bool):
  """All M layers of one token in one launch: per layer the four phases of `fused_layer`
  (mix, out, up, down), each program doing the blocks p = program, program + grid, ... of a
  phase, with a grid-wide barrier between phases. When a phase has at most `grid` blocks and
  spec.config.prefetch is set, a program loads its weight tile BEFORE waiting at the barrier
  (weights do not depend on the activations), so streaming weights overlaps the wait.

  With spec.config.sync "data" or "data_l1" there are no barriers: every phase writes a buffer
  of its own (x (M + 1, B, D): x[m] the residual entering layer m; y, x1 (M, B, D); h (M, B,
  I)), filled with PENDING beforehand, and reads the previous phases' buffers with polling loads
  (_Act).

  refs: x0; acc; red; norm1; mix_w; mix_b; conv_w; conv_b; [conv_in]; u_in; out_w; out_b;
  norm2; up_w; up_b; down_w; down_b; count_in (1,) int32 zeros; [y0; x10; h0 unless sync is
  "barrier"]
  | x (aliased to x0; sync "barrier": (B, D), the residual, updated in place by every layer's
  down phase); y; x1; h ((B, D), (B, D), (B, I) under sync "barrier", aliased to y0, x10, h0
  otherwise); u; [conv]; count (u, conv, count aliased to their inputs).
  """
  has_conv = spec.short_order > 1
  refs = list(refs)
  _, acc, red, norm1, mix_w, mix_b, conv_w, conv_b = refs[:8]
  del refs[:8]
  conv_in = refs.pop(0) if has_conv else None
  refs.pop(0)  # u_in: written through u
  out_w, out_b, norm2, up_w, up_b, down_w, down_b, _ = refs[:8]
  del refs[:8]
  cfg, D, I = spec.config, spec.d_model, spec.d_inner
  data_sync = cfg.sync != "barrier"
  if data_sync:
    del refs[:3]  # y0, x10, h0: written through y, x1, h
  x, y, x1, h, u = refs[:5]
  del refs[:5]
  conv = refs.pop(0) if has_conv else None
  (count,) = refs
  rows = list(range(batch))

  def act(ref, m, read: str | None = None):
    """Buffer `ref` as layer m's phases see it: written (read=None), read with polling loads
    ("poll"), or read once with volatile loads ("done": rows of a buffer this program has
    polled in full before, the residuals)."""
    if not data_sync:
      return _Act(ref)
    return _Act(ref, (m,), poll=read is not None, spin=read == "poll" and not interpret,
                compact=cfg.sync == "data_l1")

  def mix(m):
    return _MixRefs(act(x, m, "poll"), norm1, mix_w, mix_b, conv_w, conv_b, red, acc, conv_in,
                    act(y, m), u, conv)
  d_out = _Dense(D, D, cfg.out, spec.dk, spec.dtype, None, False, True)
  d_up = _Dense(D, I, cfg.up, spec.dk, spec.dtype, spec.eps, True, False)
  d_down = _Dense(I, D, cfg.down, spec.ik, spec.dtype, None, False, True)
  n_mix, n_out, n_up, n_down = _phase_blocks(spec)
  # (blocks, chunks, tiles(p, m), compute(p, m, tiles)) per phase, in order.
  phases = [
      (n_mix, _mix_chunks(spec)[1], lambda p, m: _mix_tiles(mix(m), p, m, rows, spec),
       lambda p, m, t: _mix_block(mix(m), p, m, rows, spec, t)),
      (n_out, d_out.chunks()[1], lambda p, m: _dense_tiles(out_w, p, m, rows, d_out),
       lambda p, m, t: _dense_block(act(y, m, "poll"), None, out_w, out_b, act(x, m, "done"),
                                    act(x1, m), p, m, rows, d_out, t)),
      (n_up, d_up.chunks()[1], lambda p, m: _dense_tiles(up_w, p, m, rows, d_up),
       lambda p, m, t: _dense_block(act(x1, m, "poll"), norm2, up_w, up_b, None, act(h, m), p, m,
                                    rows, d_up, t)),
      (n_down, d_down.chunks()[1],
       lambda p, m: _dense_tiles(down_w, p, m, rows, d_down),
       lambda p, m, t: _dense_block(act(h, m, "poll"), None, down_w, down_b,
                                    act(x1, m, "done"), act(x, m + 1), p, m, rows, d_down, t)),
  ]
  q = pl.program_id(0)
  barrier = not data_sync

  def layer(m, carry):
    for k, (n, chunks, tiles, compute) in enumerate(phases):
      index = 4 * m + k
      if n <= grid:
        loaded = None
        if barrier and cfg.arrive_early:
          _grid_arrive(count, index, interpret)
        if cfg.prefetch:
          tile_fn = tiles(jnp.minimum(q, n - 1), m)
          loaded = [tile_fn(c) for c in range(chunks)]
        if barrier and not cfg.arrive_early:
          _grid_arrive(count, index, interpret)
        if barrier:
          _grid_wait(count, index, grid, interpret)
        tile_arg = None if loaded is None else (lambda c, loaded=loaded: loaded[c])
        if n == grid:
          compute(q, m, tile_arg)
        else:
          pl.when(q < n)(functools.partial(compute, q, m, tile_arg))
      else:
        if barrier:
          _grid_barrier(count, index, grid, interpret)

        def block(i, c, compute=compute, n=n):
          p = q + i * grid
          pl.when(p < n)(functools.partial(compute, p, m, None))
          return c
        jax.lax.fori_loop(0, -(-n // grid), block, 0)
    return carry

  jax.lax.fori_loop(0, spec.n_layers, layer, 0)


def _persistent_call(w: LayerWeights, x, acc, conv_state, red, u_buf, spec: LayerSpec,
                     interpret: bool):
  """Every layer of one token in one pallas_call (see _token_kernel). Returns x, u_buf,
  conv_state (x after the last layer)."""
  B, D = x.shape
  spec = dataclasses.replace(spec, config=spec.config.for_batch(B, spec.dtype))
  has_conv = spec.short_order > 1
  grid = 1 if interpret else persistent_grid(spec)
  if not interpret:
    cores = gpu_core_count()
    per_sm = spec.config.programs_per_sm
    if cores is not None and grid > cores * per_sm:
      raise ValueError(f"the persistent token kernel needs all {grid} programs resident at once, "
                       f"and this GPU has {cores} SMs ({per_sm} program(s) each): use "
                       f"persistent_config(D, I, programs={cores}, programs_per_sm={per_sm}) for "
                       f"the prepared weights, or another layer_loop")
  ins = [x, acc, red, w.norm1, w.mix_w, w.mix_b, w.conv_w, w.conv_b]
  ins += [conv_state] if has_conv else []
  u_at = len(ins)
  ins += [u_buf, w.out_w, w.out_b, w.norm2, w.up_w, w.up_b, w.down_w, w.down_b,
          jnp.zeros((1,), jnp.int32)]
  M, I, f32 = spec.n_layers, spec.d_inner, jnp.float32
  data_sync = spec.config.sync != "barrier"
  shapes = [(B, D), (B, D), (B, D), (B, I)]  # x, y, x1, h
  aliases = {0: 0, u_at: 4}
  if data_sync:  # write-once buffers, PENDING until written
    shapes = [(M + 1, B, D), (M, B, D), (M, B, D), (M, B, I)]
    ins[0] = pending_fill(shapes[0]).at[0].set(jnp.where(jnp.isnan(x), jnp.nan, x))
    for k, shape in enumerate(shapes[1:], 1):
      aliases[len(ins)] = k
      ins.append(pending_fill(shape))
  outs = [jax.ShapeDtypeStruct(shape, f32) for shape in shapes]
  outs.append(jax.ShapeDtypeStruct(u_buf.shape, f32))
  if has_conv:
    outs.append(jax.ShapeDtypeStruct(conv_state.shape, f32))
    aliases[u_at - 1] = 5
  outs.append(jax.ShapeDtypeStruct((1,), jnp.int32))
  aliases[u_at + 8] = len(outs) - 1  # the arrival count
  res = _whole_call(
      functools.partial(_token_kernel, spec=spec, batch=B, grid=grid, interpret=interpret), ins,
      outs, (grid,), aliases, spec.config.mix, interpret, "hyena_token_layers")
  x, u_buf = res[0], res[4]
  if data_sync:
    x = x[M]
  return x, u_buf, (res[5] if has_conv else conv_state)


# ----------------------------------------------------------------------------- token step


@functools.partial(jax.jit, static_argnames=("cfg", "spec", "interpret", "layer_loop"))
def _token_step(params, w: LayerWeights, red, tokens, acc, conv_state, *, cfg: HyenaConfig,
                spec: LayerSpec, interpret: bool, layer_loop: str):
  M, D = cfg.n_layers, cfg.d_model
  B = tokens.shape[0]
  x = hyena.embed(params, tokens)
  acc = acc.astype(jnp.float32)
  conv_state = conv_state.astype(jnp.float32)
  red = red.astype(jnp.float32)
  u_buf = jnp.zeros((M, B, D), jnp.float32)
  step = functools.partial(fused_layer, w, spec=spec, interpret=interpret)
  if layer_loop == "persistent":
    x, u_buf, conv_state = _persistent_call(w, x, acc, conv_state, red, u_buf, spec, interpret)
  elif layer_loop == "unroll":
    for m in range(M):
      x, u_buf, conv_state = step(layer_index(m), x, acc, conv_state, red, u_buf)
  else:
    def body(m, carry):
      x, u_buf, conv_state = carry
      return step(layer_index(m), x, acc, conv_state, red, u_buf)

    x, u_buf, conv_state = jax.lax.fori_loop(0, M, body, (x, u_buf, conv_state))
  return hyena.logits_from_hidden(params, cfg, x), u_buf, conv_state


def _check_inputs(prepared, cfg: HyenaConfig, red, tokens, acc, conv_state):
  if not isinstance(prepared, PreparedLayers):
    raise TypeError(f"expected PreparedLayers (see prepare_layer_weights), got "
                    f"{type(prepared).__name__}")
  if not prepared.spec.matches(cfg):
    s = prepared.spec
    raise ValueError(
        f"prepared weights do not match the config: prepared for M={s.n_layers}, D={s.d_model}, "
        f"I={s.d_inner}, K={s.short_order}, eps={s.eps}, dtype={s.dtype}; the config has "
        f"M={cfg.n_layers}, D={cfg.d_model}, I={cfg.d_inner}, K={cfg.short_filter_order}, "
        f"eps={cfg.layer_norm_eps}, dtype={cfg.dtype}")
  M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
  if tokens.ndim != 1 or not jnp.issubdtype(tokens.dtype, jnp.integer):
    raise ValueError(f"tokens must be (B,) integer ids, got {tokens.dtype} {tokens.shape}")
  B = tokens.shape[0]
  if B < 1:
    raise ValueError("tokens must hold at least one row")
  for name, arr, shape in (("acc", acc, (M, B, D)), ("conv_state", conv_state,
                                                      (M, B, K - 1, 3 * D)),
                           ("consts.red_tap", red, (M, D))):
    if tuple(arr.shape) != shape:
      raise ValueError(f"{name} has shape {tuple(arr.shape)}, expected {shape} (M={M}, B={B}, "
                       f"D={D}, K={K})")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
      raise ValueError(f"{name} must be floating point, got {arr.dtype}")


@dataclasses.dataclass(frozen=True)
class _LayerProbe:
  """Compiles one layer's four Triton kernels, or the persistent token kernel, for a batch
  (hashable: cached by pallas_direct)."""
  spec: LayerSpec
  batch: int
  persistent: bool = False

  def __call__(self):
    avals = layer_avals(self.spec, self.batch)
    if self.persistent:
      w, _, x, acc, conv, red, u = avals
      return jax.jit(_persistent_call, static_argnames=("spec", "interpret")).lower(
          w, x, acc, conv, red, u, spec=self.spec, interpret=False).compile()
    return fused_layer.lower(*avals, spec=self.spec, interpret=False).compile()


def layer_avals(spec: LayerSpec, batch: int) -> tuple:
  """Abstract arguments of `fused_layer` (for probes and cross-lowering)."""
  M, D, K = spec.n_layers, spec.d_model, spec.short_order
  f32 = jnp.float32
  weights = jax.eval_shape(lambda: _prepare(_zero_layers(spec), spec))
  sds = jax.ShapeDtypeStruct
  return (weights, sds((1,), jnp.int32), sds((batch, D), f32), sds((M, batch, D), f32),
          sds((M, batch, K - 1, 3 * D), f32), sds((M, D), f32), sds((M, batch, D), f32))


def _zero_layers(spec: LayerSpec):
  cfg = HyenaConfig(d_model=spec.d_model, n_layers=spec.n_layers, d_inner=spec.d_inner,
                    short_filter_order=spec.short_order, dtype=spec.dtype)
  return hyena.init_params(jax.random.PRNGKey(0), cfg)["layers"]


def resolve_implementation(spec: LayerSpec, batch: int, requested: str | None,
                           persistent: bool = False) -> str:
  """pallas on GPU (probe-compiled once per spec, batch and layer loop kind), interpret on CPU,
  xla otherwise or for B > MAX_BATCH by default; an explicit request that cannot run raises."""
  kernel = (f"layer{' persistent' if persistent else ''} D={spec.d_model} I={spec.d_inner} "
            f"{spec.dtype} B={batch}")
  if requested is None and batch > MAX_BATCH:
    reason = f"B = {batch} > {MAX_BATCH}: a GEMM"
    pd._log_once(kernel, "xla", reason)  # pylint: disable=protected-access
    pd.CHOSEN[kernel], pd.REASONS[kernel] = "xla", reason
    return "xla"
  return pd.resolve_implementation(kernel, requested, _LayerProbe(spec, batch, persistent))


def token_step_fused(params, prepared: PreparedLayers, cfg: HyenaConfig, consts, tokens, acc,
                     conv_state, *, implementation: str | None = None,
                     layer_loop: str | None = None):
  """One token through every layer with the fused kernels: `hyena.token_step`'s contract.

  Args:
    params: model parameters (embedding, final norm, unembedding; the XLA fallback uses all).
    prepared: prepare_layer_weights(params, cfg) (made once per model).
    cfg: the model config.
    consts: hyena.StepConsts (red_tap (M, D)).
    tokens: (B,) token ids at position t.
    acc: (M, B, D) long-convolution contribution of positions < t at position t.
    conv_state: (M, B, K-1, 3D) the previous K-1 short-conv inputs.
    implementation: None (pallas on GPU, interpret on CPU, xla where Pallas cannot run or for
      B > MAX_BATCH; logged once) or one of "pallas", "interpret", "xla".
    layer_loop: "unroll" (a Python loop over layers), "scan" (lax.fori_loop) or "persistent"
      (every layer in one kernel, grid-wide barriers between the phases; needs all programs
      resident, i.e. blocks from persistent_config). None: "persistent" for weights prepared
      with persistent_config, else "unroll".

  Returns:
    logits (B, V) float32, mixer inputs u_t (M, B, D) float32, new conv_state (float32).
  """
  if implementation is not None and implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {IMPLEMENTATIONS}, got "
                     f"{implementation!r}")
  if layer_loop is not None and layer_loop not in LAYER_LOOPS:
    raise ValueError(f"layer_loop must be one of {LAYER_LOOPS}, got {layer_loop!r}")
  red = consts.red_tap
  _check_inputs(prepared, cfg, red, tokens, acc, conv_state)
  if layer_loop is None:
    layer_loop = "persistent" if prepared.spec.config.persistent else "unroll"
  choice = resolve_implementation(prepared.spec, tokens.shape[0], implementation,
                                  persistent=layer_loop == "persistent")
  if choice == "xla":
    return hyena.token_step(params, cfg, consts, tokens, acc, conv_state)
  return _token_step(params, prepared.weights, red, tokens, acc, conv_state, cfg=cfg,
                     spec=prepared.spec, interpret=choice == "interpret", layer_loop=layer_loop)


def reference(params, cfg: HyenaConfig, consts, tokens, acc, conv_state):
  """hyena.token_step (scanned layers): the plain-jnp reference and the XLA fallback."""
  return hyena.token_step(params, cfg, consts, tokens, acc, conv_state)


def weight_bytes_per_token(cfg: HyenaConfig) -> dict[str, int]:
  """Bytes of weights one token reads: the layers' matrices, and the unembedding."""
  item = jnp.dtype(cfg.dtype).itemsize
  D, I, V = cfg.d_model, cfg.d_inner, cfg.vocab_size
  layers = cfg.n_layers * (4 * D * D + 2 * D * I) * item
  return {"layers": layers, "unembedding": V * D * item, "total": layers + V * D * item}


__all__ = ["KernelBlocks", "LayerConfig", "LayerSpec", "LayerWeights", "PreparedLayers",
           "default_config", "prepare_layer_weights", "fused_layer", "token_step_fused",
           "reference", "reference_layer", "resolve_implementation", "weight_bytes_per_token",
           "layer_avals", "layer_index", "IMPLEMENTATIONS", "LAYER_LOOPS", "MAX_BATCH"]
