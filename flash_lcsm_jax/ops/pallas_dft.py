"""tau "pallas_dft": the 2U-point middle product as DFT matrix products in one Pallas kernel.

Same contract as every tau (see `tau`): out[m, b, d, j] = sum_{k<U} h[U + j - k] seg[m, b, d, k].
The math is tau's "matmul" implementation (`tau.dft_factors`), fused: for each (layer, channel
block, batch block) program, per batch row,

  X = seg @ F          (forward real DFT of the zero-padded segment, U -> U+1 frequencies)
  Y = X * H            (filter spectrum, precomputed once per model)
  out = Y @ G          (inverse real DFT, only outputs U..2U-1 kept)

with the frequency axis processed in `freq_block` chunks so X and Y never leave registers. The
products run on the tensor cores (`jnp.dot` inside the kernel).

Packing (so every block is a power of two, as Triton requires): a real signal's DFT has U+1
frequencies, of which X_0 and X_U are real. X_U is stored in the (otherwise zero) imaginary slot of
frequency 0, so the forward matrices are (U, U), and the spectrum product uses three coefficient
arrays instead of Re/Im H:
  y_re = x_re * A - x_im * S,   y_im = x_re * S + x_im * E
with A = Re H, S = Im H, E = Re H for f = 1..U-1 and A = H_0, S = 0, E = H_U at the packed f = 0.

Levels 4..8 (U = 16..256) run the DFT kernel (Triton's tensor-core dot needs every side >= 16);
levels 0..3 use the direct Pallas kernel, so the tau covers every level up to MAX_LEVEL.

Precision: on GPU the dots run as TF32x3 (three TF32 products, float32 accumulation: about
float32 accuracy at tensor-core speed); plain "highest" (IEEE fp32 FMA, no tensor cores) and "tf32"
(one TF32 product, ~1e-3 relative error: not exact enough for parity) can be selected through
`dft_conv(precision=...)`. Interpret mode always uses "highest" (XLA:CPU rejects TF32x3).
Measured error against float64 (interpret mode = float32 "highest"; Gaussian inputs, M = 2,
B = 4, D = 40, max abs error over max |out|, worst of 3 draws): 1.9e-7 (U = 16), 1.8e-7 (32),
2.8e-7 (64), 2.7e-7 (128), 3.8e-7 (256) -- the same order as the jnp.fft tau (1.9e-7..2.5e-7) and
below the float32 loop of tau.reference (2.0e-7..6.2e-7); tests/test_pallas.py pins <= 2e-6. TF32x3
on the H100 is measured by experiments/kernels_gpu.py.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import tau as tau_ops
from flash_lcsm_jax.ops.pallas_direct import pad_axis, pl

MIN_LEVEL = 4  # U = 16: smallest tile for Triton's dot; below it the direct kernel runs.
MAX_LEVEL = 8  # U = 256: beyond it O(U^2) matrices lose clearly to the FFT.
PRECISIONS = ("highest", "tf32x3", "tf32")


@dataclasses.dataclass(frozen=True)
class DftConfig:
  """Frozen launch configuration of one tile level (upper bounds, see `resolve_blocks`)."""
  channel_block: int  # rows of every dot
  batch_block: int
  freq_block: int  # frequencies per chunk (the inner dimension of the inverse dot)
  num_warps: int = 4
  num_stages: int = 1


# Batch rows share a program (and its cached DFT matrices) while the four (U, U) matrices fit in
# L1 (U <= 64); above that each row would reload them from L2 anyway, so rows get programs.
DFT_CONFIGS: dict[int, DftConfig] = {
    4: DftConfig(channel_block=64, batch_block=8, freq_block=16),
    5: DftConfig(channel_block=64, batch_block=8, freq_block=32),
    6: DftConfig(channel_block=32, batch_block=4, freq_block=32),
    7: DftConfig(channel_block=32, batch_block=2, freq_block=32, num_warps=8),
    8: DftConfig(channel_block=32, batch_block=1, freq_block=32, num_warps=8),
}


def _precision(name: str):
  if name not in PRECISIONS:
    raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
  return {"highest": jax.lax.Precision.HIGHEST,
          "tf32x3": jax.lax.DotAlgorithmPreset.TF32_TF32_F32_X3,
          "tf32": jax.lax.Precision.DEFAULT}[name]


@functools.lru_cache(maxsize=None)
def packed_dft_matrices(q: int) -> tuple[np.ndarray, ...]:
  """(F_re, F_im, G_re, G_im), each (U, U) float32, with X_U packed into frequency 0's Im slot.

  x_re = seg @ F_re, x_im = seg @ F_im, out = y_re @ G_re + y_im @ G_im.
  """
  U = 1 << q
  f_re, f_im, g_re, g_im = (a.astype(np.float64) for a in _dft_factors64(q))
  fwd_re, fwd_im = f_re[:, :U].copy(), f_im[:, :U].copy()
  fwd_im[:, 0] = f_re[:, U]  # X_U = sum_k (-1)^k seg[k]
  inv_re, inv_im = g_re[:U].copy(), -g_im[:U]
  inv_im[0] = g_re[U]  # Y_U's (real) contribution
  return tuple(a.astype(np.float32) for a in (fwd_re, fwd_im, inv_re, inv_im))


def _dft_factors64(q: int) -> tuple[np.ndarray, ...]:
  # tau.dft_factors rounds to float32; rebuild in float64 so the packing adds no rounding.
  U = 1 << q
  N = 2 * U
  k = np.arange(U)[:, None]
  f = np.arange(U + 1)[None, :]
  fwd = -2 * np.pi * k * f / N
  weight = np.where((f == 0) | (f == U), 1.0, 2.0) / N
  inv = 2 * np.pi * f.T * (U + np.arange(U)[None, :]) / N
  return np.cos(fwd), np.sin(fwd), weight.T * np.cos(inv), weight.T * np.sin(inv)


def spectrum_coefficients(taps: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(A, S, E), each (M, D, U) float32, from taps (M, D, 2U) (see the module docstring)."""
  U = taps.shape[-1] // 2
  spec = jnp.fft.rfft(taps.astype(jnp.float32), n=2 * U)  # (M, D, U + 1)
  re, im = jnp.real(spec), jnp.imag(spec)
  first = jnp.arange(U) == 0
  a = re[..., :U]
  s = jnp.where(first, 0.0, im[..., :U])
  e = jnp.where(first, re[..., U:U + 1], re[..., :U])
  return a, s, e


# ----------------------------------------------------------------------------- kernel


def _dft_kernel(seg_ref, a_ref, s_ref, e_ref, f_re_ref, f_im_ref, g_re_ref, g_im_ref, out_ref, *,
                freq_block: int, precision):
  """seg_ref, out_ref: (Bb, Cb, U); a/s/e_ref: (Cb, U); f/g refs: (U, U)."""
  n_batch, n_channels, tile = seg_ref.shape
  dot = functools.partial(jnp.dot, precision=precision, preferred_element_type=jnp.float32)
  for b in range(n_batch):
    x = seg_ref[b].astype(jnp.float32)
    acc = jnp.zeros((n_channels, tile), jnp.float32)
    for start in range(0, tile, freq_block):
      freqs = pl.ds(start, freq_block)
      x_re = dot(x, f_re_ref[:, freqs])
      x_im = dot(x, f_im_ref[:, freqs])
      a, s, e = a_ref[:, freqs], s_ref[:, freqs], e_ref[:, freqs]
      y_re = x_re * a - x_im * s
      y_im = x_re * s + x_im * e
      acc = acc + dot(y_re, g_re_ref[freqs, :]) + dot(y_im, g_im_ref[freqs, :])
    out_ref[b] = acc


def resolve_blocks(config: DftConfig, num_channels: int, batch: int, tile: int) -> DftConfig:
  return dataclasses.replace(
      config, channel_block=pallas_direct.channel_block(num_channels, config.channel_block, 16),
      batch_block=pallas_direct.batch_block(batch, config.batch_block),
      freq_block=min(config.freq_block, tile))


@functools.partial(jax.jit, static_argnames=("config", "precision", "interpret"))
def dft_pallas(consts, seg: jax.Array, *, config: DftConfig, precision: str = "tf32x3",
               interpret: bool = False) -> jax.Array:
  """The fused DFT kernel with resolved blocks.

  Args:
    consts: (A, S, E) each (M, Dp, U), then F_re, F_im, G_re, G_im each (U, U) (`prepare`).
    seg: (M, B, D, U), D <= Dp, B a multiple of config.batch_block.
    config: resolved block config.
    precision: one of PRECISIONS ("highest" is used in interpret mode whatever is asked).
    interpret: run as XLA ops instead of compiling with Triton.

  Returns:
    (M, B, D, U) float32.
  """
  a, s, e, f_re, f_im, g_re, g_im = consts
  M, B, D, U = seg.shape
  Dp = a.shape[1]
  cb, bb = config.channel_block, config.batch_block
  seg = pad_axis(seg, 2, Dp)
  coeff_spec = pl.BlockSpec(block_shape=(None, cb, U), index_map=lambda m, c, b: (m, c, 0))
  matrix_spec = pl.BlockSpec(block_shape=(U, U), index_map=lambda m, c, b: (0, 0))
  rows_spec = pl.BlockSpec(block_shape=(None, bb, cb, U), index_map=lambda m, c, b: (m, b, c, 0))
  kernel = functools.partial(_dft_kernel, freq_block=config.freq_block,
                             precision=_precision("highest" if interpret else precision))
  out = pl.pallas_call(
      kernel,
      out_shape=jax.ShapeDtypeStruct((M, B, Dp, U), jnp.float32),
      grid=(M, Dp // cb, B // bb),
      in_specs=[rows_spec] + [coeff_spec] * 3 + [matrix_spec] * 4,
      out_specs=rows_spec,
      interpret=interpret,
      compiler_params=None if interpret else pallas_direct.triton_compiler_params(
          config.num_warps, config.num_stages),
      name=f"tau_dft_u{U}",
  )(seg, a, s, e, f_re, f_im, g_re, g_im)
  return out[:, :, :D]


def dft_xla(consts, seg: jax.Array) -> jax.Array:
  """XLA fallback with the same constants (and the same packed math)."""
  a, s, e, f_re, f_im, g_re, g_im = consts
  D = seg.shape[2]
  dot = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
  x = seg.astype(jnp.float32)
  x_re, x_im = dot(x, f_re), dot(x, f_im)
  a, s, e = (c[:, None, :D] for c in (a, s, e))
  return dot(x_re * a - x_im * s, g_re) + dot(x_re * s + x_im * e, g_im)


def dft_conv(consts, seg: jax.Array, *, implementation: str | None = None,
             precision: str = "tf32x3", config: DftConfig | None = None) -> jax.Array:
  """Dispatcher: the fused DFT kernel for levels MIN_LEVEL..MAX_LEVEL (see `direct_conv`).

  Args:
    consts: from `prepare` at the segment's level.
    seg: (M, B, D, U).
    implementation: None (Triton on GPU, interpret on CPU, XLA fallback; logged once) or one of
      pallas_direct.IMPLEMENTATIONS.
    precision: dot precision of the compiled kernel, one of PRECISIONS.
    config: block config override (defaults to DFT_CONFIGS[q]).

  Returns:
    (M, B, D, U) float32.
  """
  M, B, D, U = seg.shape
  level = U.bit_length() - 1
  if level < MIN_LEVEL:
    return pallas_direct.direct_conv(consts, seg, implementation=implementation)
  if level > MAX_LEVEL:
    raise ValueError(f"tau 'pallas_dft' supports U <= {1 << MAX_LEVEL}, got U = {U}")
  _precision(precision)
  config = resolve_blocks(config or DFT_CONFIGS[level], D, B, U)
  if consts[0].shape[1] % config.channel_block:
    raise ValueError(f"constants hold {consts[0].shape[1]} channels, not a multiple of the block "
                     f"{config.channel_block}: build them with pallas_dft.prepare")
  probe = pallas_direct._Probe(  # pylint: disable=protected-access
      dft_pallas, (tuple(jax.ShapeDtypeStruct(c.shape, c.dtype) for c in consts),
                   jax.ShapeDtypeStruct(seg.shape, seg.dtype)),
      (("config", config), ("precision", precision), ("interpret", False)))
  choice = pallas_direct.resolve_implementation(f"dft U={U}", implementation, probe)
  if choice == "xla":
    return dft_xla(consts, seg)
  return dft_pallas(consts, seg, config=config, precision=precision,
                    interpret=choice == "interpret")


# ----------------------------------------------------------------------------- tau registration


def prepare(filters: jax.Array, q: int):
  """Constants of level q: direct-kernel taps below MIN_LEVEL, else (A, S, E, F_re, F_im, G_re,
  G_im) with channels padded once to the level's block."""
  if q < MIN_LEVEL:
    return pallas_direct.prepare(filters, q)
  D = filters.shape[1]
  block = pallas_direct.channel_block(D, DFT_CONFIGS[min(q, MAX_LEVEL)].channel_block, 16)
  Dp = pallas_direct.padded_channels(D, block)
  coeffs = tuple(pad_axis(c, 1, Dp) for c in spectrum_coefficients(tau_ops.taps(filters, q)))
  return coeffs + tuple(jnp.asarray(m) for m in packed_dft_matrices(q))


def apply(consts, seg: jax.Array) -> jax.Array:
  return dft_conv(consts, seg)


tau_ops.register(tau_ops.TauImpl("pallas_dft", prepare, apply, max_level=MAX_LEVEL))
