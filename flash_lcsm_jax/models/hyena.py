"""Order-2 Hyena language model: parameters, implicit filter, parallel forward, per-token step.

Numerics are pure functions over a parameter pytree whose per-layer leaves are stacked on a
leading layer axis M. Names map one-to-one onto the safari / HyenaDNA state dict (see
`flash_lcsm_jax.io.torch_import`).

Per layer (x is the residual stream):
  n = LayerNorm1(x); p = n @ in_proj            (B, L, 3D)
  c = causal depthwise short conv of p          (kernel K)
  x0, x1, v = split(c);  u = x1 * v             (u is the long-convolution ("mixer") input)
  z = h * u + bias * u                          (causal long convolution, filter h: (D, L))
  x = x + out_proj(x0 * z);  x = x + MLP(LayerNorm2(x))
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.ops import fftconv

Params = dict[str, Any]


# ----------------------------------------------------------------------------- initialisation


def _uniform(key, shape, fan_in):
  bound = 1.0 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


@functools.partial(jax.jit, static_argnames="cfg")
def init_params(key: jax.Array, cfg: HyenaConfig) -> Params:
  """Random parameters with PyTorch-like initialisation (uniform +-1/sqrt(fan_in)).

  Jitted as a whole: one compile instead of one per distinct random draw (13 eagerly); the
  numbers are the same."""
  M, D, I, V, K = cfg.n_layers, cfg.d_model, cfg.d_inner, cfg.vocab_size, cfg.short_filter_order
  E, F, H = cfg.emb_dim, cfg.filter_order, cfg.filter_inner_mlps
  keys = iter(jax.random.split(key, 32))
  max_decay = math.log(cfg.decay_target) / cfg.decay_fast_pct
  min_decay = math.log(cfg.decay_target) / cfg.decay_slow_pct
  deltas = jnp.broadcast_to(jnp.linspace(min_decay, max_decay, D, dtype=jnp.float32), (M, D))
  layers = {
      "norm1": {"scale": jnp.ones((M, D)), "bias": jnp.zeros((M, D))},
      "in_proj": {"kernel": _uniform(next(keys), (M, D, 3 * D), D),
                  "bias": _uniform(next(keys), (M, 3 * D), D)},
      "short_conv": {"kernel": _uniform(next(keys), (M, K, 3 * D), K),
                     "bias": _uniform(next(keys), (M, 3 * D), K)},
      "filter": {
          "w_in": _uniform(next(keys), (M, E, F), E),
          "b_in": _uniform(next(keys), (M, F), E),
          "freq_in": jnp.full((M, F), cfg.filter_sin_freq, jnp.float32),
          "w_hidden": _uniform(next(keys), (M, H, F, F), F),
          "b_hidden": _uniform(next(keys), (M, H, F), F),
          "freq_hidden": jnp.full((M, H, F), cfg.filter_sin_freq, jnp.float32),
          "w_out": _uniform(next(keys), (M, F, D), F),
          "deltas": deltas,
          "bias": jax.random.normal(next(keys), (M, D), jnp.float32),
      },
      "out_proj": {"kernel": _uniform(next(keys), (M, D, D), D),
                   "bias": _uniform(next(keys), (M, D), D)},
      "norm2": {"scale": jnp.ones((M, D)), "bias": jnp.zeros((M, D))},
      "mlp": {
          "fc1": {"kernel": _uniform(next(keys), (M, D, I), D),
                  "bias": _uniform(next(keys), (M, I), D)},
          "fc2": {"kernel": _uniform(next(keys), (M, I, D), I),
                  "bias": _uniform(next(keys), (M, D), I)},
      },
  }
  params = {
      "embed": 0.02 * jax.random.normal(next(keys), (V, D), jnp.float32),
      "layers": layers,
      "final_norm": {"scale": jnp.ones((D,)), "bias": jnp.zeros((D,))},
  }
  if not cfg.tie_embeddings:
    params["unembed"] = _uniform(next(keys), (D, V), D)
  return cast_params(params, cfg)


def cast_params(params: Params, cfg: HyenaConfig) -> Params:
  """Casts matmul weights to cfg.dtype; norms, filter parameters and biases stay float32."""
  dtype = jnp.dtype(cfg.dtype)
  matmul_paths = {("embed",), ("unembed",), ("layers", "in_proj", "kernel"),
                  ("layers", "out_proj", "kernel"), ("layers", "mlp", "fc1", "kernel"),
                  ("layers", "mlp", "fc2", "kernel")}

  def cast(path, leaf):
    names = tuple(p.key for p in path)
    return leaf.astype(dtype) if names in matmul_paths else leaf.astype(jnp.float32)

  return jax.tree_util.tree_map_with_path(cast, params)


# ----------------------------------------------------------------------------- implicit filter


def positional_features(cfg: HyenaConfig, length: int) -> tuple[np.ndarray, np.ndarray]:
  """Positional features z (length, E) and normalised time t (length, 1), built over l_max.

  The grid is defined over the model's l_max, so tap k is the same whatever length is used.
  """
  l_max, bands = cfg.l_max, cfg.bands
  t = np.linspace(0.0, 1.0, l_max)[:, None]
  w = 2 * np.pi * np.arange(l_max)[:, None] / l_max
  f = np.linspace(1e-4, bands - 1, bands)[None, :]
  z = np.exp(-1j * f * w)
  feats = np.concatenate([t, z.real, z.imag], axis=-1)
  return feats[:length].astype(np.float32), t[:length].astype(np.float32)


def materialise_filter(filter_params: Params, cfg: HyenaConfig, length: int) -> jax.Array:
  """Long-convolution filters h of every layer, (M, D, length), float32.

  Raises:
    ValueError: if length exceeds the model's l_max.
  """
  if not 1 <= length <= cfg.l_max:
    raise ValueError(f"filter length must be in [1, l_max={cfg.l_max}], got {length}")
  feats, t = positional_features(cfg, length)
  hi = jax.lax.Precision.HIGHEST  # The filter is computed once; keep it exact.

  def one_layer(fp):
    a = jnp.sin(fp["freq_in"] * (jnp.dot(feats, fp["w_in"], precision=hi) + fp["b_in"]))
    for j in range(cfg.filter_inner_mlps):
      a = jnp.sin(fp["freq_hidden"][j] *
                  (jnp.dot(a, fp["w_hidden"][j], precision=hi) + fp["b_hidden"][j]))
    h = jnp.dot(a, fp["w_out"], precision=hi)  # (length, D)
    decay = jnp.exp(-t * jnp.abs(fp["deltas"]))
    return (h * (decay + cfg.modulation_shift)).T

  fp = {k: v for k, v in filter_params.items() if k != "bias"}
  return jax.vmap(one_layer)(fp).astype(jnp.float32)


# ----------------------------------------------------------------------------- building blocks


def layer_norm(x, p, eps):
  x = x.astype(jnp.float32)
  mean = jnp.mean(x, -1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


def dense(x, p):
  """x @ kernel + bias in the kernel's dtype with float32 accumulation and output."""
  w = p["kernel"]
  y = jnp.dot(x.astype(w.dtype), w, preferred_element_type=jnp.float32)
  return y + p["bias"]


def mlp(x, p):
  return dense(jax.nn.gelu(dense(x, p["fc1"]), approximate=True), p["fc2"])


def logits_from_hidden(params: Params, cfg: HyenaConfig, x):
  n = layer_norm(x, params["final_norm"], cfg.layer_norm_eps)
  unembed = params["embed"].T if cfg.tie_embeddings else params["unembed"]
  return jnp.dot(n.astype(unembed.dtype), unembed, preferred_element_type=jnp.float32)


def embed(params: Params, tokens):
  return params["embed"][tokens].astype(jnp.float32)


# ----------------------------------------------------------------------------- parallel forward


class ForwardAux(NamedTuple):
  """What generation needs from a parallel pass over a prompt."""
  mixer_inputs: jax.Array  # (M, B, L, D) u at every position (zero where invalid).
  conv_tail: jax.Array  # (M, B, K-1, 3D) last K-1 short-conv inputs (zero-padded on the left).


def forward(params: Params, cfg: HyenaConfig, tokens: jax.Array, valid: jax.Array | None = None,
            filters: jax.Array | None = None, return_aux: bool = False,
            positions: jax.Array | None = None):
  """Parallel (training-path) forward with FFT long convolutions.

  Args:
    tokens: (B, L) int token ids.
    valid: optional (B, L) bool mask; False marks left padding. Short-conv and long-conv inputs
      are zeroed there, so each row's outputs equal those of its unpadded sequence.
    filters: optional precomputed (M, D, >=L) filters.
    return_aux: also return ForwardAux for starting generation.
    positions: optional (N,) positions whose logits to return (saves memory at large L * V).

  Returns:
    logits (B, L or N, V) float32, and ForwardAux if return_aux.
  """
  B, L = tokens.shape
  K = cfg.short_filter_order
  h = materialise_filter(params["layers"]["filter"], cfg, L) if filters is None else filters[..., :L]
  mask = (jnp.ones((B, L), jnp.float32) if valid is None else valid.astype(jnp.float32))[..., None]
  x = embed(params, tokens)

  def layer(x, lp_h):
    lp, h_m = lp_h
    p = dense(layer_norm(x, lp["norm1"], cfg.layer_norm_eps), lp["in_proj"]) * mask
    p_pad = jnp.pad(p, ((0, 0), (K - 1, 0), (0, 0)))
    c = sum(p_pad[:, k:k + L] * lp["short_conv"]["kernel"][k] for k in range(K))
    c = c + lp["short_conv"]["bias"]
    x0, x1, v = jnp.split(c, 3, axis=-1)
    u = x1 * v * mask
    z = fftconv.causal_conv(u, h_m) + lp["filter"]["bias"] * u
    x = x + dense(x0 * z, lp["out_proj"])
    x = x + mlp(layer_norm(x, lp["norm2"], cfg.layer_norm_eps), lp["mlp"])
    return x, ForwardAux(u, p_pad[:, L:L + K - 1] if K > 1 else p_pad[:, :0])

  x, aux = jax.lax.scan(layer, x, (params["layers"], h))
  logits = logits_from_hidden(params, cfg, x if positions is None else x[:, positions])
  return (logits, aux) if return_aux else logits


# ----------------------------------------------------------------------------- per-token step


class StepConsts(NamedTuple):
  """Per-layer constants of the red cell: z_t = acc_t + (h_0 + bias) * u_t."""
  red_tap: jax.Array  # (M, D)


def step_consts(params: Params, filters: jax.Array) -> StepConsts:
  return StepConsts(filters[:, :, 0] + params["layers"]["filter"]["bias"])


def split_layers(params: Params) -> tuple[Params, ...]:
  """Per-layer parameter dicts as separate arrays (for the unrolled per-token path).

  Slicing a layer out of the stacked arrays inside a loop copies its weights every token;
  separate buffers let each matrix-vector product read its weights in place.
  """
  M = jax.tree_util.tree_leaves(params["layers"])[0].shape[0]
  return tuple(jax.tree_util.tree_map(lambda x, m=m: x[m], params["layers"]) for m in range(M))


def _token_layer(cfg: HyenaConfig, lp, x, acc_m, conv_m, red_m):
  """One layer at one position: (B, D) residual in, (B, D) residual and u_t out."""
  K = cfg.short_filter_order
  p = dense(layer_norm(x, lp["norm1"], cfg.layer_norm_eps), lp["in_proj"])  # (B, 3D)
  window = jnp.concatenate([conv_m, p[:, None]], axis=1)  # (B, K, 3D)
  c = sum(window[:, k] * lp["short_conv"]["kernel"][k] for k in range(K))
  c = c + lp["short_conv"]["bias"]
  x0, x1, v = jnp.split(c, 3, axis=-1)
  u = x1 * v
  z = acc_m + red_m * u
  x = x + dense(x0 * z, lp["out_proj"])
  x = x + mlp(layer_norm(x, lp["norm2"], cfg.layer_norm_eps), lp["mlp"])
  return x, u, window[:, 1:] if K > 1 else conv_m


def token_step(params: Params, cfg: HyenaConfig, consts: StepConsts, tokens: jax.Array,
               acc: jax.Array, conv_state: jax.Array, layer_list: tuple | None = None):
  """One token through every layer: the per-token critical path shared by all engines.

  Args:
    tokens: (B,) token ids at position t.
    acc: (M, B, D) long-convolution contribution of positions < t at position t.
    conv_state: (M, B, K-1, 3D) the previous K-1 short-conv inputs.
    layer_list: optional split_layers(params): unroll the layer loop over separate weights
      (fewer, larger kernels and no weight copies) instead of scanning the stacked ones.

  Returns:
    logits (B, V), mixer inputs u_t (M, B, D), new conv_state.
  """
  x = embed(params, tokens)
  if layer_list is None:
    def layer(x, per_layer):
      x, u, conv = _token_layer(cfg, *per_layer[:1], x, *per_layer[1:])
      return x, (u, conv)

    x, (u, conv_state) = jax.lax.scan(layer, x, (params["layers"], acc, conv_state,
                                                 consts.red_tap))
  else:
    us, convs = [], []
    for m, lp in enumerate(layer_list):
      x, u_m, conv_m = _token_layer(cfg, lp, x, acc[m], conv_state[m], consts.red_tap[m])
      us.append(u_m)
      convs.append(conv_m)
    u, conv_state = jnp.stack(us), jnp.stack(convs)
  return logits_from_hidden(params, cfg, x), u, conv_state
