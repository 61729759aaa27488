"""How Triton lowers a batched product out[b, r] = sum_c x[b, c] w[r, c], without a GPU.

The dense path's "tile" order (ops/pallas_layer/) first formed it from 2-D tiles, x (B, chunk)
and w (rows, chunk), broadcast to (B, rows, chunk) in registers; session 7's static check found
Triton routes those broadcasts through shared memory (310 block barriers per layer at B = 8),
and session 8 measured that order at 0.72 ms/token at B = 8 (0.63 without barriers) against
XLA's 0.62, then rewrote it as "3d_partial" below. This probe compares three forms of one
program's product in isolation:

  2d          the first tile order's form: 2-D loads, broadcast in registers, reduce per chunk
  3d          tiles loaded in their broadcast shapes, x (B, 1, chunk) and w (1, rows, chunk),
              from 3-D views of the arrays, reduced per chunk
  3d_partial  the same loads, (B, rows, chunk) partial sums reduced once after the last chunk

and prints, per form, the registers, spills and PTX counts of experiments/ptx_stats.py (needs
`pip install triton==3.9.0`, as that tool). Session 8 (B = 8, rows = 8, 7 chunks of 128, 4 warps):
2d 181 block barriers / 252 shared stores / 3136 shuffles; 3d 29 / 18 / 560; 3d_partial 29 / 18
/ 80 at 120 registers. So loading in the broadcast shape keeps the products in registers.

  PYTHONPATH=. python experiments/ptx_broadcast.py --batch=8 --rows=8 --chunk=128 --chunks=7
"""
import functools
import os

from absl import app
from absl import flags
import jax
from jax.experimental import pallas as pl
import jax.numpy as jnp

_BATCH = flags.DEFINE_integer("batch", 8, "Batch rows of the product.")
_ROWS = flags.DEFINE_integer("rows", 8, "Weight rows one program owns.")
_CHUNK = flags.DEFINE_integer("chunk", 128, "Columns per step.")
_CHUNKS = flags.DEFINE_integer("chunks", 7, "Steps (the columns are chunk * chunks).")
_WARPS = flags.DEFINE_integer("warps", 4, "Triton warps.")

FORMS = ("2d", "3d", "3d_partial")


def _kernel(form: str, chunk: int, chunks: int, x_ref, w_ref, o_ref):
  B, R = o_ref.shape
  if form == "3d_partial":
    acc = jnp.zeros((B, R, chunk), jnp.float32)
    for c in range(chunks):
      cols = pl.ds(c * chunk, chunk)
      acc += x_ref[:, :, cols] * w_ref[:, :, cols]
    o_ref[...] = jnp.sum(acc, axis=-1)
    return
  acc = jnp.zeros((B, R), jnp.float32)
  for c in range(chunks):
    cols = pl.ds(c * chunk, chunk)
    if form == "2d":
      acc += jnp.sum(x_ref[:, cols][:, None, :] * w_ref[:, cols][None, :, :], axis=-1)
    else:
      acc += jnp.sum(x_ref[:, :, cols] * w_ref[:, :, cols], axis=-1)
  o_ref[...] = acc


def shapes(form: str, batch: int, rows: int, columns: int):
  """The (x, w) array shapes each form reads: 2-D, or 3-D views with unit axes."""
  if form == "2d":
    return (batch, columns), (rows, columns)
  return (batch, 1, columns), (1, rows, columns)


def product(form: str, batch: int, rows: int, chunk: int, chunks: int, warps: int = 4,
            interpret: bool = False):
  """The one-program pallas_call of `form`; its arguments have the shapes of shapes()."""
  from flash_lcsm_jax.ops import pallas_direct  # pylint: disable=g-import-not-at-top
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")
  return pl.pallas_call(
      functools.partial(_kernel, form, chunk, chunks),
      out_shape=jax.ShapeDtypeStruct((batch, rows), jnp.float32), interpret=interpret,
      compiler_params=None if interpret else pallas_direct.triton_compiler_params(warps, 1))


def triton_ir(form: str, batch: int, rows: int, chunk: int, chunks: int, warps: int) -> str:
  from experiments import ptx_stats  # pylint: disable=g-import-not-at-top
  xs, ws = shapes(form, batch, rows, chunk * chunks)
  sds = lambda s: jax.ShapeDtypeStruct(s, jnp.float32)
  with ptx_stats.captured_triton_ir() as captured:
    jax.jit(product(form, batch, rows, chunk, chunks, warps)).trace(sds(xs), sds(ws)).lower(
        lowering_platforms=("cuda",))
  return captured[0]


def main(argv):
  del argv
  from experiments import ptx_stats  # pylint: disable=g-import-not-at-top
  os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
  for form in FORMS:
    ir = triton_ir(form, _BATCH.value, _ROWS.value, _CHUNK.value, _CHUNKS.value, _WARPS.value)
    print(form, ptx_stats.ptx_stats(ir, _WARPS.value), flush=True)


if __name__ == "__main__":
  app.run(main)
