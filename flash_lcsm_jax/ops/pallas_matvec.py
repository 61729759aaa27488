"""Split-K matrix-vector products y = x @ W (+ bias) for the per-token path, as one Pallas kernel.

At batch B = 1..8 the dense layers of a decode step are matrix-vector products: every weight is
read once and used B times, so the time is the time to stream W. XLA's dot launches too few thread
blocks for (K, N) = (864, 2592) and similar and reaches about a third of copy bandwidth. This
kernel splits both axes: the grid is (N / BN, S, batch blocks) with S = Kp / (BK * k_steps)
splits of K, so a (864, 2592) product runs as a few hundred programs, each streaming a (BK, BN)
tile of W (k_steps of them in an in-kernel loop when k_steps > 1) and writing float32 partial sums
(S, B, N); the wrapper sums the partials over S and adds the bias in XLA (a small fusion that
also absorbs the bias and the slicing off of padding).

Inside a program, "sum" (the default) forms, per batch row b, the (BK, BN) product of the W tile
and x[b]'s chunk broadcast down the columns and reduces it over BK; "dot" pads the batch block to
16 rows and uses one tl.dot (IEEE float32 for float32 operands, never TF32). Accumulation is
float32 in both, whatever the input dtypes (bfloat16 weights are upcast in registers).

Triton blocks must have power-of-two sizes, so `prepare_weights` pads W ONCE (K to a multiple of
BK * k_steps, N to a multiple of BN) and returns a `PreparedWeights` pytree (the padded array as
its only leaf; K, N and the block config static) that the caller stores in place of W; x is
padded per call (B x K floats: nothing).

Three implementations, as for the other kernels of the package (see pallas_direct, whose version
helpers this module reuses):
  "pallas"    the compiled Triton kernel (GPU only);
  "interpret" the same kernel body run as XLA ops (any backend; slow: tests only);
  "xla"       jnp.dot(x, W_padded, preferred_element_type=float32, precision=HIGHEST): the
              reference and the fallback.
`matvec(..., implementation=None)` picks pallas on GPU (after a one-time compile probe per
shape; XLA if Triton rejects the kernel or B > MAX_PALLAS_BATCH) and xla on CPU, logs its choice
once per (shape, dtype, batch) and records it in pallas_direct.CHOSEN / REASONS under
"matvec KxN ...".

Shape letters: B batch rows, K input features, N output features; Kp, Np, Bp padded.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import types
from typing import Mapping

import jax
import jax.numpy as jnp

from flash_lcsm_jax.ops import pallas_direct as pd

pl = pd.pl
log = logging.getLogger(__name__)

IMPLEMENTATIONS = pd.IMPLEMENTATIONS  # ("pallas", "interpret", "xla")
REDUCTIONS = ("sum", "dot")
GPU_BACKENDS = ("gpu", "cuda", "rocm")
# Above this many rows the product is a GEMM: XLA's tensor-core dot wins, and the default dispatch
# uses it (an explicit implementation="pallas" still runs the kernel, in batch blocks).
MAX_PALLAS_BATCH = 32
DOT_MIN_ROWS = 16  # tl.dot needs M >= 16.


@dataclasses.dataclass(frozen=True)
class MatvecConfig:
  """Frozen launch configuration (hashable: a static jit argument).

  block_n:     BN, columns of W per program (power of two).
  block_k:     BK, rows of W per load (power of two).
  k_steps:     BK-row tiles per program, looped in the kernel (power of two; 1 = pure split-K).
               A split covers BK * k_steps rows, and S = Kp / (BK * k_steps).
  batch_block: most batch rows per program; more rows run as further grid steps.
  reduction:   "sum" (broadcast-multiply and reduce per row) or "dot" (tl.dot on >= 16 rows).
  num_warps, num_stages: Triton launch parameters (stages only matter when k_steps > 1).
  """
  block_n: int = 128
  block_k: int = 64
  k_steps: int = 1
  batch_block: int = 16
  reduction: str = "sum"
  num_warps: int = 4
  num_stages: int = 1

  def __post_init__(self):
    for name in ("block_n", "block_k", "k_steps", "batch_block", "num_warps"):
      value = getattr(self, name)
      if value < 1 or value & (value - 1):
        raise ValueError(f"MatvecConfig.{name} must be a power of two, got {value}")
    if self.num_stages < 1:
      raise ValueError(f"MatvecConfig.num_stages must be >= 1, got {self.num_stages}")
    if self.reduction not in REDUCTIONS:
      raise ValueError(f"MatvecConfig.reduction must be one of {REDUCTIONS}, got "
                       f"{self.reduction!r}")
    if self.reduction == "dot" and min(self.block_n, self.block_k) < 16:
      raise ValueError(f"reduction 'dot' needs block_n, block_k >= 16, got {self}")

  @property
  def split_k(self) -> int:
    """Rows of W one program covers (K is padded to a multiple of this)."""
    return self.block_k * self.k_steps


# Per (K, N) of the paper model's per-token path (d_model 864): several hundred programs per
# call with 16-32 KiB float32 tiles. First guesses, to be replaced by what
# experiments/matvec_gpu.py measures on the H200.
MATVEC_CONFIGS: Mapping[tuple[int, int], MatvecConfig] = types.MappingProxyType({
    (864, 2592): MatvecConfig(block_n=128, block_k=64),    # 21 x 14 = 294 programs
    (864, 864): MatvecConfig(block_n=64, block_k=64),      # 14 x 14 = 196
    (864, 1728): MatvecConfig(block_n=128, block_k=32),    # 14 x 27 = 378
    (1728, 864): MatvecConfig(block_n=64, block_k=64),     # 14 x 27 = 378
    (864, 50257): MatvecConfig(block_n=128, block_k=128),  # 393 x 7 = 2751
})
TARGET_PROGRAMS = 256


def default_config(k: int, n: int) -> MatvecConfig:
  """The table's entry for (K, N), else BN = 128 and the largest BK in 32..128 giving at least
  TARGET_PROGRAMS programs (blocks shrink to the next power of two of tiny K or N)."""
  if (k, n) in MATVEC_CONFIGS:
    return MATVEC_CONFIGS[(k, n)]
  block_n = min(128, max(16, pd.next_pow2(n)))
  block_k = 128
  while block_k > 32 and -(-n // block_n) * -(-k // block_k) < TARGET_PROGRAMS:
    block_k //= 2
  return MatvecConfig(block_n=block_n, block_k=min(block_k, max(16, pd.next_pow2(k))))


# ----------------------------------------------------------------------------- prepared weights


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class PreparedWeights:
  """W padded for the kernel: `w` (Kp, Np) is the only pytree leaf; k, n and config are static.

  Store it instead of W (padding copies W, so do it once, e.g. when loading parameters). Passes
  through jax.jit, tree_map and device_put like any pytree.
  """
  w: jax.Array
  k: int
  n: int
  config: MatvecConfig

  def tree_flatten(self):
    return (self.w,), (self.k, self.n, self.config)

  @classmethod
  def tree_unflatten(cls, aux, children):
    return cls(children[0], *aux)

  @property
  def shape(self) -> tuple[int, int]:
    return (self.k, self.n)

  @property
  def dtype(self):
    return self.w.dtype

  def unpadded(self) -> jax.Array:
    """W (K, N) (a copy: for checks, not for the hot path)."""
    return self.w[:self.k, :self.n]


def prepare_weights(w: jax.Array, config: MatvecConfig | None = None) -> PreparedWeights:
  """Pads W (K, N) with zeros to (Kp, Np), multiples of the config's BK * k_steps and BN.

  Args:
    w: (K, N) weights, any float dtype (kept: bfloat16 stays bfloat16).
    config: block config; default `default_config(K, N)`. `matvec` runs with it unless told
      otherwise (any override's blocks must divide Kp and Np).
  """
  if w.ndim != 2:
    raise ValueError(f"expected weights (K, N), got shape {w.shape}")
  k, n = w.shape
  config = config or default_config(k, n)
  w = pd.pad_axis(pd.pad_axis(w, 0, pd.round_up(k, config.split_k)), 1,
                  pd.round_up(n, config.block_n))
  return PreparedWeights(w, k, n, config)


# ----------------------------------------------------------------------------- kernels


def _over_k(step, acc, block_k: int, k_steps: int):
  """Accumulates step(rows, acc) over the program's k_steps row tiles of block_k rows."""
  if k_steps == 1:
    return step(slice(None), acc)
  return jax.lax.fori_loop(
      0, k_steps,
      lambda i, a: step(pl.ds(pl.multiple_of(i * block_k, block_k), block_k), a), acc)


def _sum_kernel(x_ref, w_ref, out_ref, *, block_k: int, k_steps: int):
  """One (column block, K split, batch block) program, broadcast-multiply-and-sum.

  x_ref: (BK * k_steps, Bb) x transposed; w_ref: (BK * k_steps, BN); out_ref: (Bb, BN).
  """
  n_batch = x_ref.shape[1]
  n_cols = w_ref.shape[1]

  def step(rows, accs):
    w = w_ref[rows, :].astype(jnp.float32)  # one (BK, BN) load serves every batch row
    return tuple(acc + jnp.sum(w * x_ref[rows, pl.ds(b, 1)].astype(jnp.float32), axis=0)
                 for b, acc in enumerate(accs))

  accs = _over_k(step, tuple(jnp.zeros((n_cols,), jnp.float32) for _ in range(n_batch)),
                 block_k, k_steps)
  for b in range(n_batch):
    out_ref[b] = accs[b]


def _dot_kernel(x_ref, w_ref, out_ref, *, block_k: int, k_steps: int):
  """As _sum_kernel with tl.dot. x_ref: (Bb >= 16, BK * k_steps); w_ref: (BK * k_steps, BN)."""

  def step(rows, acc):
    x, w = x_ref[:, rows], w_ref[rows, :]
    if x.dtype != w.dtype or x.dtype not in (jnp.bfloat16, jnp.float16):
      x, w = x.astype(jnp.float32), w.astype(jnp.float32)  # IEEE float32 under HIGHEST
    return acc + jnp.dot(x, w, preferred_element_type=jnp.float32,
                         precision=jax.lax.Precision.HIGHEST)

  out_ref[...] = _over_k(step, jnp.zeros(out_ref.shape, jnp.float32), block_k, k_steps)


def batch_block(batch: int, config: MatvecConfig) -> int:
  """Rows per program: the next power of two of B, at most config.batch_block (>= 16 for dot)."""
  rows = min(pd.next_pow2(batch), config.batch_block)
  return max(rows, DOT_MIN_ROWS) if config.reduction == "dot" else rows


def partial_products(x: jax.Array, w: jax.Array, config: MatvecConfig,
                     interpret: bool = False) -> jax.Array:
  """The pallas_call: (S, Bp, Np) float32 partial sums of x_padded @ w over the S K-splits.

  x: (Bp, Kp), Bp a multiple of batch_block(Bp, config); w: (Kp, Np) padded to the config.
  """
  Bp, Kp = x.shape
  Np = w.shape[1]
  bn, bks = config.block_n, config.split_k
  bb = batch_block(Bp, config)
  if Kp % bks or Np % bn or Bp % bb or w.shape[0] != Kp:
    raise ValueError(f"x {x.shape} and w {w.shape} are not padded to {config}")
  S = Kp // bks
  grid = (Np // bn, S, Bp // bb)  # column blocks vary fastest: neighbours read adjacent tiles
  if config.reduction == "sum":
    kernel, x_in = _sum_kernel, x.T  # (Kp, Bp): a program's x chunk as (BKS, Bb) columns
    x_spec = pl.BlockSpec(block_shape=(bks, bb), index_map=lambda j, s, b: (s, b))
  else:
    kernel, x_in = _dot_kernel, x
    x_spec = pl.BlockSpec(block_shape=(bb, bks), index_map=lambda j, s, b: (b, s))
  return pl.pallas_call(
      functools.partial(kernel, block_k=config.block_k, k_steps=config.k_steps),
      out_shape=jax.ShapeDtypeStruct((S, Bp, Np), jnp.float32),
      grid=grid,
      in_specs=[x_spec,
                pl.BlockSpec(block_shape=(bks, bn), index_map=lambda j, s, b: (s, j))],
      out_specs=pl.BlockSpec(block_shape=(None, bb, bn), index_map=lambda j, s, b: (s, b, j)),
      interpret=interpret,
      compiler_params=None if interpret else pd.triton_compiler_params(config.num_warps,
                                                                       config.num_stages),
      name=f"matvec_{config.reduction}",
  )(x_in, w)


def _pad_x(x: jax.Array, rows: int, cols: int) -> jax.Array:
  if x.dtype not in (jnp.float32, jnp.bfloat16, jnp.float16):
    x = x.astype(jnp.float32)
  return pd.pad_axis(pd.pad_axis(x, 0, rows), 1, cols)


def _add_bias(y: jax.Array, bias: jax.Array | None) -> jax.Array:
  return y if bias is None else y + bias.astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("n", "config", "interpret"))
def matvec_pallas(x: jax.Array, w: jax.Array, bias: jax.Array | None, *, n: int,
                  config: MatvecConfig, interpret: bool = False) -> jax.Array:
  """x (B, K) @ w[:K, :n] + bias with the kernel; w (Kp, Np) padded to `config`. (B, n) float32.

  Jitted on its own so that repeated calls inside an outer jit share one lowering (and one Triton
  compile); XLA inlines it, so the sum over splits fuses with the bias and what follows.
  """
  B, _ = x.shape
  Kp, _ = w.shape
  bb = batch_block(B, config)
  parts = partial_products(_pad_x(x, pd.round_up(B, bb), Kp), w, config, interpret)
  return _add_bias(jnp.sum(parts[:, :B, :n], axis=0), bias)


def matvec_xla(x: jax.Array, w: jax.Array, bias: jax.Array | None, *, n: int) -> jax.Array:
  """The XLA reference/fallback on the padded weights (no copy of W): x is zero-padded to Kp.

  Float32 operands multiply in float32 (precision HIGHEST: no TF32); bfloat16 x with bfloat16 W
  is XLA's bfloat16 dot; mixed dtypes promote (W upcast by XLA)."""
  x = _pad_x(x, x.shape[0], w.shape[0])
  y = jnp.dot(x, w, preferred_element_type=jnp.float32, precision=jax.lax.Precision.HIGHEST)
  return _add_bias(y[:, :n].astype(jnp.float32), bias)


# ----------------------------------------------------------------------------- dispatcher


def resolve_implementation(kernel: str, requested: str | None, probe, batch: int) -> str:
  """pallas_direct's choice, except that the default is XLA off GPU (interpret mode only when
  asked: it is slow) and for batches above MAX_PALLAS_BATCH."""
  if requested is None:
    backend = pd._backend()  # pylint: disable=protected-access
    reason = None
    if backend not in GPU_BACKENDS:
      reason = f"{backend!r} backend (interpret mode only on request)"
    elif batch > MAX_PALLAS_BATCH:
      reason = f"B = {batch} > {MAX_PALLAS_BATCH}: a GEMM"
    if reason is not None:
      pd._log_once(kernel, "xla", reason)  # pylint: disable=protected-access
      pd.CHOSEN[kernel], pd.REASONS[kernel] = "xla", reason
      return "xla"
  return pd.resolve_implementation(kernel, requested, probe)


def matvec(x: jax.Array, prepared: PreparedWeights, bias: jax.Array | None = None, *,
           implementation: str | None = None, config: MatvecConfig | None = None) -> jax.Array:
  """y = x @ W + bias in float32 with float32 accumulation.

  Args:
    x: (..., K) float32 / bfloat16 / float16 (other dtypes are cast to float32).
    prepared: `prepare_weights(W)`.
    bias: optional (N,) (added in float32).
    implementation: None (pallas on GPU, xla elsewhere or for B > MAX_PALLAS_BATCH; logged once)
      or one of "pallas", "interpret", "xla". An explicit choice that cannot run raises.
    config: override of prepared.config; its BN and BK * k_steps must divide the padded shape.

  Returns:
    (..., N) float32.
  """
  if not isinstance(prepared, PreparedWeights):
    raise TypeError(f"expected PreparedWeights (see prepare_weights), got {type(prepared)}")
  k, n, w = prepared.k, prepared.n, prepared.w
  if x.ndim < 1 or x.shape[-1] != k:
    raise ValueError(f"x {x.shape} does not match weights (K, N) = ({k}, {n})")
  if bias is not None and bias.shape != (n,):
    raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
  config = config or prepared.config
  if w.shape[0] % config.split_k or w.shape[1] % config.block_n:
    raise ValueError(f"weights padded to {w.shape} do not fit {config}: prepare them with it")
  lead = x.shape[:-1]
  x2 = x.reshape((-1, k))
  B = x2.shape[0]
  if implementation is not None and implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {IMPLEMENTATIONS}, got "
                     f"{implementation!r}")
  probe = pd._Probe(  # pylint: disable=protected-access
      matvec_pallas, (jax.ShapeDtypeStruct(x2.shape, x2.dtype),
                      jax.ShapeDtypeStruct(w.shape, w.dtype), None),
      (("n", n), ("config", config), ("interpret", False)))
  kernel = f"matvec {k}x{n} {jnp.dtype(w.dtype).name} B={B}"
  choice = resolve_implementation(kernel, implementation, probe, B)
  if choice == "xla":
    y = matvec_xla(x2, w, bias, n=n)
  else:
    y = matvec_pallas(x2, w, bias, n=n, config=config, interpret=choice == "interpret")
  return y.reshape(lead + (n,))


def reference(x: jax.Array, prepared: PreparedWeights, bias: jax.Array | None = None):
  """matvec(..., implementation="xla")."""
  return matvec(x, prepared, bias, implementation="xla")
