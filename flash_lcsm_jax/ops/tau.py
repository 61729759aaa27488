"""tau: the contribution of one gray tile, behind one interface, plus the hybrid dispatcher.

A level-q tile (U = 2^q) takes the segment seg[k] = y_{i-U+1+k}, k < U, and returns
out[j] = sum_k h[U + j - k] * seg[k], j < U  (the contribution to positions i+1..i+U), which
needs taps h_1..h_{2U-1}. Every implementation works on all layers at once:

  prepare(filters (M, D, >=2U), q) -> constants (computed once per model and level)
  apply(constants, seg (M, B, D, U)) -> (M, B, D, U) float32
  apply_inplace (optional): (constants, buf (M, B, D, Lb), t, q, offset=0) -> buf with the whole
    gray tile of position t + offset (offset a static int) added at the following U positions
    (engine.mixers.gray_tile calls it instead of slice / apply / update)
  apply_step (optional): (constants, buf, u (M, B, D), t, q, offset=0) -> (buf, acc of the next
    position): the whole buffer work of a flash step (store u, the gray tile, read the next
    position) in one launch
  layer_consts (optional): (constants, m) -> layer m's constants, so that the engine can run a
    large tile one layer at a time (`by_layer`)

Implementations:
  direct  Toeplitz matrix-vector product per channel (XLA multiply-reduce), small U only.
  direct_dot  the same as a batched dot (XLA), small U only.
  fft     jnp.fft of size 2U with the precomputed filter spectrum (a middle product).
  matmul  the same middle product with DFT matrices on the matrix units (shared by all channels).
  pallas  Pallas direct-convolution kernel (registered by flash_lcsm_jax.ops.pallas_direct).
  pallas_inplace  the whole gray tile as one in-place Pallas kernel (ops.pallas_inplace).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

Prepare = Callable[[jax.Array, int], Any]
Apply = Callable[[Any, jax.Array], jax.Array]
ApplyInplace = Callable[[Any, jax.Array, jax.Array, int, int], jax.Array]
ApplyStep = Callable[[Any, jax.Array, jax.Array, jax.Array, int, int],
                     tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class TauImpl:
  name: str
  prepare: Prepare
  apply: Apply
  max_level: int  # Largest tile level this implementation accepts.
  # (consts, buf, t, level, offset) -> buf: the whole gray tile in one call (module docstring).
  apply_inplace: ApplyInplace | None = None
  # (consts, buf, u, t, level, offset) -> (buf, next acc): a flash step's buffer work in one call.
  apply_step: ApplyStep | None = None
  # (consts, m) -> layer m's constants (m traced; a layer axis of size 1 kept), for `apply` on
  # one layer's (1, B, D, U) segment: lets engine.mixers.gray_tile run a large tile one layer at
  # a time (`by_layer`). None: all layers at once only.
  layer_consts: Callable[[Any, jax.Array], Any] | None = None


def leading_layer(consts, m: jax.Array):
  """Layer m of constants whose every leaf has the layer axis first."""
  return jax.tree_util.tree_map(lambda c: jax.lax.dynamic_slice_in_dim(c, m, 1, axis=0), consts)


def add_tile(apply: Apply, consts, buf: jax.Array, t: jax.Array, U: int,
             layer=None) -> jax.Array:
  """The gray tile as three XLA ops on an (M, B, D, Lb) buffer: buf[..., t+1:t+U+1] +=
  apply(consts, buf[..., t-U+1:t+1]) on every layer, or on `layer` (traced) alone."""
  first, rows = (0, buf.shape[0]) if layer is None else (layer, 1)
  shape = (rows,) + buf.shape[1:3] + (U,)
  seg = jax.lax.dynamic_slice(buf, (first, 0, 0, t - U + 1), shape)
  pending = jax.lax.dynamic_slice(buf, (first, 0, 0, t + 1), shape)
  out = (pending + apply(consts, seg)).astype(buf.dtype)
  return jax.lax.dynamic_update_slice(buf, out, (first, 0, 0, t + 1))


_REGISTRY: dict[str, TauImpl] = {}


def register(impl: TauImpl):
  _REGISTRY[impl.name] = impl


def names() -> list[str]:
  _load_optional()
  return sorted(_REGISTRY)


def get(name: str) -> TauImpl:
  _load_optional()
  if name not in _REGISTRY:
    raise ValueError(f"unknown tau {name!r}; choose from {sorted(_REGISTRY) + ['hybrid']}")
  return _REGISTRY[name]


def _load_optional():
  # The Pallas kernel registers itself on import; it is optional (kept out of the import path
  # of the rest of the package so a Pallas problem never breaks the XLA implementations).
  try:
    from flash_lcsm_jax.ops import pallas_direct  # noqa: F401
  except ImportError:
    pass
  try:
    from flash_lcsm_jax.ops import pallas_inplace  # noqa: F401
  except ImportError:
    pass


def taps(filters: jax.Array, q: int) -> jax.Array:
  """h_0..h_{2U-1} of every layer and channel, zero beyond the filter's end: (M, D, 2U)."""
  U2 = 2 << q
  h = filters[..., :U2]
  return jnp.pad(h, ((0, 0), (0, 0), (0, U2 - h.shape[-1])))


# ----------------------------------------------------------------------------- reference


def reference(filters: jax.Array, seg: jax.Array) -> jax.Array:
  """Plain loop over lags in float32: out[j] = sum_k h[U+j-k] seg[k]."""
  U = seg.shape[-1]
  h = taps(filters, U.bit_length() - 1)
  out = jnp.zeros(seg.shape, jnp.float32)
  for k in range(U):
    lags = h[:, :, U - k:2 * U - k]  # (M, D, U): h[U + j - k] for j < U
    out = out + lags[:, None] * seg[..., k:k + 1]
  return out


# ----------------------------------------------------------------------------- direct


def toeplitz(filters: jax.Array, q: int) -> jax.Array:
  """T[m, d, j, k] = h[U + j - k], (M, D, U, U)."""
  U = 1 << q
  idx = U + np.arange(U)[:, None] - np.arange(U)[None, :]
  return taps(filters, q)[:, :, idx]


def _direct_apply(T, seg):
  # Multiply-and-reduce rather than a dot: a batched dot over (M, D) tiny matrices becomes
  # a slow batched GEMM on GPU (and TF32 at default precision); this stays one exact fusion.
  return jnp.sum(T[:, None] * seg.astype(jnp.float32)[:, :, :, None, :], axis=-1)


register(TauImpl("direct", toeplitz, _direct_apply, max_level=6, layer_consts=leading_layer))


def _direct_dot_apply(T, seg):
  # The same product as a batched dot: fast at B = 1 on GPU (a batched matrix-vector
  # product), slow at larger B (tiny batched GEMMs); calibration decides.
  return jnp.einsum("mdjk,mbdk->mbdj", T, seg, precision=jax.lax.Precision.HIGHEST,
                    preferred_element_type=jnp.float32)


register(TauImpl("direct_dot", toeplitz, _direct_dot_apply, max_level=6,
                 layer_consts=leading_layer))


# ----------------------------------------------------------------------------- fft


def _fft_prepare(filters, q):
  return jnp.fft.rfft(taps(filters, q), n=2 << q)  # (M, D, U + 1)


# Above this many bytes of complex spectrum (M * B * D * (U + 1) * 8) the large tiles run one
# layer at a time: one batched cuFFT plan over every layer fails to allocate there (seen at
# B = 8, U = 2^15 on an H200: 8e9 elements), while per-layer FFTs still fill the device.
FFT_CHUNK_BYTES = 2**32


def by_layer(M: int, B: int, D: int, U: int) -> bool:
  """Whether a tile of U positions over (M, B, D) runs one layer at a time (FFT_CHUNK_BYTES)."""
  return M > 1 and M * B * D * (U + 1) * 8 > FFT_CHUNK_BYTES


def _fft_middle(spectrum, seg):
  U = seg.shape[-1]
  prod = jnp.fft.rfft(seg.astype(jnp.float32), n=2 * U) * spectrum[..., None, :, :]
  return jnp.fft.irfft(prod, n=2 * U)[..., U:]


def _fft_apply(spectrum, seg):
  if by_layer(*seg.shape):  # for callers with a whole segment; the engine loops itself
    return jax.lax.map(lambda args: _fft_middle(*args), (spectrum, seg))
  return _fft_middle(spectrum, seg)


register(TauImpl("fft", _fft_prepare, _fft_apply, max_level=30, layer_consts=leading_layer))


# ----------------------------------------------------------------------------- matmul (DFT)


def dft_factors(q: int) -> tuple[np.ndarray, ...]:
  """Real DFT factors of the 2U-point middle product (float64 built, float32 returned).

  Forward (only the first U inputs are non-zero): X = seg @ (Fr + i Fi), Fr/Fi (U, U+1).
  Inverse (only outputs U..2U-1 are kept, Hermitian symmetry folded in):
  out = Re(Y) @ Gr - Im(Y) @ Gi, Gr/Gi (U+1, U).
  """
  U = 1 << q
  N = 2 * U
  k = np.arange(U)[:, None]
  f = np.arange(U + 1)[None, :]
  fwd = -2 * np.pi * k * f / N
  weight = np.where((f == 0) | (f == U), 1.0, 2.0) / N  # (1, U+1)
  n_out = U + np.arange(U)[None, :]  # (1, U)
  inv = 2 * np.pi * f.T * n_out / N  # (U+1, U)
  return tuple(a.astype(np.float32) for a in (np.cos(fwd), np.sin(fwd), weight.T * np.cos(inv),
                                               weight.T * np.sin(inv)))


def _matmul_prepare(filters, q):
  spec = _fft_prepare(filters, q)
  return (jnp.real(spec), jnp.imag(spec)) + tuple(jnp.asarray(a) for a in dft_factors(q))


def _matmul_apply(consts, seg):
  h_re, h_im, f_re, f_im, g_re, g_im = consts
  # HIGHEST: float32 exactness is the contract (TF32 would add ~1e-3 relative error per tile).
  dot = functools.partial(jnp.dot, precision=jax.lax.Precision.HIGHEST)
  seg = seg.astype(jnp.float32)
  x_re, x_im = dot(seg, f_re), dot(seg, f_im)  # (M, B, D, U+1)
  y_re = x_re * h_re[:, None] - x_im * h_im[:, None]
  y_im = x_re * h_im[:, None] + x_im * h_re[:, None]
  return dot(y_re, g_re) - dot(y_im, g_im)


register(TauImpl("matmul", _matmul_prepare, _matmul_apply, max_level=10,
                 layer_consts=lambda c, m: leading_layer(c[:2], m) + c[2:]))  # factors shared


# ----------------------------------------------------------------------------- hybrid

# Used when no calibration table exists for the device: direct for the tiniest tiles (a few
# fused multiply-adds), DFT matmuls for mid sizes, FFT above.
DEFAULT_HYBRID = {0: "direct", 1: "direct", 2: "direct", 3: "matmul", 4: "matmul", 5: "matmul",
                  6: "matmul"}


def resolve(tau: str, level: int, table: dict[int, str] | None = None) -> str:
  """Name of the implementation that runs a level-`level` tile for the requested tau."""
  if tau != "hybrid":
    impl = get(tau)
    if level > impl.max_level:
      raise ValueError(f"tau {tau!r} supports tile levels <= {impl.max_level} (U <= "
                       f"{1 << impl.max_level}); this generation needs level {level}. "
                       "Use tau='hybrid' or 'fft'.")
    return tau
  table = DEFAULT_HYBRID if table is None else table
  name = table.get(level, "fft")
  impl = get(name)  # validates names from user tables
  return name if level <= impl.max_level else "fft"
