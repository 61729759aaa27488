"""Checkpoints: safetensors files written atomically, with the config and format in the header.

No pickle anywhere: arrays are raw little-endian bytes in a safetensors file and everything else
(config, step, plan, ...) is JSON text in the file's `__metadata__`. Writes go to a temporary file
in the target folder, are fsynced, and then renamed over the target (`os.replace`), so a reader
(or a resumed run after a kill) sees either the old file or the new one, never half a file.

Three kinds of file share the format, told apart by metadata["kind"]:
  model        params + HyenaConfig                         save_model / load_model
  train        params, optimiser state, step, rng + config  save_tree / load_tree (training.py)
  decode       a generation's DecodeState + its plan         save_decode_state / load_decode_state

Pytrees are flattened to "a/b/0/c" keys (jax key paths); restoring needs a template of the same
structure, and every leaf's shape and dtype are checked against it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import uuid
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors import numpy as st_numpy

from flash_lcsm_jax import validation
from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.engine import mixers
from flash_lcsm_jax.engine.generation import DecodeState, Generator
from flash_lcsm_jax.models import hyena

FORMAT = "flash_lcsm_jax/1"
# Axis order of a decode state's engine buffer (mixers.buffer_shape), by method: M layers,
# B batch, L time, D channels.
BUFFER_LAYOUT = {"flash": "MBDL", "lazy": "MLBD", "eager": "MLBD"}
# The layout of states saved before it was recorded (lazy / eager were (M, B, L, D) then).
LEGACY_BUFFER_LAYOUT = {"flash": "MBDL", "lazy": "MBLD", "eager": "MBLD"}
CHECKPOINT_PATTERN = re.compile(r"^ckpt_(\d{8,})\.safetensors$")

# safetensors dtype names <-> numpy dtypes (bfloat16 through ml_dtypes).
_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}


class CheckpointError(ValueError):
  """A checkpoint file is unreadable or does not match what the caller expects."""


# ----------------------------------------------------------------------------- raw files


def write_safetensors(path: str, arrays: Mapping[str, Any], metadata: Mapping[str, str]):
  """Writes arrays + string metadata to `path` atomically (temp file, fsync, rename)."""
  tensors = {k: np.array(v, order="C") for k, v in arrays.items()}  # keeps 0-d shapes
  data = st_numpy.save(tensors, metadata=dict(metadata))
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex}-{os.path.basename(path)}")
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # permissions follow umask
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  try:  # make the rename itself durable
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)
  except OSError:
    pass


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """Reads every tensor (as numpy, bfloat16 included) and the metadata of a safetensors file."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  blob = bytearray(os.path.getsize(path))  # writable, so arrays can be views into it
  with open(path, "rb") as f:
    f.readinto(blob)
  if len(blob) < 8:
    raise CheckpointError(f"{path}: not a safetensors file (only {len(blob)} bytes)")
  (header_len,) = struct.unpack("<Q", blob[:8])
  if header_len > len(blob) - 8:
    raise CheckpointError(f"{path}: truncated or not a safetensors file (header length "
                          f"{header_len} > file size {len(blob)})")
  try:
    header = json.loads(blob[8:8 + header_len])
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from None
  metadata = header.pop("__metadata__", None) or {}
  body = memoryview(blob)[8 + header_len:]
  arrays = {}
  for name, info in header.items():
    dtype = _DTYPES.get(info.get("dtype"))
    if dtype is None:
      raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')!r}")
    begin, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if end > len(body) or end - begin != int(np.prod(shape)) * np.dtype(dtype).itemsize:
      raise CheckpointError(f"{path}: tensor {name!r} is truncated or has inconsistent size")
    arrays[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
  return arrays, metadata


# ----------------------------------------------------------------------------- pytrees


def _key_name(entry) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def flatten_tree(tree) -> dict[str, np.ndarray]:
  """{"a/b/0/c": leaf} for every array leaf of `tree` (typed PRNG keys stored as key data)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = "/".join(_key_name(p) for p in path)
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    out[name] = np.asarray(leaf)
  return out


def unflatten_like(template, arrays: Mapping[str, np.ndarray], prefix: str = "",
                   what: str = "checkpoint", cast_float_from: tuple = ()):
  """Rebuilds `template`'s structure from flat arrays, checking names, shapes and dtypes.

  Args:
    template: a pytree (arrays or ShapeDtypeStructs) giving structure, shapes and dtypes.
    arrays: flat {name: array} as written by flatten_tree.
    prefix: only names under this prefix belong to the tree.
    cast_float_from: stored float dtypes accepted (and cast) where the template wants another
      float dtype (e.g. float32 master weights for a bfloat16 model).

  Raises:
    CheckpointError: on missing or unexpected names and shape or dtype mismatches.
  """
  paths, treedef = jax.tree_util.tree_flatten_with_path(template)
  want = {prefix + "/".join(_key_name(p) for p in path): leaf for path, leaf in paths}
  have = {k for k in arrays if k.startswith(prefix)}
  missing = sorted(set(want) - have)
  unexpected = sorted(have - set(want))
  if missing or unexpected:
    raise CheckpointError(f"{what}: tree does not match: missing {_short(missing)}, "
                          f"unexpected {_short(unexpected)}")
  leaves = []
  for name, ref in want.items():
    arr = arrays[name]
    ref_dtype = ref.dtype
    if jnp.issubdtype(ref_dtype, jax.dtypes.prng_key):
      data_shape = jax.eval_shape(jax.random.key_data, ref)
      if arr.shape != data_shape.shape or arr.dtype != data_shape.dtype:
        raise CheckpointError(f"{what}: {name} has shape {arr.shape} {arr.dtype}, expected key "
                              f"data {data_shape.shape} {data_shape.dtype}")
      leaves.append(jax.random.wrap_key_data(arr, impl=jax.random.key_impl(ref)))
      continue
    if tuple(arr.shape) != tuple(ref.shape):
      raise CheckpointError(f"{what}: {name} has shape {tuple(arr.shape)}, expected "
                            f"{tuple(ref.shape)}")
    if arr.dtype != ref_dtype:
      if not (arr.dtype in cast_float_from and jnp.issubdtype(ref_dtype, jnp.floating)):
        raise CheckpointError(f"{what}: {name} has dtype {arr.dtype}, expected {ref_dtype}")
      arr = arr.astype(ref_dtype)
    leaves.append(jnp.asarray(arr))
  return jax.tree_util.tree_unflatten(treedef, leaves)


def _short(names, limit: int = 8):
  return names if len(names) <= limit else names[:limit] + [f"... ({len(names) - limit} more)"]


def save_tree(path: str, tree, metadata: Mapping[str, Any], kind: str):
  """Writes a pytree and JSON-able metadata (values are JSON-encoded) atomically."""
  meta = {"format": FORMAT, "kind": kind}
  meta.update({k: json.dumps(v) for k, v in metadata.items()})
  write_safetensors(path, flatten_tree(tree), meta)


def read_metadata(meta: Mapping[str, str], path: str, kind: str | None = None) -> dict[str, Any]:
  """Decodes the JSON metadata of one of our files, checking format and kind."""
  if meta.get("format") != FORMAT:
    raise CheckpointError(f"{path}: not a {FORMAT} checkpoint (format={meta.get('format')!r})")
  if kind is not None and meta.get("kind") != kind:
    raise CheckpointError(f"{path}: is a {meta.get('kind')!r} checkpoint, expected {kind!r}")
  return {k: (v if k in ("format", "kind") else json.loads(v)) for k, v in meta.items()}


def load_tree(path: str, template, kind: str, cast_float_from: tuple = ()):
  """Reads a pytree written by save_tree; returns (tree, metadata)."""
  arrays, meta = read_safetensors(path)
  info = read_metadata(meta, path, kind)
  return unflatten_like(template, arrays, what=path, cast_float_from=cast_float_from), info


# ----------------------------------------------------------------------------- configs


def config_mismatch(saved: HyenaConfig, given: HyenaConfig) -> list[str]:
  """Fields where two configs differ, as 'name: saved != given' strings."""
  a, b = saved.to_dict(), given.to_dict()
  return [f"{k}: checkpoint {a[k]!r} != given {b[k]!r}" for k in a if a[k] != b[k]]


def check_config(saved: HyenaConfig, given: HyenaConfig | None, path: str):
  if given is None:
    return
  diff = config_mismatch(saved, given)
  if diff:
    raise CheckpointError(f"{path}: the given model config does not match the checkpoint's: "
                          + "; ".join(diff))


def _config_from(info: Mapping[str, Any], path: str) -> HyenaConfig:
  try:
    return HyenaConfig.from_mapping(info["config"])
  except (KeyError, TypeError, ValueError) as e:
    raise CheckpointError(f"{path}: bad or missing model config in the checkpoint ({e})") from None


# ----------------------------------------------------------------------------- models


def save_model(path: str, params, cfg: HyenaConfig):
  """Writes params + config (a 'model' checkpoint) atomically."""
  validation.check_params(params, cfg)
  save_tree(path, params, {"config": cfg.to_dict()}, kind="model")


def latest_checkpoint(directory: str) -> str | None:
  """Path of the training checkpoint with the highest step in `directory`, or None."""
  if not os.path.isdir(directory):
    return None
  steps = [(int(m.group(1)), name) for name in os.listdir(directory)
           if (m := CHECKPOINT_PATTERN.match(name))]
  return os.path.join(directory, max(steps)[1]) if steps else None


def checkpoint_path(directory: str, step: int) -> str:
  return os.path.join(directory, f"ckpt_{step:08d}.safetensors")


def resolve_model_path(path: str) -> str:
  """A file, or a directory holding model.safetensors or training checkpoints (newest wins)."""
  if os.path.isdir(path):
    candidates = [c for c in (os.path.join(path, "model.safetensors"), latest_checkpoint(path),
                              latest_checkpoint(os.path.join(path, "checkpoints")))
                  if c and os.path.isfile(c)]
    if not candidates:
      raise FileNotFoundError(f"no model.safetensors or ckpt_*.safetensors in directory {path}")
    return max(candidates, key=os.path.getmtime)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint not found: {path}")
  return path


def load_model(path: str, cfg: HyenaConfig | None = None, **reference_kwargs):
  """(params, HyenaConfig) from a model or training checkpoint (file or directory).

  Args:
    path: a model file (save_model), a training checkpoint (training.py), a directory holding
      either (a training run's directory: the newest is used), or a reference (safari /
      HyenaDNA) state dict in safetensors or PyTorch format, imported with
      torch_import.load_reference and its defaults.
    cfg: if given, must equal the checkpoint's config.
    **reference_kwargs: passed to torch_import.load_reference for reference state dicts
      (e.g. modulation_shift=0.05 for HyenaDNA standalone / Hugging Face checkpoints).

  Raises:
    CheckpointError: unreadable file, config mismatch, wrong shapes or dtypes.
    FileNotFoundError: no checkpoint at path.
  """
  path = resolve_model_path(path)
  kind = file_kind(path)
  if kind is None:
    raise CheckpointError(f"{path}: neither a safetensors nor a PyTorch file")
  arrays, meta = read_safetensors(path) if kind == "safetensors" else (None, {})
  if meta.get("format") != FORMAT:
    return _load_reference(path, cfg, **reference_kwargs)
  info = read_metadata(meta, path)
  saved_cfg = _config_from(info, path)
  check_config(saved_cfg, cfg, path)
  template = jax.eval_shape(lambda: hyena.init_params(jax.random.PRNGKey(0), saved_cfg))
  if info["kind"] == "model":
    params = unflatten_like(template, arrays, what=path)
  elif info["kind"] == "train":  # float32 master weights; keep the params only
    params = unflatten_like(template, arrays, prefix="params/", what=path,
                            cast_float_from=(np.dtype(np.float32),))
  else:
    raise CheckpointError(f"{path}: a {info['kind']!r} checkpoint holds no model parameters")
  validation.check_params(params, saved_cfg)
  return params, saved_cfg


def file_kind(path: str) -> str | None:
  """'safetensors', 'torch' (zip or legacy pickle container) or None, from the first bytes."""
  with open(path, "rb") as f:
    head = f.read(9)
  if len(head) == 9 and head[8:9] == b"{":
    return "safetensors"
  if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
    return "torch"
  return None


def _load_reference(path: str, cfg: HyenaConfig | None, **kwargs):
  from flash_lcsm_jax.io import torch_import  # pylint: disable=import-outside-toplevel
  try:
    return torch_import.load_reference(path, cfg, **kwargs)
  except torch_import.StateDictError as e:
    raise CheckpointError(f"{path}: not a {FORMAT} checkpoint, nor an importable reference "
                          f"state dict ({e})") from None


# ----------------------------------------------------------------------------- decode states


class DecodeCheckpoint(NamedTuple):
  """A saved generation: its state, where it stands, and what is needed to continue."""
  state: DecodeState
  rng: jax.Array
  tokens: np.ndarray  # (B, n) tokens produced so far
  method: str
  tau: str
  start: int  # prompt length
  stop: int  # last position + 1 of the whole generation
  block_size: int
  tau_by_level: tuple[tuple[int, str], ...]
  config: HyenaConfig


def save_decode_state(path: str, state: DecodeState, *, cfg: HyenaConfig,
                      plan: mixers.Plan, tau: str, block_size: int, rng: jax.Array,
                      tokens=None):
  """Saves a generation midway so that it can resume and give the same tokens.

  Args:
    state: the DecodeState after some of the plan's blocks (state.position must be the first
      position of a later block, or plan.stop).
    plan: the full plan of the generation (Generator.start's), not a truncated copy.
    tau, block_size: what the Generator was asked for (to rebuild the plan on resume).
    rng: the generation's key (sampling folds in the position, so the same key continues it).
    tokens: (B, n) tokens produced so far, stored for convenience.
  """
  position = int(state.position)
  firsts = [b.first for b in plan.blocks] + [plan.stop]
  if position not in firsts:
    raise ValueError(f"state.position={position} is not a block boundary of the plan "
                     f"(boundaries {firsts[:6]}...); save between Generator.run calls")
  typed = jnp.issubdtype(rng.dtype, jax.dtypes.prng_key)
  tree = {"state": state._asdict(),
          "rng": jax.random.key_data(rng) if typed else rng,
          "tokens": np.zeros((state.token.shape[0], 0), np.int32) if tokens is None
                    else np.asarray(tokens, np.int32)}
  meta = {"config": cfg.to_dict(), "method": plan.method, "tau": tau, "start": plan.start,
          "stop": plan.stop, "block_size": block_size, "buffer_length": plan.buffer_length,
          "buffer_layout": BUFFER_LAYOUT[plan.method],
          "tau_by_level": [list(x) for x in plan.tau_by_level],
          "rng_impl": str(jax.random.key_impl(rng)) if typed else None}
  save_tree(path, tree, meta, kind="decode")


def load_decode_state(path: str, cfg: HyenaConfig | None = None) -> DecodeCheckpoint:
  """Reads a decode state written by save_decode_state, checking the config and shapes."""
  arrays, meta = read_safetensors(path)
  info = read_metadata(meta, path, kind="decode")
  saved_cfg = _config_from(info, path)
  check_config(saved_cfg, cfg, path)
  plan = mixers.make_plan(info["method"], info["start"], info["stop"], info["block_size"],
                          info["tau"], {q: n for q, n in info["tau_by_level"]} or None)
  B = arrays.get("state/token", np.zeros((0,))).shape[0]
  M, D, K = saved_cfg.n_layers, saved_cfg.d_model, saved_cfg.short_filter_order
  buf_shape = mixers.buffer_shape(plan, B, M, D)
  layout = info.get("buffer_layout", LEGACY_BUFFER_LAYOUT[plan.method])
  if layout not in (BUFFER_LAYOUT[plan.method], LEGACY_BUFFER_LAYOUT[plan.method]):
    raise CheckpointError(f"{path}: unknown buffer layout {layout!r} for method "
                          f"{plan.method!r}")
  old_layout = layout != BUFFER_LAYOUT[plan.method]  # lazy / eager (M, B, L, D): swapped below
  if old_layout:
    buf_shape = (M, B, plan.buffer_length, D)
  template = {
      "state": DecodeState(jax.ShapeDtypeStruct(buf_shape, jnp.float32),
                           jax.ShapeDtypeStruct((M, B, K - 1, 3 * D), jnp.float32),
                           jax.ShapeDtypeStruct((B,), jnp.int32),
                           jax.ShapeDtypeStruct((), jnp.int32))._asdict(),
      "rng": jax.ShapeDtypeStruct(arrays["rng"].shape if "rng" in arrays else (2,), jnp.uint32),
      "tokens": jax.ShapeDtypeStruct(arrays["tokens"].shape if "tokens" in arrays else (B, 0),
                                     jnp.int32),
  }
  tree = unflatten_like(template, arrays, what=path)
  if old_layout:
    tree["state"]["buffer"] = jnp.swapaxes(tree["state"]["buffer"], 1, 2)
  rng = tree["rng"]
  if info.get("rng_impl"):
    rng = jax.random.wrap_key_data(rng, impl=info["rng_impl"])
  return DecodeCheckpoint(DecodeState(**tree["state"]), rng, np.asarray(tree["tokens"]),
                          info["method"], info["tau"], info["start"], info["stop"],
                          info["block_size"], tuple((int(q), n) for q, n in info["tau_by_level"]),
                          saved_cfg)


def resume_plan(generator: Generator, ckpt: DecodeCheckpoint):
  """(plan, consts) that continue `ckpt` with generator.run: the remaining blocks only.

  Raises:
    CheckpointError: if the generator's config, block size or tau table differ from the
      ones the state was made with (the buffer layout would not match).
  """
  check_config(ckpt.config, generator.cfg, "decode state")
  if generator.block_size != ckpt.block_size:
    raise CheckpointError(f"decode state was made with block_size={ckpt.block_size}, the "
                          f"generator has block_size={generator.block_size}")
  plan, consts = generator.plan(ckpt.method, ckpt.tau, ckpt.start, ckpt.stop)
  if (plan.tau_by_level != ckpt.tau_by_level
      or plan.buffer_length != ckpt.state.buffer.shape[mixers.time_axis(plan.method)]):
    raise CheckpointError(f"decode state's plan (tau by level {ckpt.tau_by_level}) differs from "
                          f"the generator's ({plan.tau_by_level}); use the same hybrid_table")
  position = int(ckpt.state.position)
  remaining = tuple(b for b in plan.blocks if b.first >= position)
  return dataclasses.replace(plan, blocks=remaining), consts
