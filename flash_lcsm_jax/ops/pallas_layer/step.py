"""One token through the model with the fused kernels (`token_step_fused`): input checks,
the choice of implementation, and the XLA reference."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import pallas_direct as pd
from flash_lcsm_jax.ops.pallas_layer.config import (IMPLEMENTATIONS, LAYER_LOOPS, LayerSpec,
                                                    MAX_BATCH)
from flash_lcsm_jax.ops.pallas_layer.layer import fused_layer, layer_index
from flash_lcsm_jax.ops.pallas_layer.persistent import _persistent_call
from flash_lcsm_jax.ops.pallas_layer.weights import (LayerWeights, _prepare, prepare_layer_weights,
                                                     PreparedLayers)


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
