"""Registers, spills and instruction counts of the dense-path Triton kernels, without a GPU.

Pallas lowers each kernel to Triton IR while the step is lowered for CUDA (possible on a CPU
host with jaxlib 0.10.2); this captures that IR, compiles it with the `triton` package to PTX
and runs Triton's bundled ptxas for sm_90a. Needs `pip install triton==3.9.0` (not a project
dependency; a few hundred MB). Its PTX says .version 9.4, which the bundled ptxas (8.8) refuses,
so the version line is lowered: fine for a register count, not for running the code.

  PYTHONPATH=. python experiments/ptx_stats.py persistent:batch:none:1:8:float32 \\
      persistent:tile:64:8:8:float32 unroll:tile:none:8:4:float32

Each argument: LOOP (persistent | unroll) : ORDER : CHUNK (none | columns) : BATCH : WARPS :
DTYPE [: noprefetch] (the persistent loop without its weight-tile prefetch) [: FIELD=VALUE ...]
(other LayerConfig fields, e.g. arrive_early=0 or sync=data). Prints one line per
kernel (the persistent loop is one kernel, the per-layer loop four): registers, spill bytes,
static counts of global loads, shared stores, block barriers and shuffles in its PTX (session
7's table in experiments/NOTES.md), and the global loads between consecutive atomics (in the
persistent loop: which loads a phase issues before its barrier's wait, and which after).
"""
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
from unittest import mock

import jax
from jax._src.pallas.triton import lowering as triton_lowering

from flash_lcsm_jax.ops import pallas_layer as pal


@contextlib.contextmanager
def captured_triton_ir():
  """Yields a list that collects the Triton IR text of every Pallas kernel lowered inside."""
  captured, lower = [], triton_lowering.lower_jaxpr_to_triton_module

  def capture(*args, **kwargs):
    result = lower(*args, **kwargs)
    captured.append(result.module.operation.get_asm())
    return result
  with mock.patch.object(triton_lowering, "lower_jaxpr_to_triton_module", capture):
    yield captured


def triton_ir(loop: str, order: str, chunk, batch: int, warps: int, dtype: str,
              prefetch: bool = True, **fields) -> list[str]:
  """The Triton IR text of every kernel of one dense step at the paper shape (fields: other
  LayerConfig fields)."""
  blocks = (pal.persistent_config if loop == "persistent" else pal.default_config)(864, 1728)
  blocks = dataclasses.replace(blocks.replace_blocks(order=order, chunk=chunk, num_warps=warps),
                               prefetch=prefetch, **fields)
  spec = pal.LayerSpec(18, 864, 1728, 3, 1e-5, dtype, blocks)
  avals = pal.layer_avals(spec, batch)
  with captured_triton_ir() as captured, \
       mock.patch.object(pal.config, "gpu_core_count", return_value=132):
    if loop == "persistent":
      w, _, x, acc, conv, red, u = avals
      persistent_call = pal.persistent._persistent_call  # pylint: disable=protected-access
      call = jax.jit(persistent_call, static_argnames=("spec", "interpret"))
      call.trace(w, x, acc, conv, red, u, spec=spec, interpret=False).lower(
          lowering_platforms=("cuda",))
    else:
      pal.fused_layer.trace(*avals, spec=spec, interpret=False).lower(
          lowering_platforms=("cuda",))
  return captured


def ptx_stats(ir: str, warps: int) -> dict:
  import triton  # pylint: disable=g-import-not-at-top
  from triton.backends.compiler import GPUTarget  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "kernel.ttir")
    with open(path, "w") as f:
      f.write(ir)
    ptx = triton.compile(path, target=GPUTarget("cuda", 90, 32),
                         options={"num_warps": warps, "num_stages": 1}).asm["ptx"]
    ptx = re.sub(r"^\.version \d+\.\d+", ".version 8.8", ptx, flags=re.M)
    with open(os.path.join(tmp, "kernel.ptx"), "w") as f:
      f.write(ptx)
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    cubin = os.path.join(tmp, "kernel.cubin")
    out = subprocess.run([ptxas, "-arch=sm_90a", "-v", os.path.join(tmp, "kernel.ptx"), "-o",
                          cubin], capture_output=True, text=True, check=False)
    sass = subprocess.run([os.path.join(os.path.dirname(ptxas), "cuobjdump"), "-sass", cubin],
                          capture_output=True, text=True, check=False).stdout
  text = out.stdout + out.stderr
  regs = re.search(r"Used (\d+) registers", text)
  spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", text)
  if not regs:
    raise RuntimeError(f"ptxas: {text[-500:]}")
  count = lambda pattern, text=ptx: len(re.findall(pattern, text))
  # Global loads in the code between consecutive barrier atomics, in program order: in the
  # persistent loop each phase is an arrival (atom / red add 1), then the wait's polls (atom add
  # 0, or an acquiring load: barrier_order="release_acquire"), so a load placed before a wait
  # lands in the segment that follows an arrival.
  between = [count(r"ld\.global", part) for part in
             re.split(r"\n[^\n]*(?:atom\.|red\.global|ld\.global\.gpu\.acquire)", ptx)]
  return dict(registers=int(regs.group(1)), spill_stores=int(spills.group(1)),
              spill_loads=int(spills.group(2)), ld_global=count(r"ld\.global"),
              st_shared=count(r"st\.shared"), bar_sync=count(r"bar\.sync|barrier\.sync"),
              shfl=count(r"shfl\."), ld_volatile=count(r"ld\.volatile"), atom=count(r"atom\."),
              ld_global_between_atoms=between,
              # SASS: memory fences (an acquire-release atomic is a fence, the atomic and an L1
              # invalidation; a releasing one a fence and the atomic; an acquiring one no fence).
              membar=sass.count("MEMBAR"),
              sass_atomics=len(re.findall(r"\b(?:ATOMG|REDG)\b", sass)))


def _value(text: str):
  """A FIELD=VALUE value: an int where it reads as one (arrive_early=0), else the string."""
  try:
    return int(text)
  except ValueError:
    return text


def main(argv):
  os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
  for arg in argv[1:]:
    loop, order, chunk, batch, warps, dtype, *rest = arg.split(":")
    fields = dict(part.split("=") for part in rest if "=" in part)
    flags = [part for part in rest if "=" not in part]
    if flags not in ([], ["noprefetch"]):
      raise SystemExit(f"{arg}: the only optional flag is 'noprefetch', then FIELD=VALUE pairs")
    for i, ir in enumerate(triton_ir(loop, order, None if chunk == "none" else int(chunk),
                                     int(batch), int(warps), dtype, prefetch=not flags,
                                     **{k: _value(v) for k, v in fields.items()})):
      print(arg, i, ptx_stats(ir, int(warps)), flush=True)


if __name__ == "__main__":
  main(sys.argv)
