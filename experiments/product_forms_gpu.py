"""How fast each way of forming the batched products streams the weights at B = 4 / 8 (no GPU
needed to check it: --interpret runs the kernels as XLA ops).

The persistent dense path's "tile" order (ops/pallas_layer/, the engine's float32 B = 4 / 8
path) forms out[b, r] = sum_k x[b, k] w[r, k] as (B, rows, chunk) broadcasts accumulated over
Python-unrolled column chunks ("bcast" below). Its partial sums take most of the registers, so
the next chunk's weights cannot be in flight while a chunk is multiplied: each program waits
for one weight tile after another (session 10: ~9 GB/s per SM, a third of what an SM can
stream). "dot" forms the same sums with a float32 dot (FMA, exact: no TF32) per chunk inside a
fori_loop; Triton's software pipeliner then copies the next `stages - 1` chunks' tiles into
shared memory asynchronously (cp.async) while the current chunk is multiplied, and the partial
sums are only (B, rows) per group.

"rows_t" (session 20's lead, experiments/NOTES.md) takes the activations transposed, (n_in, B)
with the batch contiguous, and loops over the program's weight rows in Python: each row is a 2-D
(chunk, B) product in the activation tile's own register layout (a thread holds a few batch
values of one column), so the activation tile stays in registers across the rows and a weight
is loaded once per few FMAs; the weight column is loaded straight into that layout by integer
indices (a broadcast from 1-D would go through shared memory). Each row's (chunk, B) partial
sums are reduced over the chunk once, at the end. "rows_g" is the same product with the
activations kept (B, n_in) as the engine keeps them, gathered into the (chunk, B) tile by integer
indices (lanes still read consecutive columns): whether the form needs a new buffer layout.

Each kernel here is one phase of the dense path repeated over M layers WITHOUT grid barriers:
program p streams rows [p * rows, (p + 1) * rows) of every layer's (groups, n_out, n_in) weights
against that layer's (B, n_in) activations. Its time is the form's streaming bound for that
phase (the persistent kernel adds its barriers on top). Shapes: the paper config's mix (3 groups
of 864 x 864), out (864 x 864), up (1728 x 864), down (864 x 1728), 108 programs each, as
persistent_config gives on 132 SMs.

  PYTHONPATH=. python experiments/product_forms_gpu.py --batches=8 --forms=bcast,rows_t,dot3
  PYTHONPATH=. python experiments/product_forms_gpu.py --ptx --batches=8 --forms=bcast,rows_t
      (no GPU: registers, spills and static PTX counts; needs pip triton, see ptx_stats.py)

Writes JSON (device, jax version, per phase / form / batch: relative error against an einsum at
HIGHEST, median and min microseconds per call, GB/s of weights) to --out (default
$OUT/product_forms.json).
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

from flash_lcsm_jax.ops import pallas_direct
from flash_lcsm_jax.ops.pallas_inplace import _load  # pylint: disable=protected-access
from jax.experimental import pallas as pl

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/product_forms.json).")
_BATCHES = flags.DEFINE_list("batches", ["8"], "Batch sizes.")
_FORMS = flags.DEFINE_list("forms", ["bcast", "dot1", "dot2", "dot3", "dot4"],
                           "bcast, rows_t, rows_g or (dot | tf32x3_ | tf32_)<stages>.")
_PHASES = flags.DEFINE_list("phases", ["mix", "out", "up", "down"], "Phases to run.")
_WARPS = flags.DEFINE_list("warps", ["8"], "num_warps values.")
_CHUNK = flags.DEFINE_integer("chunk", 128, "Columns per step.")
_LAYERS = flags.DEFINE_integer("layers", 18, "M.")
_REPEATS = flags.DEFINE_integer("repeats", 30, "Timed calls per entry.")
_INTERPRET = flags.DEFINE_bool("interpret", False, "Run the kernels as XLA ops (CPU check).")
_PTX = flags.DEFINE_bool("ptx", False, "No GPU needed: lower each kernel for CUDA and record "
                         "ptxas' registers, spills and static instruction counts (needs pip "
                         "triton, see experiments/ptx_stats.py) instead of running it.")

# (groups, n_out, n_in, rows per program) of the paper config's phases (persistent_config, 132 SMs)
PHASES = {"mix": (3, 864, 864, 8), "out": (1, 864, 864, 8), "up": (1, 1728, 864, 16),
          "down": (1, 864, 1728, 8)}


# dot<stages>: exact float32 FMA dots (Triton's "ieee"); tf32x3<stages>: three TF32 products on the
# tensor cores (hi * hi + hi * lo + lo * hi: about float32's accuracy); tf32<stages>: one TF32
# product (10-bit mantissas: NOT exact enough for the engine, timed as the tensor cores' bound).
_DOT_PRECISION = {"dot": jax.lax.Precision.HIGHEST,
                  "tf32x3_": jax.lax.DotAlgorithmPreset.TF32_TF32_F32_X3,
                  "tf32_": jax.lax.DotAlgorithmPreset.TF32_TF32_F32}


def _cols(off, chunk: int, n: int):
  """(1, chunk) mask of the columns < n of the chunk at `off` (traced or static)."""
  return off + jax.lax.broadcasted_iota(jnp.int32, (1, chunk), 1) < n


def _kernel(x_ref, w_ref, o_ref, *, form: str, chunk: int, rows: int):
  """x (M, B, 1, n_in), rows_t: (M, n_in, B); w (M, G, 1, n_out, n_in) | o (M, G, B, n_out):
  program p's rows of every layer, layer after layer."""
  if form == "rows_t":
    M, n_in, B = x_ref.shape
  else:  # bcast, rows_g, dot
    M, B, _, n_in = x_ref.shape
  G = w_ref.shape[1]
  r0 = pl.program_id(0) * rows
  count = -(-n_in // chunk)
  zero = jnp.int32(0)

  def layer(m, carry):
    if form in ("rows_t", "rows_g"):  # per weight row a (chunk, B) product, rows looped
      acc = [[None] * rows for _ in range(G)]
      for c in range(count):
        off = c * chunk
        start = off if off + chunk <= n_in else off + 0 * m
        k = start + jax.lax.broadcasted_iota(jnp.int32, (chunk, B), 0)
        mask = None if off + chunk <= n_in else k < n_in
        if form == "rows_t":  # x_ref (M, n_in, B): the tile as stored
          x = _load(x_ref.at[m, pl.ds(start, chunk), :], mask)
        else:  # x_ref (M, B, 1, n_in) as the engine keeps it: gathered into (chunk, B)
          b = jax.lax.broadcasted_iota(jnp.int32, (chunk, B), 1)
          x = _load(x_ref.at[m, b, zero, k], mask)
        for g in range(G):
          for r in range(rows):  # weight row r0 + r, column k, the same for every batch value
            w = _load(w_ref.at[m, jnp.int32(g), zero, r0 + r, k], mask)
            acc[g][r] = x * w if acc[g][r] is None else acc[g][r] + x * w
      for g in range(G):
        for r in range(rows):
          o_ref[m, g, :, pl.ds(r0 + r, 1)] = jnp.sum(acc[g][r], axis=0)[:, None]
      return carry
    if form == "bcast":  # the tile order today: (B, rows, chunk) partial sums, unrolled chunks
      acc = [None] * G
      for c in range(count):
        off = c * chunk
        mask = None if off + chunk <= n_in else _cols(off + 0 * m, chunk, n_in)
        start = off if mask is None else off + 0 * m
        x = _load(x_ref.at[m, :, :, pl.ds(start, chunk)],
                  None if mask is None else jnp.broadcast_to(mask[None], (B, 1, chunk)))
        for g in range(G):
          w = _load(w_ref.at[m, jnp.int32(g), :, pl.ds(r0, rows), pl.ds(start, chunk)],
                    None if mask is None else jnp.broadcast_to(mask[None], (1, rows, chunk)))
          acc[g] = x * w if acc[g] is None else acc[g] + x * w
      sums = [jnp.sum(a, axis=2) for a in acc]
    else:  # dot: (B, rows) sums, chunks in a loop the pipeliner can overlap

      def step(c, accs):
        off = pl.multiple_of(c * chunk, chunk)
        mask = _cols(off, chunk, n_in)
        x = _load(x_ref.at[m, :, zero, pl.ds(off, chunk)], jnp.broadcast_to(mask, (B, chunk)))
        out = []
        for g in range(G):
          w = _load(w_ref.at[m, jnp.int32(g), zero, pl.ds(r0, rows), pl.ds(off, chunk)],
                    jnp.broadcast_to(mask, (rows, chunk)))
          out.append(accs[g] + jax.lax.dot_general(
              x, w, (((1,), (1,)), ((), ())), precision=_DOT_PRECISION[form.rstrip("0123456789")],
              preferred_element_type=jnp.float32))
        return tuple(out)
      sums = jax.lax.fori_loop(0, count, step,
                               tuple(jnp.zeros((B, rows), jnp.float32) for _ in range(G)))
    for g in range(G):
      o_ref[m, g, :, pl.ds(r0, rows)] = sums[g]
    return carry
  jax.lax.fori_loop(0, M, layer, 0)


def phase_call(form: str, rows: int, n_out: int, chunk: int, warps: int, interpret: bool):
  """The pallas_call of one form: (x (M, B, 1, n_in) as form_input lays it out, w (M, G, 1,
  n_out, n_in)) -> (M, G, B, n_out)."""
  kind = form.rstrip("0123456789")
  elementwise = form in ("bcast", "rows_t", "rows_g")
  if not elementwise and (kind not in _DOT_PRECISION or kind == form):
    raise ValueError(f"form must be bcast, rows_t, rows_g or (dot | tf32x3_ | tf32_)<stages>, "
                     f"got {form!r}")
  stages = 1 if elementwise else int(form[len(kind):])
  programs = n_out // rows

  def call(x, w):
    M, B = (x.shape[0], x.shape[2]) if form == "rows_t" else x.shape[:2]
    G = w.shape[1]
    return pl.pallas_call(
        functools.partial(_kernel, form=form, chunk=chunk, rows=rows),
        out_shape=jax.ShapeDtypeStruct((M, G, B, n_out), jnp.float32), grid=(programs,),
        interpret=interpret,
        compiler_params=None if interpret else pallas_direct.triton_compiler_params(warps,
                                                                                   stages))(x, w)
  return jax.jit(call)


def form_input(form: str, x):
  """x (M, B, 1, n_in) in the layout the form's kernel takes (rows_t: (M, n_in, B))."""
  return jnp.transpose(x[:, :, 0], (0, 2, 1)) if form == "rows_t" else x


def reference(x, w):
  return jnp.einsum("mbk,mgnk->mgbn", x[:, :, 0], w[:, :, 0],
                    precision=jax.lax.Precision.HIGHEST)


def _median_us(fn, repeats: int):
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append((time.perf_counter() - t) * 1e6)
  return statistics.median(times), min(times)


def ptx_counts(form: str, rows: int, n_out: int, chunk: int, warps: int, x, w) -> dict:
  """ptxas' registers, spills and static instruction counts of the form's kernel for sm_90a,
  lowered for CUDA on this host (experiments/ptx_stats.py; x, w: arrays or shape structs)."""
  from experiments import ptx_stats  # pylint: disable=g-import-not-at-top
  os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # as ptx_stats' own command line
  fn = phase_call(form, rows, n_out, chunk, warps, False)
  with ptx_stats.captured_triton_ir() as captured:
    fn.trace(x, w).lower(lowering_platforms=("cuda",))
  return ptx_stats.ptx_stats(captured[0], warps)


def run(phases, forms, batches, warps_list, chunk, layers, repeats, interpret, ptx=False):
  rows_out = []
  key = jax.random.PRNGKey(0)
  for name in phases:
    G, n_out, n_in, rows = PHASES[name]
    for batch in batches:
      key, kx, kw = jax.random.split(key, 3)
      x = jax.random.normal(kx, (layers, batch, 1, n_in), jnp.float32)
      w = jax.random.normal(kw, (layers, G, 1, n_out, n_in), jnp.float32) / np.sqrt(n_in)
      ref = None if ptx else reference(x, w)  # --ptx runs nothing to check
      for form in forms:
        for warps in warps_list:
          entry = dict(phase=name, form=form, batch=batch, warps=warps, rows=rows, chunk=chunk)
          try:
            xf = form_input(form, x)
            if ptx:
              entry["ptx"] = ptx_counts(form, rows, n_out, chunk, warps, xf, w)
            else:
              fn = phase_call(form, rows, n_out, chunk, warps, interpret)
              out = fn(xf, w)
              entry["rel_error"] = float(jnp.max(jnp.abs(out - ref)) / jnp.max(jnp.abs(ref)))
              if not interpret:
                med, low = _median_us(lambda: fn(xf, w), repeats)
                entry.update(median_us=med, min_us=low,
                             weight_gb_s=w.size * 4 / (med * 1e-6) / 1e9)
          except Exception as e:  # pylint: disable=broad-except
            entry["error"] = f"{type(e).__name__}: {str(e)[:300]}"
          print(json.dumps(entry), flush=True)
          rows_out.append(entry)
  return rows_out


def main(argv):
  del argv
  entries = run(_PHASES.value, _FORMS.value, [int(b) for b in _BATCHES.value],
                [int(w) for w in _WARPS.value], _CHUNK.value, _LAYERS.value, _REPEATS.value,
                _INTERPRET.value, _PTX.value)
  out = _OUT.value or os.path.join(os.environ.get("OUT", "results"), "product_forms.json")
  dev = jax.devices()[0]
  with open(out, "w") as f:
    json.dump(dict(device=dev.device_kind, jax=jax.__version__, dtype="float32",
                   precision="highest (exact float32 products in both forms)",
                   layers=_LAYERS.value, entries=entries), f, indent=1)
  print("wrote", out)


if __name__ == "__main__":
  app.run(main)
