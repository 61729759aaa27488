"""Checks and times the split-K Pallas matvec against XLA's dot on the per-token shapes.

  PYTHONPATH=. python experiments/matvec_gpu.py --out=$OUT/matvec_gpu.json

For every (K, N) in --shapes, weight dtype in --dtypes and B in --batches:
(a) check: y0 = x0 @ W0 + b0 by the kernel (each block config) and by XLA's dot at default
    precision, against XLA's dot at precision HIGHEST on float32-upcast operands: relative error
    max|diff| / max|reference|.
(b) time: a jitted chain of --calls dependent products over as many DIFFERENT weight matrices (so
    L2 cannot keep them: 18 x 9 MB for (864, 2592)), x_{i+1} = tanh(x_i @ W_i + b_i) cut or tiled
    to K columns, cast to the weight dtype as the model's dense layers do; warm-up, then the median
    of >= 20 blocked calls. Reported: microseconds per product (chain time / calls, so it includes
    a share of the tanh step and of one dispatch) and GB/s = K * N * itemsize / that time.
    "overhead_us" is the same chain with the product replaced by a slice of x (tanh steps and
    dispatch only): subtract it for the bare product.

Implementations timed: "xla" = jnp.dot(x.astype(W.dtype), W, preferred_element_type=float32) on
the unpadded W at the default matmul precision (what models/hyena.dense runs today); "pallas:NAME"
= pallas_matvec.matvec_pallas with block config NAME on weights prepared (padded) for it; in a
second phase, if time is left, "xla_highest" (the same dot at precision HIGHEST). Phase 1 runs
xla, the overhead chain and the table config (pallas_matvec.MATVEC_CONFIGS) for every shape,
dtype and batch; phase 2 then runs the alternative configs (--configs) one at a time over all
shapes, so a short --budget_s still gives the main comparison and the most promising
alternatives. A failing entry records its error and the run goes on. JSON goes to --out (default
$OUT/matvec_gpu.json or results/matvec_gpu.json), rewritten after every pass; a compact table is
printed last.

CPU smoke test (interpret mode, tiny): --implementation=interpret --shapes=64x200 --calls=3
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import sys
import time
import traceback

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops import pallas_matvec as pm
from experiments import common

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/matvec_gpu.json or "
                           "results/matvec_gpu.json).")
_SHAPES = flags.DEFINE_list("shapes", ["864x2592", "864x864", "864x1728", "1728x864",
                                       "864x50257"], "KxN of the products.")
_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes B.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Weight dtypes.")
_CALLS = flags.DEFINE_integer("calls", 18, "Dependent products (distinct weights) per chain.")
_REPEATS = flags.DEFINE_integer("repeats", 30, "Timed chain calls per entry (>= 20).")
_BUDGET = flags.DEFINE_float("budget_s", 140.0, "Wall-clock budget; entries past it are skipped.")
_PHASE2_CONFIGS = flags.DEFINE_list(
    "configs", ["bn128_bk64", "bn64_bk32", "dot", "bn256_bk32_w8", "bn128_bk32_ks4_st3"],
    "Alternative block configs timed in phase 2, in priority order (names in CANDIDATES).")
_XLA_HIGHEST = flags.DEFINE_bool("xla_highest", True, "Also time XLA's dot at HIGHEST (phase 2).")
_TOLERANCE = flags.DEFINE_float("tolerance", 1e-5, "Pass bound on the relative error.")
_IMPLEMENTATION = flags.DEFINE_enum("implementation", "pallas", ["pallas", "interpret"],
                                    "How the kernel runs (interpret: CPU smoke test only).")

_START = time.perf_counter()

# Alternatives to the table config; "dot" is the table config with tl.dot on B padded to 16.
CANDIDATES = {
    "bn128_bk64": pm.MatvecConfig(block_n=128, block_k=64),
    "bn64_bk32": pm.MatvecConfig(block_n=64, block_k=32),
    "bn256_bk32_w8": pm.MatvecConfig(block_n=256, block_k=32, num_warps=8),
    "bn128_bk32_ks4_st3": pm.MatvecConfig(block_n=128, block_k=32, k_steps=4, num_stages=3),
    "bn64_bk64": pm.MatvecConfig(block_n=64, block_k=64),
    "bn128_bk128": pm.MatvecConfig(block_n=128, block_k=128),
    "bn128_bk64_w2": pm.MatvecConfig(block_n=128, block_k=64, num_warps=2),
}


def _elapsed() -> float:
  return time.perf_counter() - _START


def parse_shape(text: str) -> tuple[int, int]:
  k, n = text.lower().split("x")
  return int(k), int(n)


def config_name(config: pm.MatvecConfig) -> str:
  c = config
  name = f"bn{c.block_n}_bk{c.block_k}"
  if c.k_steps > 1:
    name += f"_ks{c.k_steps}"
  if c.reduction != "sum":
    name += f"_{c.reduction}"
  if c.num_warps != 4:
    name += f"_w{c.num_warps}"
  if c.num_stages != 1:
    name += f"_st{c.num_stages}"
  return name


def phase_entries(shape, phase) -> dict[str, pm.MatvecConfig | str]:
  """What one pass over a shape runs: name -> block config, or "xla" / "overhead" /
  "xla_highest". Phase 1: xla, overhead and the table config. Phase 2 runs one alternative
  (`phase` is its name) per pass, skipped where it equals the table config."""
  table = pm.default_config(*shape)
  if phase == 1:
    return {"xla": "xla", "overhead": "overhead", f"pallas:table[{config_name(table)}]": table}
  if phase == "xla_highest":
    return {"xla_highest": "xla_highest"}
  config = dataclasses.replace(table, reduction="dot") if phase == "dot" else CANDIDATES[phase]
  return {} if config == table else {f"pallas:{config_name(config)}": config}


# ----------------------------------------------------------------------------- chains


def next_x(y: jax.Array, k: int, dtype) -> jax.Array:
  """tanh(y) cut (or tiled) to K columns, in the weight dtype: the next step's input."""
  y = jnp.tanh(y)
  n = y.shape[-1]
  if n < k:
    y = jnp.tile(y, (1, -(-k // n)))
  return y[:, :k].astype(dtype)


def make_chain(step, k: int, dtype):
  """jit(x0, ws, bs) -> (x_final, y0): len(ws) dependent products step(x, w, b)."""

  def chain(x0, ws, bs):
    x, y0 = x0, None
    for w, b in zip(ws, bs):
      y = step(x, w, b)
      y0 = y if y0 is None else y0
      x = next_x(y, k, dtype)
    return x, y0

  return jax.jit(chain)


def xla_step(precision):
  def step(x, w, b):
    return jnp.dot(x.astype(w.dtype), w, preferred_element_type=jnp.float32,
                   precision=precision) + b
  return step


def pallas_step(config: pm.MatvecConfig, interpret: bool):
  def step(x, prepared, b):
    return pm.matvec_pallas(x, prepared.w, b, n=prepared.n, config=config, interpret=interpret)
  return step


def overhead_step(n: int):
  def step(x, w, b):
    del w
    y = x.astype(jnp.float32)
    if y.shape[-1] < n:
      y = jnp.tile(y, (1, -(-n // y.shape[-1])))
    return y[:, :n] + b
  return step


def median_us(fn, args, repeats: int) -> tuple[float, float]:
  for _ in range(2):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return 1e6 * statistics.median(times), 1e6 * min(times)


# ----------------------------------------------------------------------------- one shape


@jax.jit
def _reference(x, w, b):
  return jnp.dot(x.astype(jnp.float32), w.astype(jnp.float32),
                 precision=jax.lax.Precision.HIGHEST, preferred_element_type=jnp.float32) + b


@functools.lru_cache(maxsize=None)
def _uniform(shape):
  k, n = shape
  return jax.jit(lambda key: jax.random.uniform(key, (k, n), jnp.float32, -1, 1) / np.sqrt(k))


def random_weights(shape, count: int, seed: int):
  """`count` weights (K, N) uniform +-1/sqrt(K) and biases (N,), the same for every pass."""
  make = _uniform(shape)
  n = shape[1]
  keys = jax.random.split(jax.random.PRNGKey(seed), count + 1)
  ws = [make(key) for key in keys[:count]]
  bs = list(0.1 * jax.random.normal(keys[count], (count, n), jnp.float32))
  return jax.block_until_ready(ws), jax.block_until_ready(bs)


def run_entry(row: dict, chain, ws, bs, x0, reference, weight_bytes: int, calls: int,
              repeats: int):
  """Compiles, checks y0 and times one chain; fills `row`."""
  try:
    t0 = time.perf_counter()
    compiled = chain.lower(x0, ws, bs).compile()
    row["compile_s"] = round(time.perf_counter() - t0, 2)
    _, y0 = compiled(x0, ws, bs)
    if reference is not None:
      row["finite"] = bool(np.isfinite(np.asarray(y0)).all())
      row["rel_err"] = common.max_relative_error(y0, reference)
      # XLA at default precision may run TF32: its error is recorded, not held to the bound.
      row["ok"] = row["finite"] and (row["rel_err"] <= _TOLERANCE.value
                                     or not row["impl"].startswith("pallas"))
    med, best = median_us(compiled, (x0, ws, bs), repeats)
    row["chain_median_us"], row["chain_min_us"] = round(med, 2), round(best, 2)
    row["us_per_call"] = round(med / calls, 3)
    if weight_bytes:
      row["gbps"] = round(weight_bytes / (med / calls * 1e-6) / 1e9, 1)
  except Exception as e:  # pylint: disable=broad-except
    row["ok"] = False
    row["error"] = common.error_text(e, 600)
    traceback.print_exc(limit=3, file=sys.stderr)


def run_shape(shape, phase, rows: list, choices: dict):
  """One pass over a shape (all dtypes and batches) for the entries of `phase`."""
  k, n = shape
  calls = _CALLS.value
  repeats = max(20, _REPEATS.value)
  interpret = _IMPLEMENTATION.value == "interpret"
  spec = phase_entries(shape, phase)
  if not spec:
    return
  if _elapsed() > _BUDGET.value:
    rows.extend(dict(phase=phase, shape=f"{k}x{n}", impl=name, skipped="time budget")
                for name in spec)
    return
  ws32, bs = random_weights(shape, calls, seed=k * 7 + n)
  for dtype_name in _DTYPES.value:
    dtype = jnp.dtype(dtype_name)
    ws = [w.astype(dtype) for w in ws32] if dtype != jnp.float32 else ws32
    weight_bytes = k * n * dtype.itemsize
    entries = []  # (name, chain, weights, bytes)
    for name, what in spec.items():
      if what == "xla":
        entries.append((name, make_chain(xla_step(None), k, dtype), ws, weight_bytes))
      elif what == "xla_highest":
        entries.append((name, make_chain(xla_step(jax.lax.Precision.HIGHEST), k, dtype), ws,
                        weight_bytes))
      elif what == "overhead":
        entries.append((name, make_chain(overhead_step(n), k, dtype), ws, 0))
      else:
        pws = [pm.prepare_weights(w, what) for w in ws]
        entries.append((name, make_chain(pallas_step(what, interpret), k, dtype), pws,
                        weight_bytes))
    for batch in [int(b) for b in _BATCHES.value]:
      x0 = jax.random.normal(jax.random.PRNGKey(batch), (batch, k), jnp.float32).astype(dtype)
      reference = np.asarray(_reference(x0, ws[0], bs[0]))
      if phase == 1 and batch == int(_BATCHES.value[0]) and not interpret:
        # What the default dispatch picks for this shape (its compile probe included).
        key = f"matvec {k}x{n} {dtype.name} B={batch}"
        try:
          pm.matvec(x0, pm.prepare_weights(ws[0]), bs[0])
        except Exception as e:  # pylint: disable=broad-except
          pallas_direct.REASONS[key] = common.error_text(e, 600)
        choices[key] = (pallas_direct.CHOSEN.get(key), pallas_direct.REASONS.get(key))
      for name, chain, weights, nbytes in entries:
        row = dict(phase=1 if phase == 1 else 2, shape=f"{k}x{n}", K=k, N=n, batch=batch,
                   dtype=dtype.name, impl=name, calls=calls)
        if name.startswith("pallas:"):
          row["config"] = dataclasses.asdict(weights[0].config)
          row["padded"] = list(weights[0].w.shape)
        if _elapsed() > _BUDGET.value:
          row["skipped"] = "time budget"
        else:
          run_entry(row, chain, weights, bs, x0, None if name == "overhead" else reference,
                    nbytes, calls, repeats)
        rows.append(row)
        status = ("skip" if "skipped" in row else "ERR " if "error" in row
                  else "ok  " if row.get("ok", True) else "BAD ")
        print(f"[{_elapsed():6.1f}s] {k:5d}x{n:<6d} {dtype.name:8s} B={batch} {name:34s} "
              f"{status} " + (f"{row['us_per_call']:8.2f} us/call {row.get('gbps', 0):7.0f} GB/s "
                              f"err={row.get('rel_err', 0):.1e}" if "us_per_call" in row
                              else row.get("error", "")[:160]), flush=True)
    del entries, ws


# ----------------------------------------------------------------------------- report


def summarize(rows: list) -> list[dict]:
  """Per (shape, dtype, B): xla, the table config, the best pallas config, the speedup."""
  groups: dict[tuple, list] = {}
  for r in rows:
    if "us_per_call" in r:
      groups.setdefault((r["shape"], r["dtype"], r["batch"]), []).append(r)
  out = []
  for (shape, dtype, batch), rs in groups.items():
    by = {r["impl"]: r for r in rs}
    pallas = [r for r in rs if r["impl"].startswith("pallas:") and r.get("ok", False)]
    best = min(pallas, key=lambda r: r["us_per_call"]) if pallas else None
    table = next((r for r in rs if r["impl"].startswith("pallas:table")), None)
    entry = dict(shape=shape, dtype=dtype, batch=batch,
                 xla_us=by.get("xla", {}).get("us_per_call"),
                 xla_gbps=by.get("xla", {}).get("gbps"),
                 xla_highest_us=by.get("xla_highest", {}).get("us_per_call"),
                 overhead_us=by.get("overhead", {}).get("us_per_call"),
                 table_us=table and table["us_per_call"], table_gbps=table and table.get("gbps"),
                 best=best and best["impl"], best_us=best and best["us_per_call"],
                 best_gbps=best and best.get("gbps"))
    if entry["xla_us"] and entry["best_us"]:
      entry["speedup_best_vs_xla"] = round(entry["xla_us"] / entry["best_us"], 2)
    out.append(entry)
  return out


def table(summary: list[dict]) -> str:
  def cell(us, gbps):
    return "-" if us is None else f"{us:.2f} ({gbps or 0:.0f})"
  lines = ["us per product (GB/s of weights); overhead = tanh step + dispatch share per call",
           f"{'shape':>10s} {'dtype':>8s} {'B':>2s} {'xla':>16s} {'pallas table':>16s} "
           f"{'best pallas':>16s} {'x':>5s} {'ovh':>5s}  best config"]
  for e in summary:
    lines.append(f"{e['shape']:>10s} {e['dtype']:>8s} {e['batch']:2d} "
                 f"{cell(e['xla_us'], e['xla_gbps']):>16s} "
                 f"{cell(e['table_us'], e['table_gbps']):>16s} "
                 f"{cell(e['best_us'], e['best_gbps']):>16s} "
                 f"{e.get('speedup_best_vs_xla', 0):5.2f} {e['overhead_us'] or 0:5.2f}  "
                 f"{(e['best'] or '-').removeprefix('pallas:')}")
  return "\n".join(lines)


def write(rows, choices, path, done: bool):
  device = jax.devices()[0]
  checks = [r for r in rows if "ok" in r]
  result = dict(
      experiment="matvec_gpu", complete=done,
      device_kind=device.device_kind, platform=jax.default_backend(),
      jax_version=jax.__version__, jaxlib_version=common.jaxlib_version(),
      matmul_precision=str(jax.config.jax_default_matmul_precision),
      implementation=_IMPLEMENTATION.value, calls=_CALLS.value,
      repeats=max(20, _REPEATS.value), tolerance=_TOLERANCE.value,
      table_configs={f"{k}x{n}": dataclasses.asdict(c) for (k, n), c in pm.MATVEC_CONFIGS.items()},
      checks_passed=all(r["ok"] for r in checks),
      failed=[f"{r['shape']} {r['dtype']} B={r['batch']} {r['impl']}" for r in checks
              if not r["ok"]],
      dispatcher=choices, summary=summarize(rows), rows=rows,
      elapsed_s=round(_elapsed(), 1))
  common.write_json_file(path, result)
  return result


def main(argv):
  del argv
  shapes = [parse_shape(s) for s in _SHAPES.value]
  unknown = sorted(set(_PHASE2_CONFIGS.value) - set(CANDIDATES) - {"dot"})
  if unknown:
    raise app.UsageError(f"--configs: unknown {unknown}; choose from {sorted(CANDIDATES)} or dot")
  device = jax.devices()[0]
  print(f"device {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
        f"shapes={shapes} batches={_BATCHES.value} dtypes={_DTYPES.value} "
        f"calls={_CALLS.value}", flush=True)
  path = common.output_path(_OUT.value, "matvec_gpu.json")
  rows: list = []
  choices: dict = {}
  # Phase 1 (xla, overhead, table config) everywhere first; then one alternative at a time.
  phases = [1] + list(_PHASE2_CONFIGS.value) + (["xla_highest"] if _XLA_HIGHEST.value else [])
  for phase in phases:
    for shape in shapes:
      try:
        run_shape(shape, phase, rows, choices)
      except Exception as e:  # pylint: disable=broad-except  (e.g. out of memory for weights)
        rows.append(dict(phase=1 if phase == 1 else 2, shape="x".join(map(str, shape)),
                         impl=str(phase), error=common.error_text(e, 600)))
        traceback.print_exc(limit=3, file=sys.stderr)
      write(rows, choices, path, done=False)
  result = write(rows, choices, path, done=True)
  print(f"\nwrote {path} in {result['elapsed_s']} s; checks "
        + ("all passed" if result["checks_passed"] else f"FAILED: {result['failed']}"))
  print("dispatcher: " + "; ".join(f"{k}: {v[0]}" for k, v in choices.items()))
  print(table(result["summary"]))


if __name__ == "__main__":
  app.run(main)
