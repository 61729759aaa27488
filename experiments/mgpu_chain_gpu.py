"""Can a Mosaic GPU kernel run the dense path's 72 dependent phases faster than the Triton one?

The lead for #4's bfloat16 target (the no-mixer model at <= 2x its weight floor at B = 1) and for
#3's B = 8 ratio. The engine's persistent dense path (ops/pallas_layer, Triton lowering) spends
~4.5 us per phase at bfloat16 B = 1 (0.321 ms / 72 phases) against ~1 us of weight bytes per
phase: each program loads its weights into registers, so a phase's weight stream cannot start
before that program's previous phase is done, and the products at B = 8 run on the CUDA cores.
This kernel tests the other design, on the paper shapes, with the layer's elementwise work left
out (it is cheap; the chain and the stream are the question):

- Work items. Every layer's weights are cut into (64, 896) bfloat16 tiles ("items", 896 = 864
  padded to 7 x 128): mix 41 (2592 rows), out 14, up 27, down 2 x 14 (its 1728 columns split in
  two halves whose partial sums the next consumer adds: split-K with a deterministic sum, no
  atomics on data). 110 items per layer, 1980 per token, dealt round robin over G programs (one
  per SM): program p owns items p, p + G, p + 2G, ... of the whole token.
- The weight stream never waits for activations. Each program streams ITS items' tiles with TMA
  into a ring of R (64, 224) shared-memory slots, R - 4 chunks ahead of the item it computes;
  weights do not depend on the activations, so the stream runs ahead across phases while the
  program waits for inputs.
- The chain. One global counter of finished items. An item of phase k waits until the counter
  reaches the number of items in phases before k (all of them done: they are the only ones
  that can be), reads its (8, 896) float32 inputs (one to three slices added, as the layer's
  consumers would), stages them as bfloat16 in shared memory (what hyena.dense does to its
  input) and multiplies on the tensor cores: wgmma, M = 64 weight rows, N = 8 batch columns (B
  <= 8 padded), K = 896 in four chunks. It writes its (8, 64) float32 outputs and adds 1 to the
  counter (release). Programs that own no item of a phase do not wait at all.

Inputs of item types (activations are one (8, COLS) float32 buffer; Z is a zero region):
  mix  (64 of 2624 rows):  X0 + P0 + P1      (the previous layer's two down halves; zeros first)
  out  (64 of 896 rows):   H[:, 0:896] + H[:, 1728:2624]
  up   (64 of 1728 rows):  Y
  down (64 of 896 rows, half h): U[:, 896 h : 896 (h + 1)]
The reference (`reference_chain`) runs the same items in order in numpy, products in float64;
the same with float32 products gives the chain's own rounding noise (reference_noise), and a
one-layer run (check_1layer) is checked where little can cascade.

  PYTHONPATH=. python experiments/mgpu_chain_gpu.py --batches=1,8
  python experiments/mgpu_chain_gpu.py --lower_only   (no GPU: lowers every variant for CUDA)

Writes JSON (device, jax version, measured copy bandwidth, per variant: max relative error vs
the reference, median ms per token, the weight floor) to --out (default $OUT/mgpu_chain.json).
"""

from __future__ import annotations

import functools
import json
import os
import time
import traceback

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import mgpu_chain as mc

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/mgpu_chain.json).")
_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes (<= 8).")
_VARIANTS = flags.DEFINE_list("variants", ["chain", "nowait"],
                              "chain (the kernel), nowait (no waiting: the stream alone, wrong "
                              "results), suffixes ring<R> / progs<G> / ln (layer norms) / "
                              "xload<N> (wider out inputs) / noload (zeros staged) / "
                              "rows (only the batch's rows loaded and stored): e.g. "
                              "chain_ln_xload9.")
_LAYERS = flags.DEFINE_integer("layers", 18, "M.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per entry.")
_TOKENS = flags.DEFINE_integer("tokens", 16, "Tokens per timed chain (kernels back to back).")
_LOWER_ONLY = flags.DEFINE_bool("lower_only", False, "Lower every variant for CUDA and stop.")


def main(argv):
  del argv
  layers = _LAYERS.value
  table = mc.item_table(layers)
  if _LOWER_ONLY.value:
    items = jnp.zeros((layers * mc.PER_LAYER, mc.ROWS, mc.KP), jnp.bfloat16)
    acts = jnp.zeros((mc.NB, mc.COLS), jnp.float32)
    for name in _VARIANTS.value:
      spec = mc.parse_variant(name, 132)
      run = mc.make_runner(layers, spec, batch=1)
      text = run.trace(items, jnp.asarray(table), acts).lower(
          lowering_platforms=("cuda",)).as_text()
      print(f"{name}: lowered for CUDA ({len(text)} characters)", spec)
    return

  from experiments import common  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  sms = getattr(dev, "core_count", None) or 132
  env = common.environment("gpu")
  items_f32 = mc.random_items(layers)
  items = jnp.asarray(items_f32, jnp.bfloat16)
  weight_bytes = items.size * 2
  real_bytes = layers * 2 * (3 * 864 * 864 + 864 * 864 + 2 * 864 * 1728)
  bw = env["copy_bandwidth_GBps"] * 1e9
  records = []
  out = {"experiment": "mgpu_chain", "environment": env, "layers": layers,
         "item_weight_bytes": weight_bytes, "real_weight_bytes": real_bytes,
         "floor_ms_items": weight_bytes / bw * 1e3, "floor_ms_real": real_bytes / bw * 1e3,
         "records": records}
  path = _OUT.value or os.path.join(os.environ.get("OUT", "."), "mgpu_chain.json")
  sl = slice(mc.H, mc.COLS)
  def rel(got, want, batch):
    return float(np.max(np.abs(got[:batch, sl] - want[:batch, sl]))
                 / np.max(np.abs(want[:batch, sl])))
  one = mc.PER_LAYER
  for batch in (int(b) for b in _BATCHES.value):
    rng = np.random.default_rng(batch)
    acts0 = np.zeros((mc.NB, mc.COLS), np.float32)
    acts0[:batch, mc.X0:mc.X0 + 864] = rng.standard_normal((batch, 864))
    refs = {}
    def references(ln):  # (want, noise, want for one layer, its noise), once per ln setting
      if ln not in refs:
        ref = functools.partial(mc.reference_chain, acts=acts0, ln=ln)
        want, want1 = ref(items_f32, table), ref(items_f32[:one], table[:one])
        refs[ln] = (want, rel(ref(items_f32, table, product_dtype=np.float32), want, batch),
                    want1, rel(ref(items_f32[:one], table[:one], product_dtype=np.float32),
                               want1, batch))
      return refs[ln]
    table_d, acts_d = jnp.asarray(table), jnp.asarray(acts0)
    for name in _VARIANTS.value:
      spec = mc.parse_variant(name, sms)
      want, noise, want1, noise1 = references(spec["ln"])
      rec = {"variant": name, "batch": batch, **spec, "reference_noise": noise,
             "reference_noise_1layer": noise1}
      try:
        run1 = mc.make_runner(1, spec, batch=batch)
        rec["check_1layer"] = rel(np.asarray(run1(items[:one], table_d[:one], acts_d)), want1,
                                  batch)
        run = mc.make_runner(layers, spec, batch=batch)
        t0 = time.perf_counter()
        got = np.asarray(run(items, table_d, acts_d))
        rec["first_call_s"] = time.perf_counter() - t0
        rec["max_rel_error"] = rel(got, want, batch)
        timed = mc.make_runner(layers, spec, _TOKENS.value, batch=batch)
        tokens = _TOKENS.value
        # The call's fixed cost (dispatch, the refs' copies of items and acts) comes out of
        # the difference with a one-token call.
        per, med, med1 = common.marginal_ms(lambda: timed(items, table_d, acts_d),
                                            lambda: run(items, table_d, acts_d), tokens,
                                            _REPEATS.value)
        rec.update(ms_per_token=med / tokens, ms_one_token_call=med1,
                   ms_per_token_marginal=per, us_per_phase=per * 1e3 / (4 * layers),
                   tokens=tokens)
      except Exception as err:  # pylint: disable=broad-except
        rec["error"] = common.error_text(err, 1500)
        rec["traceback_tail"] = traceback.format_exc()[-2500:]
      print(json.dumps(rec), flush=True)
      records.append(rec)
      common.write_json_file(path, out)  # after every record: a hang later keeps these
  print("wrote", path)


if __name__ == "__main__":
  app.run(main)
