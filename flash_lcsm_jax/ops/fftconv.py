"""FFT long convolutions for whole sequences (training path, prefill, prompt contribution)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def fft_size(n: int) -> int:
  """Smallest power of two >= n (cuFFT and XLA:CPU are fastest there)."""
  return 1 << max(0, (n - 1).bit_length())


def causal_conv(u: jax.Array, h: jax.Array) -> jax.Array:
  """z_t = sum_{s<=t} h_{t-s} u_s per channel.

  Args:
    u: (..., L, D) inputs, time second to last.
    h: (D, >=L) filter taps.

  Returns:
    (..., L, D) float32.
  """
  L = u.shape[-2]
  n = fft_size(2 * L)
  u_t = jnp.swapaxes(u.astype(jnp.float32), -1, -2)  # time minor for the FFT
  spec = jnp.fft.rfft(u_t, n=n) * jnp.fft.rfft(h[..., :L], n=n)
  return jnp.swapaxes(jnp.fft.irfft(spec, n=n)[..., :L], -1, -2)


def future_contribution(u: jax.Array, h: jax.Array, start: int, stop: int) -> jax.Array:
  """Contribution of inputs at positions [0, P) to outputs at positions [start, stop).

  Args:
    u: (..., D, P) inputs, time minor.
    h: (..., D, >=stop) filter taps (broadcast against u's leading axes).

  Returns:
    (..., D, stop - start) float32: out_t = sum_{s<P} h_{t-s} u_s.
  """
  P = u.shape[-1]
  n = fft_size(P + stop - 1)
  spec = jnp.fft.rfft(u.astype(jnp.float32), n=n) * jnp.fft.rfft(h[..., :stop], n=n)
  return jnp.fft.irfft(spec, n=n)[..., start:stop]
