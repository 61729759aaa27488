"""Weights of every layer prepared once per model for the fused kernels (transposed, regrouped,
padded; see the package docstring)."""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops.pallas_layer.config import default_config, LayerConfig, LayerSpec


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
