"""Generation: prefill, compiled step blocks, the host loop, and the public entry points.

The host loop walks a static list of blocks (see `schedule`); each block is one jitted call
with the decode state donated, so the GPU never waits on a device-side branch and the loop can
report progress and stream tokens between blocks.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import validation
from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.engine import mixers, schedule
from flash_lcsm_jax.engine.sampling import Sampler
from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import calibration
from flash_lcsm_jax.ops import pallas_layer


class DecodeState(NamedTuple):
  """Everything a generation needs to continue (a pytree; save it to resume)."""
  buffer: jax.Array  # engine buffer, see mixers
  conv_state: jax.Array  # (M, B, K-1, 3D) last short-conv inputs
  token: jax.Array  # (B,) int32, token to feed at `position`
  position: jax.Array  # () int32, next position to feed


class GenerateResult(NamedTuple):
  tokens: np.ndarray  # (B, num_tokens) generated ids
  state: DecodeState  # final decode state
  steps: int  # positions fed step by step (fewer after an early stop)


def _valid_mask(batch: int, length: int, prompt_lengths) -> jax.Array | None:
  if prompt_lengths is None:
    return None
  pos = jnp.arange(length)[None, :]
  return pos >= (length - jnp.asarray(prompt_lengths, jnp.int32))[:, None]


@functools.partial(jax.jit, static_argnames=("cfg",))
def _prefill(params, cfg: HyenaConfig, filters, prompt, valid):
  logits, aux = hyena.forward(params, cfg, prompt, valid=valid, filters=filters, return_aux=True)
  return logits, aux


PARTS = ("all", "mixer", "dense")
DENSE_PATHS = ("xla", "fused", "persistent")
FUSED_MAX_AUTO_BATCH = 2  # see Generator.dense_path_for


def _token_step(params, cfg: HyenaConfig, red, token, acc, conv_state, dense_weights):
  """The per-token dense path. dense_weights: None (XLA, scanned layers), split_layers(params)
  (XLA, unrolled layers) or pallas_layer.PreparedLayers (four fused kernels per layer, or one
  persistent kernel for all layers when prepared with persistent_config)."""
  if isinstance(dense_weights, pallas_layer.PreparedLayers):
    return pallas_layer.token_step_fused(params, dense_weights, cfg, red, token, acc, conv_state)
  return hyena.token_step(params, cfg, red, token, acc, conv_state, dense_weights)


def _block(params, dense_weights, consts, red, state: DecodeState, rng, forced, *,
           cfg: HyenaConfig, spec: mixers.Plan, levels: tuple[int, ...], window: int,
           sampler: Sampler, collect_logits: bool, part: str = "all",
           unroll_steps: bool = False):
  """Runs len(levels) consecutive positions. forced: (B, n) tokens to feed, or None.

  part: "all" runs the model; "mixer" only the long convolutions (an online convolution whose
  next input depends on its last output, so nothing can be hoisted); "dense" the model with the
  long convolutions removed (acc = 0, nothing stored). The last two exist to split timings.
  """
  table = dict(spec.tau_by_level)

  first = state.position  # the block's first position

  def step(state: DecodeState, level: int, forced_token, acc=None, index=None):
    """One position; acc: this position's long-convolution input if the previous step's write
    already read it (flash, fused step), else None; index: the step's static index in an
    unrolled block, else None. Returns (state, outputs, next acc)."""
    t = state.position
    # The write gets the position as (block start, static index): its Pallas kernels add the two
    # themselves, so XLA does not launch a kernel per step to materialise t for them.
    where = (t, 0) if index is None else (first, index)
    token = state.token if forced_token is None else forced_token
    if part != "dense" and acc is None:
      acc = mixers.read(spec, consts, state.buffer, t, window)
    if part == "mixer":
      u = jnp.tanh(acc) + 0.5
      buf, acc_next = mixers.write_and_read_next(spec, consts, state.buffer, where[0], u, level,
                                                 window, table, where[1])
      logits = jnp.zeros((token.shape[0], 1), jnp.float32) + u[0, :, :1]
      return DecodeState(buf, state.conv_state, token, t + 1), (
          token, logits if collect_logits else None), acc_next
    if part == "dense":
      acc = jnp.zeros(state.conv_state.shape[:2] + (cfg.d_model,), jnp.float32)
      logits, u, conv = _token_step(params, cfg, red, token, acc, state.conv_state,
                                    dense_weights)
      buf, acc_next = state.buffer, None
    else:
      logits, u, conv = _token_step(params, cfg, red, token, acc, state.conv_state,
                                    dense_weights)
      buf, acc_next = mixers.write_and_read_next(spec, consts, state.buffer, where[0], u, level,
                                                 window, table, where[1])
    sampled = sampler(logits, jax.random.fold_in(rng, t))
    return DecodeState(buf, conv, sampled, t + 1), (
        sampled, logits if collect_logits else None), acc_next

  if len(set(levels)) == 1 and not unroll_steps:  # identical steps: a scan compiles once
    xs = None if forced is None else forced.T
    state, (tokens, logits) = jax.lax.scan(
        lambda s, f: step(s, levels[0], f)[:2], state, xs, length=len(levels))
  else:  # flash (each step's tile level is static) or unroll_steps: a Python loop
    outs, acc = [None] * len(levels), None
    for j, level in enumerate(levels):
      state, outs[j], acc = step(state, level, None if forced is None else forced[:, j], acc, j)
    tokens = jnp.stack([o[0] for o in outs])
    logits = jnp.stack([o[1] for o in outs]) if collect_logits else None
  return state, tokens.T, (None if logits is None else jnp.swapaxes(logits, 0, 1))


_BLOCK_JIT = dict(static_argnames=("cfg", "spec", "levels", "window", "sampler",
                                   "collect_logits", "part", "unroll_steps"),
                  donate_argnames=("state",))
_run_block = jax.jit(_block, **_BLOCK_JIT)
# The same blocks compiled without XLA's autotuner, for lazy and eager generations whose
# history buffer leaves no room for the autotuner's copy of it (validation.baseline_untuned).
_run_block_untuned = jax.jit(_block, compiler_options=validation.UNTUNED_COMPILER_OPTIONS,
                             **_BLOCK_JIT)


@functools.partial(jax.jit, static_argnames=("level", "impl"), donate_argnames=("buf",))
def _run_tile(level_consts, buf, position, *, level: int, impl: str):
  """A large gray tile on its own, after the block whose last step fed position - 1: keeps the
  step blocks' executables independent of it. (position - 1 is taken here, not by the caller:
  that would be one more dispatch and kernel per block.)"""
  return mixers.gray_tile(level_consts, buf, position - 1, level, impl)


@dataclasses.dataclass
class Generator:
  """A model ready to generate: caches filters and per-plan engine constants.

  Args:
    params: model parameters (see hyena.init_params).
    cfg: the model config.
    block_size: steps per compiled block (power of two).
    hybrid_table: tile level -> tau name for tau='hybrid' (default: calibration default).
    unroll_layers: unroll the per-token layer loop over per-layer weight buffers (faster on
      GPU: no weight copies, fewer kernels) instead of scanning the stacked weights (faster to
      compile). None: unroll on accelerators for batches >= 4 (measured on an H200, paper
      config: 569 vs 997 us per token at B = 8, no gain at B = 1), else scan. Unrolling keeps
      a second, per-layer copy of the layer weights on the device.
    dense_path: the per-token path outside the long convolutions: "xla" (XLA ops, scanned or
      unrolled as unroll_layers says), "fused" (ops/pallas_layer: four Pallas kernels per
      layer over weights prepared once, a second copy of the layer weights; on CPU they run
      in interpret mode, which is exact but slow) or "persistent" (the same four phases per
      layer for all layers inside ONE kernel, grid-wide barriers between them; on a GPU it
      needs one SM per program, 108 at the paper shape). None: see `dense_path_for`.
    unroll_steps: run the identical steps of a lazy / eager block as a Python loop instead of
      a lax.scan (flash blocks always unroll). None: unroll with the fused dense path (see
      `unroll_steps_for`).
    baseline_kernels: how the lazy and eager baselines stream their buffers each step
      (mixers.BASELINE_KERNELS): "xla" (XLA's fusions; the default) or "pallas"
      (ops/baseline_kernels: Triton kernels that load each filter tile once for every batch
      row). None: "xla", which on the engine's (M, L, B, D) buffers was as fast as the kernels
      or faster on an H100 (session 15, experiments/baselines_gpu.py).
  """
  params: Any
  cfg: HyenaConfig
  block_size: int = 16
  hybrid_table: dict[int, str] | None = None
  unroll_layers: bool | None = None
  dense_path: str | None = None
  unroll_steps: bool | None = None
  baseline_kernels: str | None = None

  def __post_init__(self):
    validation.check_params(self.params, self.cfg)
    if self.dense_path is not None and self.dense_path not in DENSE_PATHS:
      raise ValueError(f"dense_path must be None or one of {DENSE_PATHS}, got "
                       f"{self.dense_path!r}")
    if (self.baseline_kernels is not None
        and self.baseline_kernels not in mixers.BASELINE_KERNELS):
      raise ValueError(f"baseline_kernels must be None or one of {mixers.BASELINE_KERNELS}, "
                       f"got {self.baseline_kernels!r}")
    self._filters = None
    self._step_consts = None
    self._consts: dict[Any, Any] = {}
    self._layer_list = None  # split per-layer weights (a second copy), made on first use
    self._prepared = None  # pallas_layer.PreparedLayers (a second copy), made on first use
    self._auto_persistent = None  # whether this device fits the persistent blocks (first use)

  def dense_path_for(self, batch: int) -> str:
    """The dense path a batch runs: dense_path if set, else on a GPU "persistent" where the
    device has enough SMs for its blocks (pallas_layer.device_persistent_config) for B <= 2 and
    for the batch sizes of pallas_layer.TILE_BATCHES (float32 B = 4, 8: the tile order), "fused"
    for B <= 2 where it has not, and "xla" otherwise. Measured (paper config, float32,
    experiments/dense_gpu.py): H200 B = 1 persistent 0.357 / fused 0.448 / XLA 0.725 ms/token,
    B = 2 0.428 / 0.475 / 0.687, B = 4 0.446 / - / 0.681, B = 8 0.511-0.523 / 1.23 / 0.62-0.67;
    H100 B = 1 0.40 / 0.49 / 0.78 (bfloat16 0.35 / 0.39 / 0.74). Other batch sizes (B = 3, 5-7:
    the tile order needs a power of two; bfloat16 B = 4: 0.646 vs XLA 0.619) run XLA's GEMMs.
    The persistent kernel runs two programs per SM for pallas_layer.PAIRED_BATCHES (H100:
    bfloat16 B = 1 0.349 -> 0.323, B = 2 0.446 -> 0.410; float32 B = 2 0.459 -> 0.437) and polls
    instead of its barriers for pallas_layer.DATA_SYNC_BATCHES (LayerConfig.for_batch; H100,
    B = 2: bfloat16 0.402 -> 0.366, float32 0.424 -> 0.411), and steps through the columns in
    the chunks of pallas_layer.BATCH_CHUNKS (H100, bfloat16 B = 1: 0.332 -> 0.321)."""
    if self.dense_path is not None:
      return self.dense_path
    if jax.default_backend() not in pallas_layer.GPU_BACKENDS:
      return "xla"
    if self._auto_persistent is None:
      self._auto_persistent = pallas_layer.device_persistent_config(
          self.cfg.d_model, self.cfg.d_inner) is not None
    if batch <= FUSED_MAX_AUTO_BATCH:
      return "persistent" if self._auto_persistent else "fused"
    tiled = pallas_layer.is_tile_batch(batch, self.cfg.dtype)
    return "persistent" if tiled and self._auto_persistent else "xla"

  def _persistent_config(self, batch: int) -> "pallas_layer.LayerConfig":
    """Blocks for the persistent kernel on this device (sized to its SM count, with two programs
    per SM for the batches of pallas_layer.PAIRED_BATCHES); raises where so few SMs would need
    blocks larger than pallas_layer.MAX_PERSISTENT_ROWS."""
    config = pallas_layer.device_persistent_config(
        self.cfg.d_model, self.cfg.d_inner,
        programs_per_sm=pallas_layer.programs_per_sm_for(batch, self.cfg.dtype))
    if config is None:
      raise ValueError(
          f"dense_path='persistent' needs blocks of <= {pallas_layer.MAX_PERSISTENT_ROWS} rows, "
          f"and this device has {pallas_layer.config.gpu_core_count()} SMs for "
          f"D={self.cfg.d_model}, I={self.cfg.d_inner}: use dense_path='fused'")
    return config

  def dense_sync_for(self, batch: int) -> str | None:
    """How the persistent kernel's programs wait for each other's phases for this batch
    ("barrier" or "data_l1", pallas_layer.LayerConfig.sync as for_batch sets it), or None where
    the batch runs another dense path (they have no grid-wide phases)."""
    if self.dense_path_for(batch) != "persistent":
      return None
    return self._persistent_config(batch).for_batch(batch, self.cfg.dtype).sync

  def unroll_steps_for(self, batch: int) -> bool:
    """Whether lazy / eager blocks unroll their steps: unroll_steps if set, else with the fused
    dense path (H100, B = 1, experiments/block_probe.py: a lazy block with the fused path took
    4.60 ms/step unrolled vs 5.42 scanned at t = 65536, and the same within 2% at t = 1024)."""
    if self.unroll_steps is not None:
      return self.unroll_steps
    return self.dense_path_for(batch) in ("fused", "persistent")

  def dense_weights(self, batch: int):
    """What `_token_step` takes for this batch: None, split layers or prepared weights (one
    prepared copy at a time, remade when the batch needs other blocks: the fused and persistent
    paths, and the persistent path with one or two programs per SM, lay their blocks out
    differently)."""
    path = self.dense_path_for(batch)
    if path in ("fused", "persistent"):
      config = (self._persistent_config(batch) if path == "persistent" else
                pallas_layer.default_config(self.cfg.d_model, self.cfg.d_inner))
      if self._prepared is None or self._prepared.spec.config != config:
        self._prepared = pallas_layer.prepare_layer_weights(self.params, self.cfg, config)
      return self._prepared
    unroll = self.unroll_layers
    if unroll is None:
      unroll = jax.default_backend() != "cpu" and batch >= 4
    if not unroll:
      return None
    if self._layer_list is None:
      self._layer_list = hyena.split_layers(self.params)
    return self._layer_list

  def filters(self, length: int) -> jax.Array:
    if self._filters is None or self._filters.shape[-1] < length:
      self._filters = hyena.materialise_filter(self.params["layers"]["filter"], self.cfg, length)
      validation.check_finite(self._filters, "materialised filters")
      self._step_consts = None
    return self._filters

  def step_consts(self, length: int) -> hyena.StepConsts:
    """The per-token path's constants, made once per filters (eager ops cost host time)."""
    filters = self.filters(length)
    if self._step_consts is None:
      self._step_consts = hyena.step_consts(self.params, filters)
    return self._step_consts

  def plan(self, method: str, tau: str, start: int, stop: int,
           batch: int = 1) -> tuple[mixers.Plan, Any]:
    """Static plan and engine constants; tau='hybrid' uses hybrid_table, else the device's
    calibrated table for the nearest batch size (ops/tables), else the default table."""
    table = self.hybrid_table
    if table is None and tau == "hybrid":
      table = calibration.table_for(batch)
    plan = mixers.make_plan(method, start, stop, self.block_size, tau, table)
    key = (method, plan.stop, plan.filter_length, plan.tau_by_level)
    if key not in self._consts:
      self._consts.clear()  # one plan's constants at a time: they can be large
      self._consts[key] = mixers.make_consts(plan, self.filters(stop))
    return plan, self._consts[key]

  # --------------------------------------------------------------------------- building blocks

  def start(self, method: str, tau: str, prompt: jax.Array, stop: int,
            prompt_lengths=None) -> tuple[mixers.Plan, Any, DecodeState, jax.Array | None]:
    """Prefills `prompt` (B, P); returns the plan, constants, state and prompt logits (B, P, V)."""
    B, P = prompt.shape
    plan, consts = self.plan(method, tau, P, stop, B)
    validation.check_memory(self.params, self.cfg, plan, B)
    filters = self.filters(stop)
    M, D, K = self.cfg.n_layers, self.cfg.d_model, self.cfg.short_filter_order
    if P == 0:
      conv = jnp.zeros((M, B, K - 1, 3 * D), jnp.float32)
      prompt_logits, mixer_inputs = None, None
    else:
      prompt_logits, aux = _prefill(self.params, self.cfg, filters, prompt,
                                    _valid_mask(B, P, prompt_lengths))
      conv, mixer_inputs = aux.conv_tail, aux.mixer_inputs
    with validation.explain_out_of_memory(self.params, self.cfg, plan, B):
      buffer = mixers.init_buffer(plan, filters, B, mixer_inputs)
    state = DecodeState(buffer, conv, jnp.zeros((B,), jnp.int32), jnp.asarray(P, jnp.int32))
    return plan, consts, state, prompt_logits

  def run(self, plan: mixers.Plan, consts, state: DecodeState, rng: jax.Array,
          sampler: Sampler = Sampler(), forced: jax.Array | None = None,
          collect_logits: bool = False, stop_token: int | None = None,
          callback: Callable[[int, jax.Array], None] | None = None, part: str = "all",
          keep_logits: np.ndarray | None = None):
    """Runs the plan's blocks from `state`. Returns (state, tokens (B, n) numpy, logits or None).

    forced: (B, n) tokens to feed (teacher forcing) instead of the sampled ones.
    stop_token: stop after the block in which every row has produced it.
    callback(position, tokens): called after each block with its sampled tokens (B, steps).
    part: "all" | "mixer" | "dense" — run only part of the model, for timing splits.
    keep_logits: with collect_logits, keep only these absolute positions (sorted numpy ints).
    """
    if part not in PARTS:
      raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    table = dict(plan.tau_by_level)
    batch = state.token.shape[0]
    params, dense, red = self._model_args(part, batch, plan.stop)
    run_block = self._block_function(plan, batch)
    statics = {}  # per block key: a flash plan repeats a handful of keys thousands of times
    # Forced tokens sliced on the host: a device-side slice per block is a dispatched op (and
    # a kernel launch on a GPU) for each of a flash plan's thousands of blocks.
    forced = None if forced is None else np.asarray(forced, np.int32)
    tokens, logits = [], []
    done = None
    for block in plan.blocks:
      offset = block.first - plan.start
      f = None if forced is None else forced[:, offset:offset + block.num_steps]
      if block.key not in statics:
        statics[block.key] = self._block_static(plan, consts, block, sampler, collect_logits,
                                                part, batch)
      block_consts, static, big = statics[block.key]
      state, toks, lg = run_block(params, dense, block_consts, red, state, rng, f, **static)
      if big is not None:
        state = state._replace(buffer=_run_tile(consts[big], state.buffer, state.position,
                                                level=big, impl=table[big]))
      tokens.append(toks)
      if collect_logits and keep_logits is not None:
        pos = np.arange(block.first, block.first + block.num_steps)
        lg = lg[:, np.flatnonzero(np.isin(pos, keep_logits))]
      logits.append(lg)
      if callback is not None:
        callback(block.first + block.num_steps, toks)
      if stop_token is not None:
        hit = jnp.any(toks == stop_token, axis=1)
        done = hit if done is None else done | hit
        if bool(jnp.all(done)):
          break
    B = state.token.shape[0]
    # On the host: one sync at the end, and no executable per block count.
    tokens = (np.concatenate(jax.device_get(tokens), 1) if tokens
              else np.zeros((B, 0), np.int32))
    logits = jnp.concatenate(logits, 1) if collect_logits and logits else None
    return state, tokens, logits

  def _model_args(self, part: str, batch: int, length: int) -> tuple:
    """(params, dense weights, step constants) for `_run_block`. The long convolutions alone
    read none of them and get None: every argument leaf costs host time per call, which is
    what bounds that part (a flash step there is ~5 us of GPU work)."""
    if part == "mixer":
      return None, None, None
    return self.params, self.dense_weights(batch), self.step_consts(length)

  def _block_function(self, plan: mixers.Plan, batch: int):
    """The jitted block this generation runs: `_run_block`, or `_run_block_untuned` where
    XLA's autotuner would not have room for its copy of a lazy / eager history buffer."""
    untuned = validation.baseline_untuned(self.params, self.cfg, plan, batch)
    return _run_block_untuned if untuned else _run_block

  def _block_static(self, plan: mixers.Plan, consts, block, sampler: Sampler,
                    collect_logits: bool, part: str, batch: int):
    """What a block's call needs besides the state: (engine constants of its tile levels,
    static kwargs of `_run_block`, level of the boundary tile or None). Depends only on the
    block's key, so `run` makes it once per key."""
    levels, big = block.levels, block.levels[-1]
    inline_max = self.block_size.bit_length() - 2  # levels that occur inside a full block
    if big > inline_max:
      levels = levels[:-1] + (schedule.NO_TILE,)
    spec = dataclasses.replace(plan, blocks=())
    if plan.method in ("lazy", "eager"):
      spec = dataclasses.replace(spec, baseline_kernels=self.baseline_kernels or "xla")
    if plan.method == "flash":
      # A flash block depends only on its own tile levels and the buffer's shape, not on where
      # the generation starts or stops: with the plan reduced to that, every length and prompt
      # length that shares a buffer length (mixers.make_plan rounds it) reuses the executable.
      used = sorted({q for q in levels if q != schedule.NO_TILE})
      consts = {q: consts[q] for q in used}
      spec = mixers.Plan("flash", 0, 0, plan.buffer_length, 0, (),
                         tuple((q, n) for q, n in plan.tau_by_level if q in used))
    static = dict(cfg=self.cfg, spec=spec, levels=levels, window=block.window, sampler=sampler,
                  collect_logits=collect_logits, part=part,
                  unroll_steps=plan.method != "flash" and self.unroll_steps_for(batch))
    return consts, static, (big if big > inline_max else None)

  def traced_block(self, plan: mixers.Plan, consts, state: DecodeState, block_index: int = 0,
                   part: str = "all") -> jax.stages.Traced:
    """One block's program traced as `run` calls it (`.jaxpr`, `.lower()`); nothing runs."""
    block_consts, static, _ = self._block_static(plan, consts, plan.blocks[block_index],
                                                 Sampler(), False, part, state.token.shape[0])
    params, dense, red = self._model_args(part, state.token.shape[0], plan.stop)
    run_block = self._block_function(plan, state.token.shape[0])
    return run_block.trace(params, dense, block_consts, red, state, jax.random.PRNGKey(0),
                            None, **static)

  def compiled_block_text(self, plan: mixers.Plan, consts, state: DecodeState,
                          block_index: int = 0, part: str = "all") -> str:
    """The optimized HLO of one block's executable, as `run` would compile it (for counting
    the kernels a token launches; nothing runs and `state` is not donated)."""
    return self.traced_block(plan, consts, state, block_index, part).lower().compile().as_text()

  # --------------------------------------------------------------------------- entry points

  def generate(self, prompt, num_tokens: int, *, method: str = "flash", tau: str = "hybrid",
               sampler: Sampler = Sampler(), rng: jax.Array | None = None,
               prompt_lengths=None, stop_token: int | None = None,
               callback=None) -> GenerateResult:
    """Samples num_tokens new tokens after each prompt row.

    Args:
      prompt: (B, P) int token ids, P >= 1; rows shorter than P are left-padded and their
        lengths given in prompt_lengths.
      num_tokens: tokens to generate (>= 1); P + num_tokens - 1 <= l_max.
      method: 'flash' (default), 'lazy' or 'eager' — all exact, so equal up to rounding.
      tau: 'hybrid' or one of ops.tau.names() (flash only).
      sampler: Sampler(temperature, top_k, top_p); the default is greedy.
      rng: jax PRNG key (required unless the sampler is greedy).
      prompt_lengths: (B,) true lengths of left-padded prompt rows.
      stop_token: stop early once every row has produced this id (rest of the output: padding
        with the stop token).
      callback: callback(position, tokens) after each compiled block (streaming / progress).

    Returns:
      GenerateResult with tokens (B, num_tokens) as numpy.
    """
    prompt = validation.check_prompt(prompt, self.cfg, prompt_lengths, num_tokens)
    num_tokens = int(num_tokens)
    if stop_token is not None:
      stop_token = validation.check_token_id(stop_token, self.cfg, "stop_token")
    mixers.check_method(method)
    validation.check_tau(tau)
    if rng is None:
      if not sampler.greedy:
        raise ValueError("rng: a jax.random key is required for a non-greedy sampler")
      rng = jax.random.PRNGKey(0)
    B, P = prompt.shape
    stop = P + num_tokens - 1  # the last sampled token is never fed
    plan, consts, state, prompt_logits = self.start(method, tau, prompt, stop, prompt_lengths)
    first = sampler(prompt_logits[:, -1], jax.random.fold_in(rng, P - 1))
    state = state._replace(token=jnp.copy(first))  # the state is donated to the blocks
    if callback is not None:
      callback(P, first[:, None])
    if stop_token is not None and bool(jnp.all(first == stop_token)):
      toks = np.zeros((B, 0), np.int32)
    else:
      state, toks, _ = self.run(plan, consts, state, rng, sampler, stop_token=stop_token,
                                callback=callback)
    fed = int(state.position) - P
    out = np.concatenate([np.asarray(first)[:, None], toks], 1)
    if out.shape[1] < num_tokens:
      out = np.pad(out, ((0, 0), (0, num_tokens - out.shape[1])),
                   constant_values=stop_token if stop_token is not None else 0)
    return GenerateResult(out, state, fed)

  def decode_logits(self, tokens, prompt_len: int = 0, *, method: str = "flash",
                    tau: str = "hybrid", prompt_lengths=None,
                    positions: np.ndarray | None = None) -> jax.Array:
    """Teacher-forced decode: logits (B, L, V) of every position (or of `positions`).

    The first prompt_len positions go through the parallel forward (prefill), the rest one
    position at a time through the chosen engine. Used for parity checks against `forward`.
    positions: optional sorted positions to return logits for (memory at large L * V).
    """
    tokens = validation.check_tokens(tokens, self.cfg, "tokens")
    B, L = tokens.shape
    if L < 1:
      raise ValueError("tokens must hold at least one position per row (got length 0)")
    if not 0 <= prompt_len <= L:
      raise ValueError(f"prompt_len must be in [0, {L}], got {prompt_len}")
    validation.check_length(L, self.cfg)
    mixers.check_method(method)
    validation.check_tau(tau)
    if prompt_lengths is not None:
      validation.check_prompt(tokens[:, :prompt_len], self.cfg, prompt_lengths, L - prompt_len + 1)
    prompt = tokens[:, :prompt_len]
    plan, consts, state, prompt_logits = self.start(method, tau, prompt, L, prompt_lengths)
    keep = None if positions is None else validation.check_positions(positions, L)
    pieces = []
    if prompt_logits is not None:
      pieces.append(prompt_logits if keep is None else prompt_logits[:, keep[keep < prompt_len]])
    if L > prompt_len:
      _, _, logits = self.run(plan, consts, state, jax.random.PRNGKey(0),
                              forced=tokens[:, prompt_len:], collect_logits=True,
                              keep_logits=keep)
      pieces.append(logits)
    return jnp.concatenate(pieces, 1)


def _one_off(params, cfg: HyenaConfig, kwargs: dict) -> Generator:
  """A Generator for one call; Generator's own fields are taken out of kwargs."""
  fields = {f: kwargs.pop(f) for f in ("block_size", "hybrid_table", "unroll_layers",
                                     "dense_path", "unroll_steps") if f in kwargs}
  return Generator(params, cfg, **fields)


def generate(params, cfg: HyenaConfig, prompt, num_tokens: int, **kwargs) -> GenerateResult:
  """Functional form of Generator.generate (builds the filters every call)."""
  return _one_off(params, cfg, kwargs).generate(prompt, num_tokens, **kwargs)


def decode_logits(params, cfg: HyenaConfig, tokens, prompt_len: int = 0, **kwargs) -> jax.Array:
  """Functional form of Generator.decode_logits."""
  return _one_off(params, cfg, kwargs).decode_logits(tokens, prompt_len, **kwargs)
