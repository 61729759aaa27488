"""Checks and times the fused per-token layer kernels (ops/pallas_layer) on the paper config.

  PYTHONPATH=. python experiments/dense_gpu.py [--out=PATH] [--batches=1,8]
  PYTHONPATH=. python experiments/dense_gpu.py --tiny          # CPU smoke run (interpret mode)

On the paper config (M = 18, D = 864, I = 1728, V = 50257) with random weights, per weight dtype
(--dtypes) and batch (--batches):
(a) check: token_step_fused (forced to the compiled Triton kernels: a failure is an error, never
    a silent XLA fallback) against hyena.token_step, both at matmul precision HIGHEST, on random
    tokens / acc / conv state: max |diff| / max |reference| of logits, u and the conv state, for
    each fused layer loop that is timed. Bounds: 1e-5 float32, 5e-3 bfloat16 (the reference runs
    on the same bfloat16 weights; see tests/test_pallas_layer.py for why the bound is looser).
(b) time per token, as a jitted chain of --tokens dependent tokens (a fori_loop over tokens, as
    the engine's blocks: each step's tokens are the argmax of the last logits, the conv state and
    u are carried, acc is a fixed random input), at the default matmul precision (what the engine
    runs): "xla_scan" hyena.token_step with scanned layers, "xla_unroll" the same unrolled over
    hyena.split_layers, "fused_unroll" / "fused_scan" / "fused_persistent" token_step_fused
    with the layer loop unrolled / a fori_loop / inside one persistent kernel. Median of --repeats calls after warm-up, divided by --tokens.
    "...@python": the same step as a Python-unrolled chain of --python_tokens tokens (no while
    loop over tokens, so no per-token loop-condition round trip to the host: the difference to
    the fori chain is that overhead, which weighs more the fewer and faster the kernels are).
(c) kernels per token: experiments/hlo_kernels.count on the compiled chain's HLO, divided by the
    tokens per chain (by opcode too; a Triton kernel is a custom-call).
(d) JSON (--out, default $OUT/dense_gpu.json or results/dense_gpu.json), rewritten after every
    record: device, jax / jaxlib versions, matmul precision, copy bandwidth and matmul rates
    (common.device_rates), per dtype the weight bytes per token and the bandwidth floor, checks,
    records and a summary table (also printed).

Order (so that a short --budget_s still gives the main comparison): phase 1 runs, for every dtype
and batch, the check, fused_unroll and xla_scan; phase 2 xla_unroll and fused_scan, then the
Python-unrolled chains of --python_chain; phase 3 the alternative block configs of --variants on
fused_unroll. Entries past the budget (--budget_s, default 200 s) are recorded as skipped, so the
default run stays within about 4 minutes on an H100 including compiles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time
import traceback
from unittest import mock

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.models import hyena
from flash_lcsm_jax.ops import pallas_layer as pal
from experiments import common
from experiments import hlo_kernels

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/dense_gpu.json or "
                           "results/dense_gpu.json).")
_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes B.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Weight dtypes.")
_TOKENS = flags.DEFINE_integer("tokens", 32, "Dependent tokens per timed chain.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed chain calls per entry (median).")
_BUDGET = flags.DEFINE_float("budget_s", 200.0, "Wall-clock budget; entries past it are skipped.")
_PHASE1 = flags.DEFINE_list("phase1", ["fused_unroll", "xla_scan"], "Timed first, per dtype/B.")
_PHASE2 = flags.DEFINE_list("phase2", ["xla_unroll", "fused_scan"], "Timed next, per dtype/B.")
_PYTHON_CHAIN = flags.DEFINE_list(
    "python_chain", ["fused_unroll", "xla_scan"],
    "Also timed (end of phase 2) as a Python-unrolled chain of --python_tokens tokens.")
_PYTHON_TOKENS = flags.DEFINE_integer("python_tokens", 8, "Tokens of the Python-unrolled chain.")
_VARIANTS = flags.DEFINE_list(
    "variants", ["rows_half", "chunk256", "warps8", "order_chunk"],
    "Phase 3: fused_unroll with these block-config variants (see variant_config); "
    "\"LOOP:VARIANT\" varies another fused layer loop, e.g. persistent:warps4.")
_CHECK_VARIANTS = flags.DEFINE_bool("check_variants", False, "Check each phase-3 variant "
                                     "against XLA at HIGHEST before timing it.")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run: tiny model (D=40, I=80, M=2), "
                          "interpret mode off GPU, 4 tokens, 2 repeats, one variant, no budget.")

_START = time.perf_counter()
IMPLS = ("xla_scan", "xla_unroll", "fused_unroll", "fused_scan", "fused_persistent")
TOLERANCE = {"float32": 1e-5, "bfloat16": 5e-3}
TINY_MODEL = dict(common.CPU_MODEL, d_model=40, d_inner=80)


def _elapsed() -> float:
  return time.perf_counter() - _START


def variant_config(name: str, base: pal.LayerConfig) -> pal.LayerConfig:
  """A named change of every kernel's blocks: rows_half / rows_double, chunkN, warpsN,
  order_batch / order_chunk / order_tile (at every batch: batch_tiles off); of the batch block:
  batch_blockN; of the persistent loop: noprefetch, sm2 / sm1 (two programs per SM / one: the
  engine's choice per batch and dtype, programs_per_sm_for, is the base), arrive_early /
  arrive_late, nobarrier, data / data_l1 (LayerConfig.sync: the phases poll the activations
  instead of barriers), prefetch_ops (LayerConfig.prefetch_operands), rel_acq (releasing
  arrivals and acquiring polls: LayerConfig.barrier_order), barrier (the barriers and no
  per-batch choice: for_batch's data_l1 at B = 2 undone); "A+B" applies A, then B."""
  if "+" in name:
    for part in name.split("+"):
      base = variant_config(part, base)
    return base

  if name == "rows_half":
    return base.map_blocks(lambda b: dataclasses.replace(b, rows=max(1, b.rows // 2)))
  if name == "rows_double":
    return base.map_blocks(lambda b: dataclasses.replace(b, rows=2 * b.rows))
  if name.startswith("chunk"):
    return base.replace_blocks(chunk=int(name[5:]))
  if name.startswith("warps"):
    return base.replace_blocks(num_warps=int(name[5:]))
  if name.startswith("order_"):  # as named at every batch: no per-batch choice (batch_tiles)
    return dataclasses.replace(base.replace_blocks(order=name[6:]), batch_tiles=False)
  if name.startswith("batch_block"):
    return dataclasses.replace(base, batch_block=int(name[11:]))
  if name == "noprefetch":
    return dataclasses.replace(base, prefetch=False)
  if name == "sm2":  # two 4-warp programs per SM, half the rows each (as it is if already so)
    if base.programs_per_sm == 2:
      return base
    return dataclasses.replace(
        variant_config("rows_half", base).replace_blocks(num_warps=4), programs_per_sm=2)
  if name == "sm1":  # one 8-warp program per SM, twice the rows (as it is if already so)
    if base.programs_per_sm == 1:
      return base
    return dataclasses.replace(variant_config("rows_double", base),
                               programs_per_sm=1).replace_blocks(num_warps=8)
  if name in ("arrive_early", "arrive_late"):  # early arrival is the default since session 8
    return dataclasses.replace(base, arrive_early=name == "arrive_early")
  if name == "nobarrier":  # see NO_BARRIER
    return base
  if name in ("data", "data_l1"):
    return dataclasses.replace(base, sync=name)
  if name == "prefetch_ops":
    return dataclasses.replace(base, prefetch_operands=True)
  if name == "rel_acq":
    return dataclasses.replace(base, barrier_order="release_acquire")
  if name == "barrier":  # the barriers even where for_batch would poll (B = 2); B <= 2 only:
    return dataclasses.replace(base, sync="barrier", batch_tiles=False)  # no tile order either
  raise ValueError(f"unknown variant {name!r}: rows_half, rows_double, chunkN, warpsN, "
                   "order_batch, order_chunk, order_tile, batch_blockN, noprefetch, sm1, sm2, "
                   "arrive_early, arrive_late, nobarrier, data, data_l1, prefetch_ops, rel_acq, "
                   "barrier, A+B")


# A variant of the persistent loop with its barriers removed: its results are WRONG (phases race),
# it is never checked, and it only measures how much of the token the barriers take.
NO_BARRIER = "nobarrier"


@contextlib.contextmanager
def barriers_removed(active: bool):
  if not active:
    yield
    return
  pal.step._token_step.clear_cache()  # pylint: disable=protected-access
  skip = lambda *args, **kwargs: None
  with mock.patch.object(pal.persistent, "_grid_barrier", skip), \
      mock.patch.object(pal.persistent, "_grid_arrive", skip), \
      mock.patch.object(pal.persistent, "_grid_wait", skip):
    yield
  pal.step._token_step.clear_cache()  # pylint: disable=protected-access


def base_config(loop: str, cfg, batch: int) -> pal.LayerConfig:
  """The default blocks of a fused layer loop at B = batch rows: the persistent one's as the
  engine runs them, sized to the device's SMs with the engine's programs per SM for this batch
  and dtype (programs_per_sm_for: two at bfloat16 B = 1; until session 30 this script timed one
  per SM there)."""
  if loop == "persistent":
    return pal.persistent_config(cfg.d_model, cfg.d_inner, programs=pal.gpu_core_count() or 132,
                                 programs_per_sm=pal.programs_per_sm_for(batch, cfg.dtype))
  return pal.default_config(cfg.d_model, cfg.d_inner)


# ----------------------------------------------------------------------------- model and state


class Model:
  """One dtype's parameters, step constants and prepared weights (made on first use)."""

  def __init__(self, dtype: str, tiny: bool):
    self.cfg = (common.model_config("cpu", **{**TINY_MODEL, "dtype": dtype}) if tiny
                else common.model_config("gpu", dtype=dtype))
    self.params = common.random_params(self.cfg)
    filters = hyena.materialise_filter(self.params["layers"]["filter"], self.cfg, 1)
    self.consts = hyena.step_consts(self.params, filters)
    self._prepared: dict = {}
    self._layer_list = None

  def prepared(self, config: pal.LayerConfig) -> pal.PreparedLayers:
    if config not in self._prepared:
      self._prepared = {config: jax.block_until_ready(
          pal.prepare_layer_weights(self.params, self.cfg, config))}  # one copy at a time
    return self._prepared[config]

  def layer_list(self):
    if self._layer_list is None:
      self._layer_list = jax.block_until_ready(hyena.split_layers(self.params))
    return self._layer_list

  def state(self, batch: int, seed: int = 0):
    cfg = self.cfg
    M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    tokens = jax.random.randint(k1, (batch,), 0, cfg.vocab_size, jnp.int32)
    acc = 0.1 * jax.random.normal(k2, (M, batch, D), jnp.float32)
    conv = jax.random.normal(k3, (M, batch, K - 1, 3 * D), jnp.float32)
    return tokens, acc, conv


def step_fn(impl: str, model: Model, fused_impl: str):
  """(extra, step): step(params, extra, consts, tokens, acc, conv) -> (logits, u, conv)."""
  cfg = model.cfg
  if impl == "xla_scan":
    return None, lambda p, e, c, t, a, s: hyena.token_step(p, cfg, c, t, a, s)
  if impl == "xla_unroll":
    return model.layer_list(), lambda p, e, c, t, a, s: hyena.token_step(p, cfg, c, t, a, s, e)
  loop = impl.split("_")[1]
  return None, lambda p, e, c, t, a, s: pal.token_step_fused(
      p, e, cfg, c, t, a, s, implementation=fused_impl, layer_loop=loop)


def make_chain(step, tokens_per_chain: int, python_loop: bool = False):
  """jit(params, extra, consts, tokens, acc, conv) -> (tokens, conv, u) after N dependent steps:
  a fori_loop over tokens (as the engine's blocks), or a Python loop (no while loop: no
  per-token loop-condition round trip, so the difference isolates that overhead)."""

  def chain(params, extra, consts, tokens, acc, conv):
    def body(_, carry):
      tokens, conv, _ = carry
      logits, u, conv = step(params, extra, consts, tokens, acc, conv)
      return jnp.argmax(logits, axis=-1).astype(jnp.int32), conv, u

    carry = (tokens, conv, jnp.zeros(acc.shape, jnp.float32))
    if python_loop:
      for i in range(tokens_per_chain):
        carry = body(i, carry)
      return carry
    return jax.lax.fori_loop(0, tokens_per_chain, body, carry)

  return jax.jit(chain)


# ----------------------------------------------------------------------------- entries


def run_check(model: Model, batch: int, loops, fused_impl: str,
              config: pal.LayerConfig | None = None, variant: str | None = None) -> dict:
  row = dict(kind="check", dtype=model.cfg.dtype, batch=batch, tolerance=TOLERANCE[
      model.cfg.dtype], **({"variant": variant} if variant else {}))
  try:
    tokens, acc, conv = model.state(batch, seed=1)
    t0 = time.perf_counter()
    with jax.default_matmul_precision("highest"):
      want = jax.jit(lambda p, c, t, a, s: hyena.token_step(p, model.cfg, c, t, a, s))(
          model.params, model.consts, tokens, acc, conv)
      for loop in loops:
        got = jax.jit(lambda p, w, c, t, a, s, loop=loop: pal.token_step_fused(
            p, w, model.cfg, c, t, a, s, implementation=fused_impl, layer_loop=loop))(
                model.params, model.prepared(config or base_config(loop, model.cfg, batch)),
                model.consts, tokens, acc, conv)
        errs = {name: common.max_relative_error(g, w) for name, g, w in
                zip(("logits", "u", "conv_state"), got, want)}
        row[f"rel_err_{loop}"] = errs
        row[f"finite_{loop}"] = all(bool(np.isfinite(np.asarray(g)).all()) for g in got)
    row["ok"] = all(row[f"finite_{loop}"] and max(row[f"rel_err_{loop}"].values())
                    <= row["tolerance"] for loop in loops)
    row["seconds"] = round(time.perf_counter() - t0, 1)
  except Exception as e:  # pylint: disable=broad-except
    row.update(ok=False, error=common.error_text(e, 600))
    traceback.print_exc(limit=4, file=sys.stderr)
  return row


def run_timing(model: Model, batch: int, impl: str, fused_impl: str, floor_s: float,
               config: pal.LayerConfig | None = None, variant: str | None = None,
               python_loop: bool = False) -> dict:
  n = _PYTHON_TOKENS.value if python_loop else _TOKENS.value
  row = dict(kind="time", dtype=model.cfg.dtype, batch=batch, impl=impl, tokens_per_chain=n,
             chain="python" if python_loop else "fori")
  if variant:
    row["variant"] = variant
  loop = impl.split("_")[1] if impl.startswith("fused") else None
  if loop:
    config = config or base_config(loop, model.cfg, batch)
    row["config"] = dataclasses.asdict(config)
  try:
    extra, step = step_fn(impl, model, fused_impl)
    if loop:
      extra = model.prepared(config)
    args = (model.params, extra, model.consts) + model.state(batch)
    chain = make_chain(step, n, python_loop)
    t0 = time.perf_counter()
    with barriers_removed(NO_BARRIER in (variant or "").split("+")):
      compiled = chain.lower(*args).compile()
    row["compile_s"] = round(time.perf_counter() - t0, 2)
    counted = hlo_kernels.count(compiled.as_text())
    row["kernels_per_token"] = counted.total / n
    row["kernels_by_opcode_per_token"] = {k: v / n for k, v in counted.by_opcode.items()}
    row["unknown_trip_counts"] = counted.unknown_trip_counts
    for _ in range(2):
      jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(max(1, _REPEATS.value)):
      t0 = time.perf_counter()
      jax.block_until_ready(compiled(*args))
      times.append(time.perf_counter() - t0)
    per_token = statistics.median(times) / n
    row.update(per_token_ms=per_token * 1e3, min_per_token_ms=min(times) / n * 1e3,
               times_over_floor=per_token / floor_s if floor_s else None,
               tokens_per_s=batch / per_token)
  except Exception as e:  # pylint: disable=broad-except
    row["error"] = common.error_text(e, 600)
    traceback.print_exc(limit=4, file=sys.stderr)
  return row


# ----------------------------------------------------------------------------- report


def summarize(rows: list) -> list[dict]:
  out = {}
  for r in rows:
    if r.get("kind") != "time" or "per_token_ms" not in r:
      continue
    key = (r["dtype"], r["batch"])
    label = r["impl"] + (f":{r['variant']}" if r.get("variant") else "") + (
        "@python" if r.get("chain") == "python" else "")
    out.setdefault(key, {"dtype": r["dtype"], "batch": r["batch"]})[label] = dict(
        ms=round(r["per_token_ms"], 4), kernels=round(r["kernels_per_token"], 1),
        x_floor=r["times_over_floor"] and round(r["times_over_floor"], 2))
  for entry in out.values():
    best_xla = min((v["ms"] for k, v in entry.items() if k.startswith("xla") and "@" not in k
                    and isinstance(v, dict)), default=None)
    fused = entry.get("fused_unroll", {}).get("ms")
    if best_xla and fused:
      entry["speedup_fused_unroll_vs_best_xla"] = round(best_xla / fused, 2)
  return list(out.values())


def table(summary: list[dict], floors: dict) -> str:
  lines = ["ms per token (kernels per token, x floor)"]
  for e in summary:
    floor = floors.get(e["dtype"], {}).get("floor_ms")
    lines.append(f"{e['dtype']:8s} B={e['batch']:<2d} floor {floor or 0:.3f} ms; speedup fused"
                 f"_unroll vs best xla: {e.get('speedup_fused_unroll_vs_best_xla', '-')}")
    for k, v in e.items():
      if isinstance(v, dict):
        lines.append(f"    {k:28s} {v['ms']:8.4f} ms  ({v['kernels']:6.1f} kernels, "
                     f"{v['x_floor'] or 0:5.2f}x)")
  return "\n".join(lines)


def main(argv):
  del argv
  tiny = _TINY.value
  if tiny:
    flags.FLAGS.tokens = min(_TOKENS.value, 4)
    flags.FLAGS.repeats = min(_REPEATS.value, 2)
    flags.FLAGS.budget_s = 1e9
    if not flags.FLAGS["variants"].present:  # the default list: its first variant only
      flags.FLAGS.variants = _VARIANTS.value[:1]
  for name in _PHASE1.value + _PHASE2.value + _PYTHON_CHAIN.value:
    if name not in IMPLS:
      raise app.UsageError(f"unknown implementation {name!r}; choose from {IMPLS}")
  gpu = jax.default_backend() in pal.GPU_BACKENDS
  fused_impl = "pallas" if gpu else "interpret"
  if not gpu and not tiny:
    print("warning: no GPU; the fused kernels run in interpret mode (slow)", flush=True)
  size = "cpu" if tiny else "gpu"
  device = jax.devices()[0]
  path = common.output_path(_OUT.value, "dense_gpu.json")
  batches = [int(b) for b in _BATCHES.value]
  print(f"device {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
        f"dtypes={_DTYPES.value} batches={batches} tokens/chain={_TOKENS.value} "
        f"fused={fused_impl}", flush=True)
  rates = common.device_rates(size)
  bandwidth = rates["copy_bandwidth_GBps"] * 1e9
  rows: list = []
  floors: dict = {}
  result = dict(experiment="dense_gpu", complete=False, device=device.device_kind,
                platform=jax.default_backend(), jax_version=jax.__version__,
                jaxlib_version=common.jaxlib_version(), tiny=tiny, fused_implementation=fused_impl,
                matmul_precision=str(jax.config.jax_default_matmul_precision),
                xla_flags=os.environ.get("XLA_FLAGS", ""), tokens_per_chain=_TOKENS.value,
                repeats=_REPEATS.value, rates=rates, floors=floors, rows=rows)
  models: dict[str, Model] = {}

  def model(dtype: str) -> Model:
    if dtype not in models:
      models.clear()  # one dtype's weights at a time
      models[dtype] = Model(dtype, tiny)
      cfg = models[dtype].cfg
      nbytes = pal.weight_bytes_per_token(cfg)
      floors[dtype] = dict(weight_bytes=nbytes, floor_ms=nbytes["total"] / bandwidth * 1e3,
                           layers_floor_ms=nbytes["layers"] / bandwidth * 1e3,
                           model=cfg.to_dict())
    return models[dtype]

  def record(row: dict):
    rows.append(row)
    common.write_json_file(path, result)
    what = row.get("impl", "check") + (f":{row['variant']}" if row.get("variant") else "") + (
        "@python" if row.get("chain") == "python" else "")
    status = ("skip" if "skipped" in row else "ERR " if "error" in row else "ok  "
              if row.get("ok", True) else "BAD ")
    detail = (f"{row['per_token_ms']:8.4f} ms/token {row['kernels_per_token']:6.1f} kernels/token "
              f"({row['times_over_floor'] or 0:.2f}x floor, compile {row['compile_s']} s)"
              if "per_token_ms" in row else
              json.dumps({k: v for k, v in row.items() if k.startswith("rel_err")})
              if row.get("kind") == "check" and "error" not in row
              else row.get("error", row.get("skipped", ""))[:300])
    print(f"[{_elapsed():6.1f}s] {row['dtype']:8s} B={row['batch']:<2d} {what:24s} {status} "
          f"{detail}", flush=True)

  def over_budget(row: dict) -> bool:
    if _elapsed() > _BUDGET.value:
      row["skipped"] = "time budget"
      record(row)
      return True
    return False

  def timed(dtype: str, batch: int, impl: str, python_loop: bool = False):
    row = dict(kind="time", dtype=dtype, batch=batch, impl=impl,
               **({"chain": "python"} if python_loop else {}))
    if not over_budget(row):
      record(run_timing(model(dtype), batch, impl, fused_impl,
                        floors[dtype]["floor_ms"] * 1e-3, python_loop=python_loop))

  phase1 = list(_PHASE1.value)
  loops = [i.split("_")[1] for i in phase1 + _PHASE2.value if i.startswith("fused")]
  for dtype in _DTYPES.value:
    for batch in batches:
      row = dict(kind="check", dtype=dtype, batch=batch)
      if not over_budget(row):
        record(run_check(model(dtype), batch, loops, fused_impl))
      for impl in phase1:
        timed(dtype, batch, impl)
  # Phase 2 and the Python-unrolled chains only after every (dtype, B) has its phase-1 numbers.
  for impls, python_loop in ((_PHASE2.value, False), (_PYTHON_CHAIN.value, True)):
    for dtype in _DTYPES.value:
      for batch in batches:
        for impl in impls:
          timed(dtype, batch, impl, python_loop)
  for variant in _VARIANTS.value:
    loop, _, name = variant.rpartition(":")  # "persistent:warps4": a variant of that loop
    loop = loop or "unroll"
    for dtype in _DTYPES.value:
      for batch in batches:
        row = dict(kind="time", dtype=dtype, batch=batch, impl=f"fused_{loop}", variant=name)
        if not over_budget(row):
          m = model(dtype)
          config = variant_config(name, base_config(loop, m.cfg, batch))
          if _CHECK_VARIANTS.value and NO_BARRIER not in name.split("+"):
            record(run_check(m, batch, [loop], fused_impl, config, name))
          record(run_timing(m, batch, f"fused_{loop}", fused_impl,
                            floors[dtype]["floor_ms"] * 1e-3, config, name))
  checks = [r for r in rows if r.get("kind") == "check" and "skipped" not in r]
  result.update(complete=True, checks_passed=all(r.get("ok") for r in checks),
                summary=summarize(rows), elapsed_s=round(_elapsed(), 1))
  common.write_json_file(path, result)
  print(f"\nwrote {path} in {result['elapsed_s']} s; checks "
        + ("all passed" if result["checks_passed"] else "FAILED"))
  print(table(result["summary"], floors))


if __name__ == "__main__":
  app.run(main)
