"""Import of the reference Hyena state dict (safari / HyenaDNA layout) into our parameters.

Reads safetensors files with no dependency, and PyTorch files (.pt / .bin / .ckpt) through
`torch.load(..., weights_only=True)` (no code runs) when torch is installed (the optional `torch`
extra). The model config is inferred from the tensor shapes; a given config must agree.

Reference names and shapes (PyTorch Linear weights are (out, in); ours are (in, out)):

  backbone.embeddings.word_embeddings.weight   (V, D)   -> embed
  backbone.layers.{i}. ...                               -> layers[i] ...
    norm1.{weight,bias}                        (D,)     -> norm1.{scale,bias}
    mixer.in_proj.{weight,bias}                (3D, D)  -> in_proj.{kernel (D, 3D), bias}
    mixer.short_filter.{weight,bias}           (3D,1,K) -> short_conv.{kernel (K, 3D), bias}
    mixer.filter_fn.bias                       (D,)     -> filter.bias
    mixer.filter_fn.implicit_filter.0.{weight,bias}  (F, E)  -> filter.{w_in (E, F), b_in}
    mixer.filter_fn.implicit_filter.1.freq     (1, F)   -> filter.freq_in
    mixer.filter_fn.implicit_filter.{2+2j}.{weight,bias}, .{3+2j}.freq
                                                        -> filter.{w,b,freq}_hidden[j]
    mixer.filter_fn.implicit_filter.{2H+2}.weight    (D, F)  -> filter.w_out (F, D)
    mixer.filter_fn.modulation.deltas          (1,1,D)  -> filter.deltas
    mixer.filter_fn.pos_emb.{z,t}              (1,L,E), (1,L,1): checked, not imported
    mixer.out_proj.{weight,bias}               (D, D)   -> out_proj
    norm2.{weight,bias}; mlp.fc1.{weight,bias} (I, D); mlp.fc2.{weight,bias} (D, I)
  backbone.ln_f.{weight,bias}                           -> final_norm
  lm_head.weight                               (V, D)   -> tied when absent or equal to the
                                                           embedding, else unembed (D, V)

Short conv: PyTorch's Conv1d (padding K-1, output truncated to L) is a cross-correlation, so
weight[:, 0, k] multiplies the input at t-(K-1)+k, exactly our kernel[k].

Positional features: the reference stores them (`pos_emb.z`, and `t`) per layer; we compute them
analytically from l_max so that tap k is the same at every generation length. They are checked
against ours (tolerance `pos_emb_atol`) and not imported. The reference registers z with a small
learning rate (`lr_pos_emb`, 1e-5 in safari; HyenaDNA's released configs use 0), so a checkpoint
trained with a nonzero rate may have drifted from the analytic value: the import then fails and
says by how much (raise pos_emb_atol to accept the approximation).

The reference's Sin activations share one frequency parameter per filter (one module used at
every Sin position); a state dict lists it under each position and we import each.
Not inferable from a state dict, so taken from the given config (defaults otherwise):
modulation_shift (safari: 0.0, HyenaDNA's standalone file: 0.05), layer_norm_eps, dtype.
Unsupported reference options (rejected through unexpected keys or shapes): order > 2, several
heads, inner_factor > 1, post_order_ffn, attention layers, learned position embeddings.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import validation
from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.io import checkpoint
from flash_lcsm_jax.models import hyena

EMBED = "backbone.embeddings.word_embeddings.weight"
LM_HEAD = "lm_head.weight"
_LAYER = re.compile(r"^backbone\.layers\.(\d+)\.(.+)$")
_FILTER_LINEAR = re.compile(r"^mixer\.filter_fn\.implicit_filter\.(\d+)\.weight$")
_POS_Z = "mixer.filter_fn.pos_emb.z"
_POS_T = "mixer.filter_fn.pos_emb.t"

# Fields inferred from shapes; the rest come from the given config.
INFERRED_FIELDS = ("vocab_size", "d_model", "n_layers", "d_inner", "l_max", "filter_order",
                   "emb_dim", "filter_inner_mlps", "short_filter_order", "tie_embeddings")


class StateDictError(ValueError):
  """A state dict that cannot be imported: names every missing, unexpected or misshapen key."""


# ----------------------------------------------------------------------------- layout


def _t(x):
  return np.swapaxes(x, -1, -2)


def _layer_spec(cfg: HyenaConfig):
  """[(reference name under backbone.layers.{i}., our path under layers, reference shape,
  reference -> ours, ours -> reference)] for one layer."""
  D, I, K = cfg.d_model, cfg.d_inner, cfg.short_filter_order
  E, F, H = cfg.emb_dim, cfg.filter_order, cfg.filter_inner_mlps
  same = (lambda x: x, lambda x: x)
  linear = (_t, _t)
  freq = (lambda x: x[0], lambda x: x[None])
  conv = (lambda x: _t(x[:, 0, :]), lambda x: _t(x)[:, None, :])
  deltas = (lambda x: x.reshape(-1), lambda x: x.reshape(1, 1, -1))
  f = "mixer.filter_fn.implicit_filter"
  spec = [
      ("norm1.weight", ("norm1", "scale"), (D,), same),
      ("norm1.bias", ("norm1", "bias"), (D,), same),
      ("mixer.in_proj.weight", ("in_proj", "kernel"), (3 * D, D), linear),
      ("mixer.in_proj.bias", ("in_proj", "bias"), (3 * D,), same),
      ("mixer.short_filter.weight", ("short_conv", "kernel"), (3 * D, 1, K), conv),
      ("mixer.short_filter.bias", ("short_conv", "bias"), (3 * D,), same),
      ("mixer.filter_fn.bias", ("filter", "bias"), (D,), same),
      (f"{f}.0.weight", ("filter", "w_in"), (F, E), linear),
      (f"{f}.0.bias", ("filter", "b_in"), (F,), same),
      (f"{f}.1.freq", ("filter", "freq_in"), (1, F), freq),
  ]
  for j in range(H):
    spec += [(f"{f}.{2 + 2 * j}.weight", ("filter", "w_hidden", j), (F, F), linear),
             (f"{f}.{2 + 2 * j}.bias", ("filter", "b_hidden", j), (F,), same),
             (f"{f}.{3 + 2 * j}.freq", ("filter", "freq_hidden", j), (1, F), freq)]
  spec += [
      (f"{f}.{2 * H + 2}.weight", ("filter", "w_out"), (D, F), linear),
      ("mixer.filter_fn.modulation.deltas", ("filter", "deltas"), (1, 1, D), deltas),
      ("mixer.out_proj.weight", ("out_proj", "kernel"), (D, D), linear),
      ("mixer.out_proj.bias", ("out_proj", "bias"), (D,), same),
      ("norm2.weight", ("norm2", "scale"), (D,), same),
      ("norm2.bias", ("norm2", "bias"), (D,), same),
      ("mlp.fc1.weight", ("mlp", "fc1", "kernel"), (I, D), linear),
      ("mlp.fc1.bias", ("mlp", "fc1", "bias"), (I,), same),
      ("mlp.fc2.weight", ("mlp", "fc2", "kernel"), (D, I), linear),
      ("mlp.fc2.bias", ("mlp", "fc2", "bias"), (D,), same),
  ]
  return spec


def expected_shapes(cfg: HyenaConfig) -> dict[str, tuple[int, ...]]:
  """Every reference name and its shape for a model with this config."""
  shapes = {EMBED: (cfg.vocab_size, cfg.d_model), "backbone.ln_f.weight": (cfg.d_model,),
            "backbone.ln_f.bias": (cfg.d_model,)}
  if not cfg.tie_embeddings:
    shapes[LM_HEAD] = (cfg.vocab_size, cfg.d_model)
  for i in range(cfg.n_layers):
    for name, _, shape, _ in _layer_spec(cfg):
      shapes[f"backbone.layers.{i}.{name}"] = shape
    shapes[f"backbone.layers.{i}.{_POS_Z}"] = (1, cfg.l_max, cfg.emb_dim)
    shapes[f"backbone.layers.{i}.{_POS_T}"] = (1, cfg.l_max, 1)
  return shapes


# ----------------------------------------------------------------------------- reading files


def _to_numpy(value) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch tensor (numpy has no bfloat16: widen it)
    value = value.detach().cpu()
    if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
      value = value.float()
    return value.numpy()
  return np.asarray(value)


def _load_torch(path: str) -> dict[str, Any]:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError(f"reading the PyTorch file {path!r} needs torch (pip install "
                      "'flash_lcsm_jax[torch]'), or convert it to safetensors first") from None
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # weights_only refuses anything but tensors and plain containers
    raise StateDictError(f"{path}: torch.load(weights_only=True) failed ({type(e).__name__}: "
                         f"{e}). Only plain state dicts are read (no pickled code); save "
                         "model.state_dict() on its own or as safetensors.") from None
  for wrapper in ("state_dict", "model", "module"):
    if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
      obj = obj[wrapper]
      break
  if not isinstance(obj, Mapping):
    raise StateDictError(f"{path}: expected a state dict (name -> tensor), got {type(obj)}")
  return dict(obj)


def load_state_dict(path: str) -> dict[str, np.ndarray]:
  """Reads a reference state dict from safetensors (no torch needed) or a PyTorch file.

  Tensors that safetensors.torch.save_model dropped as duplicates of shared storage (tied
  lm_head, the shared Sin frequency) are restored from the file's alias metadata.
  """
  kind = checkpoint.file_kind(path)
  if kind is None:
    raise StateDictError(f"{path}: neither a safetensors nor a PyTorch file")
  if kind == "safetensors":
    arrays, metadata = checkpoint.read_safetensors(path)
    for name, target in metadata.items():
      if name not in arrays and target in arrays:
        arrays[name] = arrays[target]
    return arrays
  return {k: _to_numpy(v) for k, v in _load_torch(path).items()}


# ----------------------------------------------------------------------------- import


def _strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Removes a wrapper prefix ('model.', 'module.', ...) found in front of the embedding key."""
  prefixes = {k[:-len(EMBED)] for k in state_dict if k.endswith(EMBED)}
  if len(prefixes) > 1:
    raise StateDictError(f"several models in one state dict (prefixes {sorted(prefixes)})")
  prefix = prefixes.pop() if prefixes else ""
  return {(k[len(prefix):] if prefix and k.startswith(prefix) else k): v
          for k, v in state_dict.items()}


def infer_config(state_dict: Mapping[str, Any], cfg: HyenaConfig | None = None,
                 **overrides) -> HyenaConfig:
  """The HyenaConfig a reference state dict describes.

  Shapes give the fields in INFERRED_FIELDS; the others come from `cfg` (or the defaults) and
  `overrides`. If `cfg` or `overrides` set an inferred field to another value, that is an error.

  Raises:
    StateDictError: the state dict is not a reference Hyena LM, or disagrees with cfg.
  """
  sd = _strip_prefix(state_dict)
  shape = lambda k: tuple(np.shape(sd[k])) if k in sd else None
  found: dict[str, Any] = {}
  if shape(EMBED) and len(shape(EMBED)) == 2:
    found["vocab_size"], found["d_model"] = shape(EMBED)
  layer_ids = {int(m.group(1)) for k in sd if (m := _LAYER.match(k))}
  if layer_ids:
    found["n_layers"] = max(layer_ids) + 1
  p = "backbone.layers.0."
  in_proj = shape(p + "mixer.in_proj.weight")
  if in_proj and len(in_proj) == 2 and in_proj[0] != 3 * in_proj[1]:
    raise StateDictError(f"{p}mixer.in_proj.weight has shape {in_proj}: only order-2 Hyena "
                         f"with one head is supported (expected (3*D, D))")
  if shape(p + "mlp.fc1.weight"):
    found["d_inner"] = shape(p + "mlp.fc1.weight")[0]
  if shape(p + "mixer.short_filter.weight"):
    found["short_filter_order"] = shape(p + "mixer.short_filter.weight")[-1]
  first = shape(p + "mixer.filter_fn.implicit_filter.0.weight")
  if first and len(first) == 2:
    found["filter_order"], found["emb_dim"] = first
  linears = [int(m.group(1)) for k in sd if k.startswith(p) and
             (m := _FILTER_LINEAR.match(k[len(p):]))]
  if linears:
    found["filter_inner_mlps"] = max(0, len(linears) - 2)
  if shape(p + _POS_Z) and len(shape(p + _POS_Z)) == 3:
    found["l_max"] = shape(p + _POS_Z)[1]
  found["tie_embeddings"] = (LM_HEAD not in sd or EMBED not in sd or
                             np.array_equal(_to_numpy(sd[LM_HEAD]), _to_numpy(sd[EMBED])))

  base = (cfg or HyenaConfig()).to_dict()
  wanted = dict(overrides)
  if cfg is not None:
    wanted = {**{k: base[k] for k in INFERRED_FIELDS}, **wanted}
  conflicts = [f"{k}: state dict implies {found[k]!r}, config says {wanted[k]!r}"
               for k in INFERRED_FIELDS if k in found and k in wanted and found[k] != wanted[k]]
  if conflicts:
    raise StateDictError("the given config does not match the state dict: " + "; ".join(conflicts))
  unknown = [k for k in INFERRED_FIELDS if k not in found and k not in wanted]
  if unknown:
    raise StateDictError(f"cannot infer {unknown} from the state dict (missing "
                         f"{EMBED!r} or backbone.layers.0.* keys) and no config gives them")
  base.update(wanted)
  base.update(found)
  try:
    return HyenaConfig.from_mapping(base)
  except ValueError as e:
    raise StateDictError(f"state dict implies an invalid config: {e}") from None


def _check_layout(sd: Mapping[str, Any], cfg: HyenaConfig):
  want = expected_shapes(cfg)
  problems = []
  missing = sorted(set(want) - set(sd))
  unexpected = sorted(k for k in set(sd) - set(want) if not (k == LM_HEAD and cfg.tie_embeddings))
  if missing:
    problems.append(f"missing keys {checkpoint._short(missing)}")
  if unexpected:
    problems.append(f"unexpected keys {checkpoint._short(unexpected)}")
  bad = [f"{k}: {tuple(np.shape(sd[k]))} (expected {want[k]})" for k in sorted(want)
         if k in sd and tuple(np.shape(sd[k])) != want[k]]
  if LM_HEAD in sd and tuple(np.shape(sd[LM_HEAD])) != (cfg.vocab_size, cfg.d_model):
    bad.append(f"{LM_HEAD}: {tuple(np.shape(sd[LM_HEAD]))} (expected "
               f"{(cfg.vocab_size, cfg.d_model)})")
  if bad:
    problems.append(f"shape mismatches {checkpoint._short(bad)}")
  if problems:
    raise StateDictError(f"state dict does not match a Hyena LM with {_describe(cfg)}: "
                         + "; ".join(problems))


def _describe(cfg: HyenaConfig) -> str:
  return (f"n_layers={cfg.n_layers}, d_model={cfg.d_model}, d_inner={cfg.d_inner}, "
          f"vocab_size={cfg.vocab_size}, filter_order={cfg.filter_order}, emb_dim="
          f"{cfg.emb_dim}, filter_inner_mlps={cfg.filter_inner_mlps}, l_max={cfg.l_max}, "
          f"short_filter_order={cfg.short_filter_order}")


def _check_positional(sd: Mapping[str, np.ndarray], cfg: HyenaConfig, atol: float):
  feats, t = hyena.positional_features(cfg, cfg.l_max)
  for i in range(cfg.n_layers):
    for name, ours in ((_POS_Z, feats), (_POS_T, t)):
      key = f"backbone.layers.{i}.{name}"
      dev = float(np.max(np.abs(sd[key][0].astype(np.float64) - ours)))
      if not dev <= atol:
        raise StateDictError(
            f"{key} differs from the analytic positional features by up to {dev:.3g} "
            f"(tolerance pos_emb_atol={atol:g}). This model computes them from l_max instead "
            "of storing them (the reference trains z with lr_pos_emb); pass a larger "
            "pos_emb_atol to import anyway, with slightly different filters.")


def import_state_dict(state_dict: Mapping[str, Any], cfg: HyenaConfig | None = None, *,
                      pos_emb_atol: float = 1e-4, **overrides):
  """Maps a reference (safari / HyenaDNA) state dict onto our parameters.

  Args:
    state_dict: name -> array (numpy or torch tensors); a common prefix such as 'model.' in
      front of the reference names is stripped.
    cfg: optional config; it must agree with the shapes (see infer_config).
    pos_emb_atol: largest accepted deviation of the stored positional features from ours.
    **overrides: config fields the state dict cannot give (modulation_shift, layer_norm_eps,
      dtype, ...).

  Returns:
    (params, HyenaConfig), params cast to cfg.dtype like hyena.init_params.

  Raises:
    StateDictError: missing or unexpected keys, shape mismatches, config disagreement,
      positional features that differ from ours; ValueError: NaN / Inf weights.
  """
  sd = {k: _to_numpy(v) for k, v in _strip_prefix(state_dict).items()}
  cfg = infer_config(sd, cfg, **overrides)
  _check_layout(sd, cfg)
  _check_positional(sd, cfg, pos_emb_atol)
  template = jax.eval_shape(lambda: hyena.init_params(jax.random.PRNGKey(0), cfg))
  layers = jax.tree.map(lambda s: np.zeros(s.shape, np.float32), template["layers"])
  for i in range(cfg.n_layers):
    for name, path, _, (to_ours, _) in _layer_spec(cfg):
      node = layers
      for key in path[:-1]:
        node = node[key]
      value = to_ours(sd[f"backbone.layers.{i}.{name}"]).astype(np.float32)
      if isinstance(path[-1], int):  # a hidden filter layer: (M, H, ...)
        node[i, path[-1]] = value
      else:
        node[path[-1]][i] = value
  params = {"embed": sd[EMBED].astype(np.float32), "layers": layers,
            "final_norm": {"scale": sd["backbone.ln_f.weight"].astype(np.float32),
                           "bias": sd["backbone.ln_f.bias"].astype(np.float32)}}
  if not cfg.tie_embeddings:
    params["unembed"] = _t(sd[LM_HEAD]).astype(np.float32)
  params = hyena.cast_params(jax.tree.map(jnp.asarray, params), cfg)
  validation.check_params(params, cfg)
  return params, cfg


def load_reference(path: str, cfg: HyenaConfig | None = None, **kwargs):
  """(params, HyenaConfig) from a reference checkpoint file (safetensors or PyTorch)."""
  try:
    return import_state_dict(load_state_dict(path), cfg, **kwargs)
  except StateDictError as e:
    raise StateDictError(f"{path}: {e}") from None


# ----------------------------------------------------------------------------- export


def export_state_dict(params, cfg: HyenaConfig, *, lm_head: bool = True) -> dict[str, np.ndarray]:
  """Our parameters under the reference names and shapes (float32 numpy), the inverse of
  import_state_dict. Positional features are written as the reference would store them.

  lm_head: also write lm_head.weight (a copy of the embedding when tied, as torch's state dict
  lists tied weights under both names).
  """
  validation.check_params(params, cfg)
  f32 = lambda x: np.asarray(x, np.float32)
  layers = params["layers"]
  feats, t = hyena.positional_features(cfg, cfg.l_max)
  sd = {EMBED: f32(params["embed"]), "backbone.ln_f.weight": f32(params["final_norm"]["scale"]),
        "backbone.ln_f.bias": f32(params["final_norm"]["bias"])}
  for i in range(cfg.n_layers):
    for name, path, _, (_, to_ref) in _layer_spec(cfg):
      node = layers
      for key in path[:-1]:
        node = node[key]
      value = node[i, path[-1]] if isinstance(path[-1], int) else node[path[-1]][i]
      sd[f"backbone.layers.{i}.{name}"] = np.ascontiguousarray(to_ref(f32(value)))
    sd[f"backbone.layers.{i}.{_POS_Z}"] = feats[None].copy()
    sd[f"backbone.layers.{i}.{_POS_T}"] = t[None].copy()
  if not cfg.tie_embeddings:
    sd[LM_HEAD] = np.ascontiguousarray(_t(f32(params["unembed"])))
  elif lm_head:
    sd[LM_HEAD] = sd[EMBED].copy()
  return sd
