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
The reference (`reference_chain`) runs the same items in order with jnp at HIGHEST.

  PYTHONPATH=. python experiments/mgpu_chain_gpu.py --batches=1,8
  python experiments/mgpu_chain_gpu.py --lower_only   (no GPU: lowers every variant for CUDA)

Writes JSON (device, jax version, measured copy bandwidth, per variant: max relative error vs
the reference, median ms per token, the weight floor) to --out (default $OUT/mgpu_chain.json).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/mgpu_chain.json).")
_BATCHES = flags.DEFINE_list("batches", ["1", "8"], "Batch sizes (<= 8).")
_VARIANTS = flags.DEFINE_list("variants", ["chain", "nowait"],
                              "chain (the kernel), nowait (no waiting: the stream alone, wrong "
                              "results), ring<R> / progs<G> suffixes: e.g. chain_ring8.")
_LAYERS = flags.DEFINE_integer("layers", 18, "M.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per entry.")
_LOWER_ONLY = flags.DEFINE_bool("lower_only", False, "Lower every variant for CUDA and stop.")

ROWS, KP, CHUNK = 64, 896, 224            # item rows, padded K, ring chunk (K = 4 chunks)
N_CHUNKS = KP // CHUNK
NB = 8                                    # batch columns of the product (B <= 8, zero padded)
ITEMS = {"mix": 41, "out": 14, "up": 27, "down": 28}
START = {"mix": 0, "out": 41, "up": 55, "down": 82}
PER_LAYER = 110
# Column regions of the activation buffer (each a multiple of 64).
Z, X0, H, Y, U, P0, P1 = 0, 896, 1792, 4416, 5312, 7104, 8000
COLS = 8896
_TRANSFORMS = (plgpu.TilingTransform((8, 32)), plgpu.SwizzleTransform(64))


def item_table(layers: int) -> np.ndarray:
  """(layers * 110, 5) int32: wait count, three input offsets (Z when unused), output offset."""
  rows = []
  for layer in range(layers):
    base = layer * PER_LAYER
    for t in range(ITEMS["mix"]):
      rows.append((base + START["mix"], X0, P0, P1, H + 64 * t))
    for t in range(ITEMS["out"]):
      rows.append((base + START["out"], H, H + 1728, Z, Y + 64 * t))
    for t in range(ITEMS["up"]):
      rows.append((base + START["up"], Y, Z, Z, U + 64 * t))
    for t in range(ITEMS["down"]):
      half = t % 2
      rows.append((base + START["down"], U + KP * half, Z, Z, (P0, P1)[half] + 64 * (t // 2)))
  return np.asarray(rows, np.int32)


def random_items(layers: int, seed: int = 0) -> np.ndarray:
  """The weights as items, (layers * 110, 64, 896) bfloat16 values (float32 array): the real
  shapes zero-padded (mix rows 2592 -> 2624, D = 864 -> 896 in rows and columns, down's two
  column halves 864 -> 896 each), entries ~ N(0, 1 / fan_in)."""
  rng = np.random.default_rng(seed)
  items = np.zeros((layers * PER_LAYER, ROWS, KP), np.float32)
  def tiles(n_out, n_in, count):
    w = np.zeros((count * ROWS, KP), np.float32)
    w[:n_out, :n_in] = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
    return w.reshape(count, ROWS, KP)
  for layer in range(layers):
    b = layer * PER_LAYER
    items[b:b + 41] = tiles(2592, 864, 41)
    items[b + 41:b + 55] = tiles(864, 864, 14)
    items[b + 55:b + 82] = tiles(1728, 864, 27)
    down = np.zeros((896, 2 * KP), np.float32)
    down[:864, :864] = rng.standard_normal((864, 864)) / np.sqrt(1728)
    down[:864, KP:KP + 864] = rng.standard_normal((864, 864)) / np.sqrt(1728)
    halves = down.reshape(14, ROWS, 2, KP).transpose(0, 2, 1, 3).reshape(28, ROWS, KP)
    items[b + 82:b + 110] = halves
  return items.astype(jnp.bfloat16).astype(np.float32)


def reference_chain(items: np.ndarray, table: np.ndarray, acts: np.ndarray) -> np.ndarray:
  """The items in order, float64: inputs summed in float32, rounded to bfloat16 (as the kernel
  stages them), products exact."""
  a = np.array(acts, np.float32)
  for g in range(items.shape[0]):
    _, i0, i1, i2, out = table[g]
    x = a[:, i0:i0 + KP] + a[:, i1:i1 + KP] + a[:, i2:i2 + KP]
    x = x.astype(jnp.bfloat16).astype(np.float64)  # ml_dtypes' bfloat16: round to nearest even
    a[:, out:out + ROWS] = (x @ items[g].astype(np.float64).T).astype(np.float32)
  return a


# ----------------------------------------------------------------------------- the kernel


def _inline(arg_types):
  return plgpu.inline_mgpu(arg_types=arg_types)


def _store_transposed(ref, acc):
  """acc (64, 8) in the WGMMA layout -> ref (8, 64) in GMEM: one scalar store per element."""
  from jax._src.lib.mlir.dialects import memref as memref_dialect  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(), plgpu.Layout.WGMMA))
  def store(ctx, ref, acc):
    del ctx
    acc.foreach(lambda v, idx: memref_dialect.store(v, ref, [idx[1], idx[0]]))

  store(ref, acc)


def _signal(counter_ref):
  """All threads' stores, then one release add of 1 at GPU scope (Mosaic's semaphore signal)."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(),))
  def signal(ctx, ref):
    del ctx
    mgpu_utils.warpgroup_barrier()
    mgpu_utils.SemaphoreRef(mgpu_utils.memref_ptr(ref)).signal(1, memory_scope="gpu")

  signal(counter_ref)


def _wait(counter_ref, target):
  """One thread polls (relaxed loads) until counter >= target, then acquires; all wait."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(), plgpu.Layout.WG_SPLAT))
  def wait(ctx, ref, value):
    del ctx
    mgpu_utils.SemaphoreRef(mgpu_utils.memref_ptr(ref)).wait(
        value.registers.item(), decrement=False, memory_scope="gpu")

  wait(counter_ref, target)


def chain_kernel(layers: int, programs: int, ring: int, wait: bool = True):
  """pallas_call(items (n, 64, 896) bf16, table (n, 5) i32, acts (8, COLS) f32, counter (1,) i32)
  -> (acts, counter), both updated in place (aliased)."""
  n_items = layers * PER_LAYER
  per_program = -(-n_items // programs)
  if ring < N_CHUNKS + 1:
    raise ValueError(f"ring must exceed {N_CHUNKS} chunks (one item), got {ring}")
  load_layout = plgpu.Layout.SMEM_GMEM_COPY((NB, KP), jnp.bfloat16, swizzle=64)

  def fetch(items_ref, ring_ref, full_ref, p, q):
    """Chunk q of program p's stream into its ring slot (nothing past the last item)."""
    g = p + (q // N_CHUNKS) * programs
    @pl.when(g < n_items)
    def _():
      c = q % N_CHUNKS
      slot = q % ring
      plgpu.copy_gmem_to_smem(items_ref.at[g, :, pl.ds(c * CHUNK, CHUNK)], ring_ref.at[slot],
                              full_ref.at[slot])

  def body(items_ref, table_ref, acts_in, counter_in, acts_ref, counter_ref,
           ring_ref, x_smem, full_ref):
    del acts_in, counter_in  # aliased to the outputs
    p = pl.program_id(0)
    for q in range(ring):
      fetch(items_ref, ring_ref, full_ref, p, q)

    def step(i, carry):
      g = p + i * programs
      @pl.when(g < n_items)
      def _():
        row = table_ref.at[g]
        target, i0, i1, i2, out = (row[j] for j in range(5))
        if wait:
          _wait(counter_ref, target)
        x = plgpu.load(acts_ref.at[:, pl.ds(i0, KP)], (), layout=load_layout, optimized=False)
        x = x + plgpu.load(acts_ref.at[:, pl.ds(i1, KP)], (), layout=load_layout,
                           optimized=False)
        x = x + plgpu.load(acts_ref.at[:, pl.ds(i2, KP)], (), layout=load_layout,
                           optimized=False)
        x_smem[...] = x.astype(jnp.bfloat16)
        plgpu.commit_smem()

        def product(acc_ref):
          for c in range(N_CHUNKS):
            slot = (i * N_CHUNKS + c) % ring
            plgpu.barrier_wait(full_ref.at[slot])
            xt = plgpu.transpose_ref(x_smem.at[:, pl.ds(c * CHUNK, CHUNK)], (1, 0))
            plgpu.wgmma(acc_ref, ring_ref.at[slot], xt)
          return acc_ref[...]

        acc = pl.run_scoped(product, plgpu.ACC((ROWS, NB), jnp.float32))
        for c in range(N_CHUNKS):  # the slots just read are free: refill them
          fetch(items_ref, ring_ref, full_ref, p, i * N_CHUNKS + c + ring)
        _store_transposed(acts_ref.at[:, pl.ds(out, ROWS)], acc)
        _signal(counter_ref)
      return carry

    jax.lax.fori_loop(0, per_program, step, 0)

  gmem = plgpu.BlockSpec(memory_space=plgpu.GMEM)
  return pl.pallas_call(
      body,
      grid=(programs,),
      in_specs=[gmem, gmem, gmem, gmem],
      out_specs=[gmem, gmem],
      out_shape=[jax.ShapeDtypeStruct((NB, COLS), jnp.float32),
                 jax.ShapeDtypeStruct((1,), jnp.int32)],
      input_output_aliases={2: 0, 3: 1},
      scratch_shapes=[
          plgpu.SMEM((ring, ROWS, CHUNK), jnp.bfloat16, transforms=_TRANSFORMS),
          plgpu.SMEM((NB, KP), jnp.bfloat16, transforms=_TRANSFORMS),
          plgpu.Barrier(num_arrivals=1, num_barriers=ring),
      ],
      compiler_params=plgpu.CompilerParams(),
  )


def parse_variant(name: str, sms: int) -> dict:
  parts = name.split("_")
  spec = {"wait": parts[0] != "nowait", "ring": 6, "programs": sms}
  if parts[0] not in ("chain", "nowait"):
    raise ValueError(f"unknown variant {name!r}")
  for part in parts[1:]:
    if part.startswith("ring"):
      spec["ring"] = int(part[4:])
    elif part.startswith("progs"):
      spec["programs"] = int(part[5:])
    else:
      raise ValueError(f"unknown variant part {part!r} in {name!r}")
  return spec


def make_runner(layers: int, spec: dict):
  kernel = chain_kernel(layers, spec["programs"], spec["ring"], spec["wait"])

  @jax.jit
  def run(items, table, acts0):
    acts, _ = kernel(items, table, acts0, jnp.zeros((1,), jnp.int32))
    return acts
  return run


def _median_ms(fn, repeats):
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times) * 1e3, min(times) * 1e3


def main(argv):
  del argv
  layers = _LAYERS.value
  table = item_table(layers)
  if _LOWER_ONLY.value:
    items = jnp.zeros((layers * PER_LAYER, ROWS, KP), jnp.bfloat16)
    acts = jnp.zeros((NB, COLS), jnp.float32)
    for name in _VARIANTS.value:
      spec = parse_variant(name, 132)
      run = make_runner(layers, spec)
      text = run.trace(items, jnp.asarray(table), acts).lower(
          lowering_platforms=("cuda",)).as_text()
      print(f"{name}: lowered for CUDA ({len(text)} characters)", spec)
    return

  from experiments import common  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  sms = getattr(dev, "core_count", None) or 132
  env = common.environment("gpu")
  items_f32 = random_items(layers)
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
  for batch in (int(b) for b in _BATCHES.value):
    rng = np.random.default_rng(batch)
    acts0 = np.zeros((NB, COLS), np.float32)
    acts0[:batch, X0:X0 + 864] = rng.standard_normal((batch, 864))
    want = reference_chain(items_f32, table, acts0)
    for name in _VARIANTS.value:
      spec = parse_variant(name, sms)
      rec = {"variant": name, "batch": batch, **spec}
      try:
        run = make_runner(layers, spec)
        t0 = time.perf_counter()
        got = np.asarray(run(items, jnp.asarray(table), jnp.asarray(acts0)))
        rec["first_call_s"] = time.perf_counter() - t0
        sl = slice(H, COLS)
        rec["max_rel_error"] = float(np.max(np.abs(got[:batch, sl] - want[:batch, sl]))
                                     / np.max(np.abs(want[:batch, sl])))
        med, low = _median_ms(lambda: run(items, jnp.asarray(table), jnp.asarray(acts0)),
                              _REPEATS.value)
        rec.update(ms_per_token=med, min_ms=low, us_per_phase=med * 1e3 / (4 * layers))
      except Exception as err:  # pylint: disable=broad-except
        rec["error"] = common.error_text(err, 1500)
      print(json.dumps(rec), flush=True)
      records.append(rec)
      common.write_json_file(path, out)  # after every record: a hang later keeps these
  print("wrote", path)


if __name__ == "__main__":
  app.run(main)
