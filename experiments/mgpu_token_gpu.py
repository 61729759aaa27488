"""The whole-layer Mosaic GPU kernel (experiments/mgpu_token.py) on the GPU: checked against
the model's own token step, then timed, on the paper config in bfloat16.

For #4's bfloat16 target (the no-mixer model at B = 1 within 2x its weight floor: 0.242 ms on
an H100 whose floor is 0.121 ms with the unembedding, 0.086 ms for the layers alone). The check
runs `make_token_dense` (the engine's state in and out) against `hyena._token_layer` layer by
layer in float32 at HIGHEST with the same bfloat16 weights, at a position where every ring slot
is used; errors are relative to each output's maximum. The timing runs `make_chain`: T kernels
back to back less one, the kernels alone.

  PYTHONPATH=. python experiments/mgpu_token_gpu.py --batches=1,8
  python experiments/mgpu_token_gpu.py --lower_only   (no GPU: lowers the kernel for CUDA)
  python experiments/mgpu_token_gpu.py --tiny         (no GPU: the whole program on a small
      model in Mosaic GPU's interpret mode, one program; its timings mean nothing)
"""

from __future__ import annotations

import json
import os
import time
import traceback

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import mgpu_token as mt

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/mgpu_token.json).")
_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes (<= 8).")
_RINGS = flags.DEFINE_list("rings", ["6"], "TMA ring depths (chunks) to time.")
_VARIANTS = flags.DEFINE_list("variants", ["load", "epilogue"],
                              "Where the short convolution runs: load (out items, from the "
                              "ring) or epilogue (mix items; item_table's conv_epilogue); "
                              "suffixes _rows (only the batch's rows moved: token_kernel's "
                              "rows), _pre (epilogue addends loaded before the product: "
                              "its prefetch), _hoist (table row read before the wait), in "
                              "that order, e.g. epilogue_rows_pre_hoist.")
_PROGRAMS = flags.DEFINE_list("programs", ["0"], "Programs (0: one per SM) to time.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls per entry.")
_TOKENS = flags.DEFINE_integer("tokens", 16, "Kernels per timed chain.")
_LOWER_ONLY = flags.DEFINE_bool("lower_only", False, "Lower the kernel for CUDA and stop.")
_MODEL = flags.DEFINE_bool("model", False, "Also the no-mixer model's whole token loop around "
                           "the kernel (embedding, final norm, unembedding, argmax: #4's "
                           "measure): checked teacher-forced over 4 tokens against "
                           "hyena.token_step, then timed (mgpu_token.make_model_chain).")
_TRACE = flags.DEFINE_bool("trace", False, "Also run 4 traced tokens and record where a phase's "
                           "time goes (mgpu_token.summarise_trace).")
_TINY = flags.DEFINE_bool("tiny", False, "CPU: a small model in interpret mode (CI).")
TINY_MODEL = dict(d_model=64, n_layers=2, d_inner=128)


SUFFIXES = ("rows", "pre", "hoist")


def parse_variant(name: str) -> dict:
  """{epilogue, rows, pre, hoist}: 'load' / 'epilogue', then optionally the SUFFIXES '_rows',
  '_pre', '_hoist' in that order."""
  conv, *rest = name.split("_")
  if (conv not in ("load", "epilogue") or any(r not in SUFFIXES for r in rest)
      or rest != sorted(set(rest), key=SUFFIXES.index)):
    raise ValueError(f"unknown variant {name!r}")
  return {"epilogue": conv == "epilogue", **{r: r in rest for r in SUFFIXES}}


def _marginal_ms(build, args) -> tuple[float, float]:
  """(ms per token, ms of a one-token call): build(T) runs T tokens back to back
  (common.marginal_ms with T = --tokens and T = 1)."""
  from experiments import common  # pylint: disable=g-import-not-at-top
  many, one = build(_TOKENS.value), build(1)
  per, _, one_ms = common.marginal_ms(lambda: many(*args), lambda: one(*args), _TOKENS.value,
                                      _REPEATS.value)
  return per, one_ms


def _model_chain(g, params, cfg, spec, programs, ring, tokens, rows, tiny, feed=False):
  return mt.make_model_chain(g, params, cfg, programs, ring, tokens, spec["epilogue"], tiny,
                             rows, spec["pre"], spec["hoist"], feed)


def _chain(g, spec, programs, ring, tokens, rows, tiny, trace=False):
  return mt.make_chain(g, programs, ring, tokens, spec["epilogue"], tiny, rows, spec["pre"],
                       trace, spec["hoist"])


def _reference(params, cfg):
  from flash_lcsm_jax.models import hyena  # pylint: disable=g-import-not-at-top
  from flash_lcsm_jax.ops import pallas_layer as pal  # pylint: disable=g-import-not-at-top
  layers = hyena.split_layers(params)

  @jax.jit
  def run(x, acc, conv, red):
    us, convs = [], []
    with jax.default_matmul_precision("highest"):
      for m, lp in enumerate(layers):
        x, u, c = pal.reference_layer(cfg, lp, x, acc[m], conv[m], red[m])
        us.append(u)
        convs.append(c)
    return x, jnp.stack(us), jnp.stack(convs)
  return run


def main(argv):
  del argv
  from experiments import common  # pylint: disable=g-import-not-at-top
  from flash_lcsm_jax.ops import pallas_layer as pal  # pylint: disable=g-import-not-at-top
  tiny = _TINY.value
  cfg = (common.model_config("cpu", **TINY_MODEL, dtype="bfloat16") if tiny
         else common.model_config("gpu", dtype="bfloat16"))
  g = mt.Geometry(cfg.n_layers, cfg.d_model, cfg.d_inner, cfg.short_filter_order)
  specs = {v: parse_variant(v) for v in _VARIANTS.value}
  tables = {v: jnp.asarray(mt.item_table(g, spec["epilogue"]))
            for v, spec in specs.items()}
  if _LOWER_ONLY.value:
    n = g.layers * g.per_layer
    for v, table in tables.items():
      run = _chain(g, specs[v], 132, 6, 2, 1 if specs[v]["rows"] else mt.NB, False)
      text = run.trace(jnp.zeros((n, mt.ROWS, g.kp), jnp.bfloat16), table,
                       jnp.zeros((mt.NB, g.param_cols)),
                       jnp.zeros((mt.NB, g.regions()["COLS"]))).lower(
                           lowering_platforms=("cuda",)).as_text()
      print(f"{v}: lowered for CUDA ({len(text)} characters)")
    return
  dev = jax.devices()[0]
  sms = 1 if tiny else getattr(dev, "core_count", None) or 132
  env = common.environment("cpu" if tiny else "gpu")
  bw = env["copy_bandwidth_GBps"] * 1e9
  nbytes = pal.weight_bytes_per_token(cfg)
  params = common.random_params(cfg)
  items, prm0 = mt.prepare(params, g)
  reference = _reference(params, cfg)
  records = []
  out = {"experiment": "mgpu_token", "tiny": tiny, "environment": env, "model": cfg.to_dict(),
         "weight_bytes": nbytes, "item_bytes": int(items.size * 2),
         "floor_ms": nbytes["total"] / bw * 1e3, "layers_floor_ms": nbytes["layers"] / bw * 1e3,
         "records": records}
  path = _OUT.value or os.path.join(os.environ.get("OUT", "."), "mgpu_token.json")
  M, D, K = cfg.n_layers, cfg.d_model, cfg.short_filter_order
  for batch in (int(b) for b in _BATCHES.value):
    rng = np.random.default_rng(batch)
    x = jnp.asarray(rng.standard_normal((batch, D)), jnp.float32)
    acc = jnp.asarray(rng.standard_normal((M, batch, D)), jnp.float32)
    conv = jnp.asarray(rng.standard_normal((M, batch, K - 1, 3 * D)), jnp.float32)
    red = jnp.asarray(rng.standard_normal((M, D)), jnp.float32)
    prm = mt.set_red(prm0, red, g)
    want = [np.asarray(a) for a in reference(x, acc, conv, red)]
    combos = [(v, int(r), int(n) or sms) for v in _VARIANTS.value for r in _RINGS.value
              for n in _PROGRAMS.value]
    for variant, ring, progs in combos:
      rec = {"variant": variant, "batch": batch, "ring": ring, "programs": progs,
             "elapsed_s": {}}  # seconds from the variant's start to the end of each stage
      records.append(rec)
      start = time.perf_counter()

      def stage_done(name):  # the record so far on disk: a run cut short keeps what it has
        rec["elapsed_s"][name] = round(time.perf_counter() - start, 2)
        common.write_json_file(path, out)

      spec, table = specs[variant], tables[variant]
      rows = batch if spec["rows"] else mt.NB
      try:
        t0 = time.perf_counter()
        got = mt.make_token_dense(g, progs, ring, tiny, spec["epilogue"], rows, spec["pre"],
                                  spec["hoist"])(items, table, prm, x, acc, conv, position=7)
        got = [np.asarray(a) for a in got]
        rec["first_call_s"] = time.perf_counter() - t0
        rec["rel_error"] = {name: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                            for name, a, b in zip(("x", "u", "conv_state"), got, want)}
        r = g.regions()  # x in X0, the rest zero
        acts0 = jnp.zeros((mt.NB, r["COLS"]), jnp.float32).at[:batch, r["X0"]:r["X0"] + D].set(x)
        stage_done("check")
        per, med1 = _marginal_ms(lambda t: _chain(g, spec, progs, ring, t, rows, tiny),
                                 (items, table, prm, acts0))
        rec.update(ms_per_token=per, ms_one_call=med1, tokens=_TOKENS.value,
                   x_layers_floor=per / out["layers_floor_ms"],
                   us_per_phase=per * 1e3 / (4 * M))
        stage_done("timing")
        if _MODEL.value:
          tok = jnp.asarray(rng.integers(0, cfg.vocab_size, (4, batch)), jnp.int32)
          want_logits = np.asarray(mt.reference_model_chain(params, cfg, acc, red, tok))
          _, logits = _model_chain(g, params, cfg, spec, progs, ring, 4, rows, tiny,
                                   feed=True)(items, table, prm, acc, tok)
          rec["model_logits_rel_error"] = float(np.max(np.abs(np.asarray(logits) - want_logits))
                                                / np.max(np.abs(want_logits)))
          m_per, _ = _marginal_ms(
              lambda t: _model_chain(g, params, cfg, spec, progs, ring, t, rows, tiny),
              (items, table, prm, acc, tok[0]))
          rec.update(model_ms_per_token=m_per, model_x_floor=m_per / out["floor_ms"])
          stage_done("model")
        if _TRACE.value and not tiny:
          traced = _chain(g, spec, progs, ring, 4, rows, tiny, trace=True)
          stamps = np.asarray(traced(items, table, prm, acts0)[1])
          rec["trace"] = mt.summarise_trace(stamps, np.asarray(table), progs)
          rec["trace"]["clock_GHz_implied"] = (
              rec["trace"]["program_span_cycles_median"] / (per * 1e6))
      except Exception as err:  # pylint: disable=broad-except
        rec["error"] = common.error_text(err, 1500)
        rec["traceback_tail"] = traceback.format_exc()[-2500:]
      print(json.dumps(rec), flush=True)
      stage_done("all")
  print("wrote", path)


if __name__ == "__main__":
  app.run(main)
