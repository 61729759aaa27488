"""Training a byte-level Hyena language model (run.py --mode=train).

  optimiser   AdamW (decoupled weight decay on embeddings and dense kernels), warm-up then cosine
              decay, global-norm gradient clipping; the filter's decay rates stay fixed, as in
              the reference (its `modulation_lr=0` makes them a buffer).
  data        flash_lcsm_jax.data: byte tokens from a folder of text files (default: Python's
              standard library sources), held-out split by file. Batches depend only on
              (seed, step), so a resumed run sees the same data as an uninterrupted one.
  outputs     <workdir>/history.json (losses, learning rate, held-out bits per byte),
              <workdir>/loss.png, <workdir>/model.safetensors (params + config, for generation),
              <ckpt_dir>/ckpt_<step>.safetensors (params, optimiser state, step; atomic writes).
  resume      the latest checkpoint in ckpt_dir is picked up automatically; training then goes
              on exactly as if it had never stopped (bit-identical on the same machine).

Master weights are float32 whatever the model dtype; the forward casts them to cfg.dtype.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from flash_lcsm_jax import data
from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.engine import sampling
from flash_lcsm_jax.engine.generation import Generator
from flash_lcsm_jax.io import checkpoint
from flash_lcsm_jax.models import hyena

# Training settings that change the trajectory: a resumed run warns when they differ.
_TRAJECTORY_KEYS = ("steps", "batch_size", "seq_len", "learning_rate", "warmup_steps",
                    "min_lr_ratio", "b1", "b2", "weight_decay", "clip_norm", "corpus_dir",
                    "corpus_pattern", "holdout_fraction", "max_corpus_bytes")
_DECAYED = {("embed",), ("unembed",), ("layers", "in_proj", "kernel"),
            ("layers", "out_proj", "kernel"), ("layers", "mlp", "fc1", "kernel"),
            ("layers", "mlp", "fc2", "kernel")}
_FROZEN = {("layers", "filter", "deltas")}


class TrainState(NamedTuple):
  step: jax.Array  # () int32, optimiser steps taken
  params: Any  # float32 master weights
  opt_state: Any


class TrainResult(NamedTuple):
  state: TrainState
  history: list[dict]
  workdir: str
  ckpt_dir: str


# ----------------------------------------------------------------------------- settings


def check_settings(tc, cfg: HyenaConfig):
  """Validates config.train against the model; messages name the key and the allowed range."""
  def need(ok, key, rule):
    if not ok:
      raise ValueError(f"config.train.{key} must be {rule}, got {tc[key]!r}")
  for key in ("steps", "batch_size", "seq_len", "eval_batches", "log_every"):
    need(isinstance(tc[key], int) and tc[key] >= 1, key, "an int >= 1")
  for key in ("eval_every", "ckpt_every", "keep_checkpoints", "warmup_steps", "sample_tokens",
              "max_corpus_bytes"):
    need(isinstance(tc[key], int) and tc[key] >= 0, key, "an int >= 0")
  need(tc.warmup_steps < tc.steps, "warmup_steps", f"< steps ({tc.steps})")
  need(tc.learning_rate > 0, "learning_rate", "> 0")
  need(0 <= tc.min_lr_ratio <= 1, "min_lr_ratio", "in [0, 1]")
  need(0 <= tc.b1 < 1, "b1", "in [0, 1)")
  need(0 <= tc.b2 < 1, "b2", "in [0, 1)")
  need(tc.weight_decay >= 0, "weight_decay", ">= 0")
  need(tc.clip_norm > 0, "clip_norm", "> 0")
  need(0 < tc.holdout_fraction < 1, "holdout_fraction", "in (0, 1)")
  need(tc.seq_len <= cfg.l_max, "seq_len", f"<= the model's l_max ({cfg.l_max})")
  if cfg.vocab_size < data.ByteTokenizer.vocab_size:
    raise ValueError(f"config.model.vocab_size must be >= 256 for byte-level training, got "
                     f"{cfg.vocab_size}")


def _path_names(path) -> tuple[str, ...]:
  return tuple(str(getattr(p, "key", p)) for p in path)


def decay_mask(params):
  """True where AdamW applies weight decay: embeddings and dense kernels."""
  return jax.tree_util.tree_map_with_path(lambda p, _: _path_names(p) in _DECAYED, params)


def frozen_mask(params):
  """True for parameters that stay fixed (the filter's decay rates, a buffer in the reference)."""
  return jax.tree_util.tree_map_with_path(lambda p, _: _path_names(p) in _FROZEN, params)


class OptimizerSettings(NamedTuple):
  """The optimiser's hyper-parameters (hashable: a static jit argument)."""
  steps: int
  learning_rate: float
  warmup_steps: int
  min_lr_ratio: float
  b1: float
  b2: float
  weight_decay: float
  clip_norm: float

  @classmethod
  def from_config(cls, tc) -> "OptimizerSettings":
    return cls(**{name: tc[name] for name in cls._fields})


def make_schedule(opt: OptimizerSettings) -> optax.Schedule:
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=opt.learning_rate, warmup_steps=opt.warmup_steps,
      decay_steps=opt.steps, end_value=opt.learning_rate * opt.min_lr_ratio)


def make_optimizer(opt: OptimizerSettings) -> optax.GradientTransformation:
  """Freeze -> clip by global norm -> AdamW with warm-up + cosine decay."""
  return optax.chain(
      optax.masked(optax.set_to_zero(), frozen_mask),
      optax.clip_by_global_norm(opt.clip_norm),
      optax.adamw(make_schedule(opt), b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay,
                  mask=decay_mask))


# ----------------------------------------------------------------------------- steps


def loss_fn(params, cfg: HyenaConfig, inputs, targets) -> jax.Array:
  """Mean next-byte cross-entropy in nats. inputs, targets: (B, L) int32."""
  logits = hyena.forward(hyena.cast_params(params, cfg), cfg, inputs)
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


@functools.partial(jax.jit, static_argnames=("cfg", "opt"))
def _init_state(key, *, cfg: HyenaConfig, opt: OptimizerSettings) -> TrainState:
  params = hyena.init_params(key, cfg)
  params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
  return TrainState(jnp.zeros((), jnp.int32), params, make_optimizer(opt).init(params))


def init_state(cfg: HyenaConfig, opt: OptimizerSettings, seed: int) -> TrainState:
  """Fresh float32 master weights and optimiser state.

  The weights come from hyena.init_params with an "rbg" key: on CPU it compiles about four
  times faster than threefry (seconds for a tiny model), and it is deterministic per backend.
  """
  return _init_state(jax.random.key(seed, impl="rbg"), cfg=cfg, opt=opt)


@functools.partial(jax.jit, static_argnames=("cfg", "opt"), donate_argnums=0)
def train_step(state: TrainState, inputs, targets, *, cfg: HyenaConfig,
               opt: OptimizerSettings):
  """One optimiser step on a batch (inputs, targets: (B, L) int32); the state is donated.

  Returns:
    (new state, {"loss": mean nats per byte before the step, "grad_norm": before clipping}).
  """
  loss, grads = jax.value_and_grad(loss_fn)(state.params, cfg, inputs, targets)
  updates, opt_state = make_optimizer(opt).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return (TrainState(state.step + 1, params, opt_state),
          {"loss": loss, "grad_norm": optax.tree.norm(grads)})


@functools.partial(jax.jit, static_argnames=("cfg",))
def eval_loss(params, inputs, targets, *, cfg: HyenaConfig) -> jax.Array:
  return loss_fn(params, cfg, inputs, targets)


def evaluate(params, cfg: HyenaConfig, batches) -> dict[str, float]:
  """Held-out loss (nats per byte) and bits per byte over a fixed list of batches."""
  losses = [float(eval_loss(params, x, y, cfg=cfg)) for x, y in batches]
  loss = float(np.mean(losses))
  return {"eval_loss": loss, "eval_bpb": loss / math.log(2)}


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(ckpt_dir: str, state: TrainState, cfg: HyenaConfig, tc, seed: int,
                    keep: int) -> str:
  step = int(state.step)
  path = checkpoint.checkpoint_path(ckpt_dir, step)
  meta = {"config": cfg.to_dict(), "train": tc.to_dict(), "seed": seed, "step": step}
  checkpoint.save_tree(path, state._asdict(), meta, kind="train")
  if keep:
    old = sorted(n for n in os.listdir(ckpt_dir) if checkpoint.CHECKPOINT_PATTERN.match(n))
    for name in old[:-keep]:
      os.remove(os.path.join(ckpt_dir, name))
  return path


def restore_checkpoint(path: str, cfg: HyenaConfig, opt: OptimizerSettings, seed: int):
  """(TrainState, metadata) from a training checkpoint; the model config must match."""
  template = jax.eval_shape(lambda: init_state(cfg, opt, seed))._asdict()
  arrays, meta = checkpoint.read_safetensors(path)
  info = checkpoint.read_metadata(meta, path, kind="train")
  checkpoint.check_config(HyenaConfig.from_mapping(info["config"]), cfg, path)
  tree = checkpoint.unflatten_like(template, arrays, what=path)
  return TrainState(**tree), info


# ----------------------------------------------------------------------------- reporting


class Progress:
  """A one-line progress bar on a terminal; plain log lines otherwise."""

  def __init__(self, total: int, start: int, stream=None, width: int = 24):
    self.total, self.start, self.width = total, start, width
    self.stream = stream or sys.stderr
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self.t0 = time.perf_counter()

  def update(self, step: int, text: str):
    done = step - self.start
    elapsed = time.perf_counter() - self.t0
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    filled = int(self.width * step / self.total)
    bar = "#" * filled + "." * (self.width - filled)
    line = (f"[{bar}] {step}/{self.total} {text} | {rate:.2f} steps/s"
            + (f" | eta {eta:.0f}s" if math.isfinite(eta) else ""))
    if self.tty:
      self.stream.write("\r" + line + "\033[K")
    else:
      self.stream.write(line + "\n")
    self.stream.flush()

  def note(self, text: str):
    self.stream.write(("\n" if self.tty else "") + text + "\n")
    self.stream.flush()

  def close(self):
    if self.tty:
      self.stream.write("\n")
      self.stream.flush()


def _write_json(path: str, obj):
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def plot_history(history: list[dict], path: str):
  """Train and held-out loss in bits per byte against the step, as a PNG."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(7, 4), dpi=110)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  train = [(r["step"], r["train_loss"] / math.log(2)) for r in history if "train_loss" in r]
  evals = [(r["step"], r["eval_bpb"]) for r in history if "eval_bpb" in r]
  if train:
    ax.plot(*zip(*train), label="train", lw=1)
  if evals:
    ax.plot(*zip(*evals), "o-", label="held out", ms=4)
  ax.set_xlabel("step")
  ax.set_ylabel("bits per byte")
  ax.set_title("byte-level Hyena: training curve")
  ax.grid(alpha=0.3)
  ax.legend()
  tmp = path + ".tmp.png"
  fig.savefig(tmp, format="png")
  os.replace(tmp, path)


# ----------------------------------------------------------------------------- the loop


def _resolve_config(config) -> ml_collections.ConfigDict:
  if "train" in config:
    return config
  from configs import train as train_config  # pylint: disable=import-outside-toplevel
  print("config has no `train` section; using configs/train.py")
  return train_config.get_config()


def train(config, *, stop_after: int | None = None, progress_stream=None) -> TrainResult:
  """Trains (or resumes) the model described by config.model with config.train settings.

  Args:
    config: ConfigDict with `model` (HyenaConfig fields), `train` (see configs/train.py) and
      `seed`.
    stop_after: stop (with a checkpoint) after this many steps in this call, as a pre-empted
      job would; the next call resumes.
    progress_stream: where the progress bar goes (default stderr).

  Returns:
    TrainResult with the final state and the history records.
  """
  config = _resolve_config(config)
  cfg = HyenaConfig.from_mapping(config.model)
  tc = config.train
  check_settings(tc, cfg)
  seed = int(config.seed)
  workdir = tc.workdir
  ckpt_dir = tc.ckpt_dir or os.path.join(workdir, "checkpoints")
  os.makedirs(ckpt_dir, exist_ok=True)
  out = progress_stream or sys.stderr

  corpus = data.load_corpus(tc.corpus_dir, tc.corpus_pattern, tc.holdout_fraction,
                            tc.max_corpus_bytes, min_bytes=tc.seq_len + 1)
  print(corpus.describe(), file=out)
  heldout = data.eval_batches(corpus.heldout, tc.batch_size, tc.seq_len, tc.eval_batches)

  opt = OptimizerSettings.from_config(tc)
  schedule = make_schedule(opt)
  history_path = os.path.join(workdir, "history.json")
  history: list[dict] = []
  latest = checkpoint.latest_checkpoint(ckpt_dir)
  if latest:
    state, info = restore_checkpoint(latest, cfg, opt, seed)
    seed = int(info["seed"])
    changed = [k for k in _TRAJECTORY_KEYS if info["train"].get(k) != tc.get(k)]
    if changed:
      print(f"warning: resuming with changed settings {changed}; the run will not match an "
            "uninterrupted one", file=out)
    if os.path.exists(history_path):
      with open(history_path) as f:
        history = [r for r in json.load(f)["records"] if r["step"] <= int(state.step)]
    print(f"resumed from {latest} at step {int(state.step)}", file=out)
  else:
    state = init_state(cfg, opt, seed)
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  print(f"model: {cfg.n_layers} layers, width {cfg.d_model}, {n_params / 1e6:.2f}M params; "
        f"{tc.steps} steps of {tc.batch_size} x {tc.seq_len} bytes", file=out)

  step = first = int(state.step)
  bar = Progress(tc.steps, first, out)
  pending: list[tuple[int, dict]] = []

  def flush():
    if not pending:
      return
    losses = [float(m["loss"]) for _, m in pending]
    norms = [float(m["grad_norm"]) for _, m in pending]
    if not all(math.isfinite(l) for l in losses):
      raise FloatingPointError(f"training loss became {losses[-1]} at step {pending[-1][0]}; "
                               "lower config.train.learning_rate or raise warmup_steps")
    last = pending[-1][0]
    history.append({"step": last, "train_loss": float(np.mean(losses)),
                    "grad_norm": float(np.mean(norms)), "lr": float(schedule(last - 1)),
                    "time": time.time()})
    pending.clear()

  def checkpoint_now():
    # History first: a kill in between leaves records past the checkpoint, dropped on resume.
    _write_json(history_path, {"config": config.to_dict(), "records": history})
    plot_history(history, os.path.join(workdir, "loss.png"))
    save_checkpoint(ckpt_dir, state, cfg, tc, seed, tc.keep_checkpoints)

  while step < tc.steps and (stop_after is None or step - first < stop_after):
    inputs, targets = data.train_batch(corpus.train, tc.batch_size, tc.seq_len, seed, step)
    state, metrics = train_step(state, inputs, targets, cfg=cfg, opt=opt)
    step += 1
    pending.append((step, metrics))
    at_end = step == tc.steps
    if step % tc.log_every == 0 or at_end:
      flush()
      bar.update(step, f"loss {history[-1]['train_loss']:.3f} "
                       f"({history[-1]['train_loss'] / math.log(2):.3f} bpb) "
                       f"lr {history[-1]['lr']:.2e}")
    if (tc.eval_every and step % tc.eval_every == 0) or at_end:
      flush()
      scores = evaluate(state.params, cfg, heldout)
      history[-1].update(scores)
      bar.note(f"step {step}: held-out loss {scores['eval_loss']:.4f} nats/byte, "
               f"{scores['eval_bpb']:.4f} bits/byte")
    if (tc.ckpt_every and step % tc.ckpt_every == 0) or at_end:
      flush()
      checkpoint_now()
  flush()
  bar.close()
  if step > first and not (tc.ckpt_every and step % tc.ckpt_every == 0) and step != tc.steps:
    checkpoint_now()  # stopped early: keep the progress
  if step == tc.steps:
    checkpoint.save_model(os.path.join(workdir, "model.safetensors"),
                          hyena.cast_params(state.params, cfg), cfg)
    print(f"done: {step} steps; model in {os.path.join(workdir, 'model.safetensors')}, loss "
          f"curve in {os.path.join(workdir, 'loss.png')}", file=out)
  return TrainResult(state, history, workdir, ckpt_dir)


def sample(params, cfg: HyenaConfig, config, num_tokens: int, seed: int) -> str:
  """Text generated (flash engine) after config.prompt by the trained model."""
  tok = data.ByteTokenizer()
  prompt = tok.encode(config.get("prompt", "") or "\n")[None] % cfg.vocab_size
  num_tokens = min(num_tokens, cfg.l_max - prompt.shape[1] + 1)
  sampler = sampling.from_name(config.get("sampler", "greedy"), config.get("temperature", 1.0),
                               config.get("top_k", 0), config.get("top_p", 1.0))
  result = Generator(params, cfg).generate(prompt, num_tokens, method="flash", sampler=sampler,
                                           rng=jax.random.PRNGKey(seed))
  return tok.decode(np.concatenate([prompt[0], result.tokens[0]]) % 256)


def main(config) -> int:
  """run.py --mode=train: train or resume, then print a sample. Returns the exit code."""
  config = _resolve_config(config)
  if "precision" in config:
    from flash_lcsm_jax import cli  # pylint: disable=import-outside-toplevel
    cli.set_precision(config.precision)
  try:
    result = train(config)
  except FloatingPointError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  cfg = HyenaConfig.from_mapping(config.model)
  if config.train.sample_tokens and int(result.state.step) == config.train.steps:
    text = sample(hyena.cast_params(result.state.params, cfg), cfg, config,
                  config.train.sample_tokens, int(config.seed))
    with open(os.path.join(result.workdir, "sample.txt"), "w") as f:
      f.write(text)
    print("sample (flash engine):\n" + text)
  return 0
