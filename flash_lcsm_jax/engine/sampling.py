"""Token samplers: greedy, temperature, top-k, top-p (nucleus), composable."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Sampler:
  """temperature == 0 means greedy; top_k == 0 and top_p == 1 disable those filters."""
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0

  def __post_init__(self):
    if not (self.temperature >= 0.0 and self.temperature == self.temperature):
      raise ValueError(f"temperature must be >= 0, got {self.temperature}")
    if not isinstance(self.top_k, int) or self.top_k < 0:
      raise ValueError(f"top_k must be an int >= 0 (0 disables it), got {self.top_k!r}")
    if not 0.0 < self.top_p <= 1.0:
      raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

  @property
  def greedy(self) -> bool:
    return self.temperature == 0.0

  def __call__(self, logits: jax.Array, key: jax.Array) -> jax.Array:
    """logits (B, V) float32 -> token ids (B,) int32."""
    if self.greedy:
      return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / self.temperature
    if self.top_k:
      kth = jax.lax.top_k(logits, min(self.top_k, logits.shape[-1]))[0][..., -1:]
      logits = jnp.where(logits < kth, -jnp.inf, logits)
    if self.top_p < 1.0:
      sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
      probs = jax.nn.softmax(sorted_logits, axis=-1)
      # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
      mass_before = jnp.cumsum(probs, axis=-1) - probs
      cutoff = jnp.min(jnp.where(mass_before < self.top_p, sorted_logits, jnp.inf), axis=-1,
                       keepdims=True)
      logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def from_name(name: str, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Sampler:
  """Named presets for the command line: greedy | temperature | top_k | top_p."""
  if name == "greedy":
    return Sampler()
  if name == "temperature":
    return Sampler(temperature)
  if name == "top_k":
    return Sampler(temperature, top_k=top_k or 40)
  if name == "top_p":
    return Sampler(temperature, top_p=top_p if top_p < 1.0 else 0.9)
  raise ValueError(f"unknown sampler {name!r}; choose from greedy, temperature, top_k, top_p")
