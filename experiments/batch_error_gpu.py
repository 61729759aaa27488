"""Where flash's error at B > 1 comes from (GPU probe, paper config).

  PYTHONPATH=. python experiments/batch_error_gpu.py --out=$OUT/batch_error.json

Session 17 (H100, L = 4096, P = 777, B = 8): flash/hybrid 7.5e-5 against the parallel forward,
lazy and eager 4.6e-6; at B = 1 (session 7) flash gave 4.6e-6 and at B = 2 (session 12) 2.8-3.4e-5
with either dense path. On the CPU (interpret mode) flash and lazy agree at every B. This runs,
on one model and one set of B sequences, teacher-forced decodes under several tile tables and
records the relative error against the forward per row and per position bucket, plus row 0
decoded alone (B = 1), so a batch-dependent part of the GPU flash path shows up by name.
"""

from __future__ import annotations

import dataclasses
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import Generator, forward
from flash_lcsm_jax.ops import calibration
from flash_lcsm_jax.ops import pallas_inplace
from flash_lcsm_jax.ops import tau as tau_ops
from experiments import common

_OUT = flags.DEFINE_string("out", "", "JSON output path.")
_L = flags.DEFINE_integer("length", 4096, "Sequence length.")
_P = flags.DEFINE_integer("prompt", 777, "Prompt length.")
_B = flags.DEFINE_integer("batch", 8, "Rows.")
_VARIANTS = flags.DEFINE_list(
    "variants", ["lazy", "device", "device_row0", "fft", "xla_small", "no_pallas", "no_dot"],
    "lazy | device (the device's hybrid table) | device_row0 (row 0 alone) | fft (every level) "
    "| xla_small (the device table with its Pallas and dot levels on XLA's direct tile) | "
    "no_pallas / no_dot (only the Pallas / only the dot levels moved there) | pallas_at=Q1+Q2 "
    "(pallas_inplace kept at those levels only) | tile_only (pallas_inplace tiles without the "
    "fused step) | fused_all (the fused step kernel at every pallas_inplace level, with session "
    "18's fix for the race on position t+1) | cb32 (the device table with every in-place "
    "level on 32-channel blocks, which divide D = 864: no masked channel block; run it last, "
    "it changes the module's configs).")
_TINY = flags.DEFINE_bool("tiny", False, "CPU smoke run on a tiny model.")
_BUCKETS = 8


def relative(a, b, axes) -> np.ndarray:
  return np.asarray(jnp.linalg.norm(a - b, axis=axes) / jnp.linalg.norm(b, axis=axes))


def main(argv):
  del argv
  jax.config.update("jax_default_matmul_precision", "highest")
  cfg = common.model_config("cpu" if _TINY.value else "gpu")
  params = common.random_params(cfg)
  L, P, B = min(_L.value, cfg.l_max), _P.value, _B.value
  device_table = calibration.table_for(B)
  # The in-place tile kernel without the fused step (the engine then stores u_t and reads the
  # next acc with XLA ops around the tile kernel).
  tau_ops.register(dataclasses.replace(tau_ops.get("pallas_inplace"), name="pallas_tile_only",
                                       apply_step=None))
  # The fused step at every level, not only at pallas_inplace.FUSED_STEP_LEVELS.
  tau_ops.register(dataclasses.replace(
      tau_ops.get("pallas_inplace"), name="pallas_fused_all",
      apply_step=lambda taps, buf, u, t, level, offset=0: pallas_inplace.flash_step(
          taps, buf, u, t, level, offset=offset)))
  def moved(names):
    return {q: ("direct" if n in names else n) for q, n in device_table.items()}
  tables = {"device": device_table, "device_row0": device_table, "fft": None,
            "xla_small": moved(("pallas_inplace", "pallas", "direct_dot")),
            "no_pallas": moved(("pallas_inplace", "pallas")), "no_dot": moved(("direct_dot",)),
            "lazy": None,
            "tile_only": {q: ("pallas_tile_only" if n == "pallas_inplace" else n)
                          for q, n in device_table.items()},
            "fused_all": {q: ("pallas_fused_all" if n == "pallas_inplace" else n)
                          for q, n in device_table.items()}}
  tables["cb32"] = device_table
  for variant in _VARIANTS.value:
    if variant.startswith("pallas_at="):
      keep = {int(q) for q in variant.split("=")[1].split("+")}
      tables[variant] = {q: ("direct" if n == "pallas_inplace" and q not in keep else n)
                         for q, n in device_table.items()}
  tokens = jax.random.randint(jax.random.PRNGKey(1), (B, L), 0, cfg.vocab_size)
  positions = np.arange(P, L)  # the generated positions only (prefill is the forward itself)
  gen = Generator(params, cfg)
  ref = forward(params, cfg, tokens, filters=gen.filters(L), positions=positions)
  results = common.environment("gpu" if not _TINY.value else "cpu", rates=False)
  results = {"experiment": "batch_error_gpu", "environment": results,
             "config": dict(L=L, P=P, B=B, matmul_precision="highest",
                            tables={k: v for k, v in tables.items() if v}), "records": []}
  out = common.output_path(_OUT.value, "batch_error.json")
  buckets = np.array_split(np.arange(len(positions)), _BUCKETS)
  for variant in _VARIANTS.value:
    t0 = time.perf_counter()
    method = "lazy" if variant == "lazy" else "flash"
    if variant not in tables:
      raise ValueError(f"unknown variant {variant!r}")
    table = tables[variant]
    rows = tokens[:1] if variant == "device_row0" else tokens
    if variant == "cb32":
      for q, c in pallas_inplace.INPLACE_CONFIGS.items():
        pallas_inplace.INPLACE_CONFIGS[q] = dataclasses.replace(c, channel_block=32)
    g = Generator(params, cfg, hybrid_table=table)
    lg = g.decode_logits(rows, P, method=method, tau="fft" if variant == "fft" else "hybrid",
                         positions=positions)
    want = ref[:rows.shape[0]]
    rec = dict(variant=variant, method=method, rows=int(rows.shape[0]),
               rel_error=float(relative(lg, want, None)),
               rel_error_by_row=relative(lg, want, (1, 2)).tolist(),
               rel_error_by_bucket=[float(relative(lg[:, b], want[:, b], None)) for b in buckets],
               bucket_first_positions=[int(positions[b[0]]) for b in buckets],
               seconds=time.perf_counter() - t0)
    print(variant, {k: v for k, v in rec.items() if k != "variant"}, flush=True)
    results["records"].append(rec)
    common.write_json_file(out, results)
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
