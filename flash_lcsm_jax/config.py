"""Model configuration: a frozen, hashable dataclass (safe as a static jit argument).

Shape legend used across the package:
  M layers, B batch, D model width, I MLP inner width, V vocabulary, L sequence length,
  P prompt length, K short-conv kernel size, F implicit-filter MLP width, E positional features.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class HyenaConfig:
  """Hyena language model hyper-parameters (order 2, as in safari / HyenaDNA)."""

  vocab_size: int = 256
  d_model: int = 64
  n_layers: int = 2
  d_inner: int = 128  # MLP inner width.
  l_max: int = 4096  # Longest sequence the implicit filter is defined for.
  filter_order: int = 16  # Width F of the implicit-filter MLP.
  emb_dim: int = 5  # Positional features: 1 + 2 * bands (odd, >= 3).
  filter_inner_mlps: int = 2  # Hidden Linear+Sin layers after the first.
  filter_sin_freq: float = 1.0  # Initial frequency of the Sin activations (HyenaDNA uses 10).
  short_filter_order: int = 3
  decay_fast_pct: float = 0.3
  decay_slow_pct: float = 1.5
  decay_target: float = 1e-2
  modulation_shift: float = 0.0
  tie_embeddings: bool = True
  layer_norm_eps: float = 1e-5
  dtype: str = "float32"  # Weights / activations dtype: float32 or bfloat16.

  def __post_init__(self):
    positive = ("vocab_size", "d_model", "n_layers", "d_inner", "l_max", "filter_order",
                "short_filter_order")
    for name in positive:
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"HyenaConfig.{name} must be a positive int, got {value!r}")
    for name in ("emb_dim", "filter_inner_mlps"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"HyenaConfig.{name} must be an int, got {value!r}")
    for name in ("decay_fast_pct", "decay_slow_pct", "layer_norm_eps"):
      if not getattr(self, name) > 0:
        raise ValueError(f"HyenaConfig.{name} must be > 0, got {getattr(self, name)!r}")
    if not 0 < self.decay_target < 1:
      raise ValueError(f"HyenaConfig.decay_target must be in (0, 1), got {self.decay_target!r}")
    if self.emb_dim < 3 or self.emb_dim % 2 == 0:
      raise ValueError(f"HyenaConfig.emb_dim must be odd and >= 3, got {self.emb_dim}")
    if self.filter_inner_mlps < 0:
      raise ValueError(f"HyenaConfig.filter_inner_mlps must be >= 0, got {self.filter_inner_mlps}")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"HyenaConfig.dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")

  @property
  def bands(self) -> int:
    return (self.emb_dim - 1) // 2

  @classmethod
  def from_mapping(cls, mapping: Mapping[str, Any]) -> "HyenaConfig":
    """Builds a config from a dict / ConfigDict, rejecting unknown keys."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - known)
    if unknown:
      raise ValueError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
    return cls(**dict(mapping))

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)
