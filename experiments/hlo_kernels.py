"""Kernels launched per token, counted from the optimized HLO of a compiled block.

Nsight Compute crashes inside JAX on the device machine, so the count comes from the executable
itself: every instruction of a non-fused computation that is not pure bookkeeping (parameters,
tuples, bitcasts, control flow) is one kernel launch (a fusion, a library call such as a cuBLAS
gemm, a copy, ...). Loops multiply their body by the trip count XLA recorded
(`known_trip_count`), so a scan over layers counts M times. Command buffers / CUDA graphs replay
the same kernels with less launch overhead; they do not change the count.

  count(text) -> KernelCount(total, by_opcode, unknown_trip_counts)
"""

from __future__ import annotations

import collections
import dataclasses
import re

# Instructions that launch nothing on their own.
BOOKKEEPING = frozenset({
    "parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
    "add-dependency", "opt-barrier", "partition-id", "replica-id", "domain", "iota-free",
})
CONTROL = frozenset({"while", "call", "conditional"})

_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"(?<![\w\-\]\}])([a-z][a-z0-9\-]*)\(")
_REF = re.compile(r"\b(body|condition|to_apply|calls|branch_computations|true_computation|"
                  r"false_computation)=(?:\{([^}]*)\}|%?([\w.\-]+))")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


@dataclasses.dataclass(frozen=True)
class KernelCount:
  total: int
  by_opcode: dict
  unknown_trip_counts: int  # loops without a recorded trip count (counted once)


def _computations(text: str) -> tuple[dict[str, list[str]], str | None]:
  comps, entry, name = {}, None, None
  for line in text.splitlines():
    if name is None:
      m = _HEADER.match(line)
      if m:
        name = m.group(2)
        comps[name] = []
        if m.group(1):
          entry = name
    elif line.startswith("}"):
      name = None
    else:
      comps[name].append(line)
  return comps, entry


def _opcode(rhs: str) -> str | None:
  m = _OPCODE.search(rhs)
  return m.group(1) if m else None


def count(text: str) -> KernelCount:
  """Kernel launches of one run of the module's entry computation."""
  comps, entry = _computations(text)
  if entry is None:
    raise ValueError("no ENTRY computation in the HLO text")
  by_op: collections.Counter = collections.Counter()
  unknown = 0

  def visit(name: str, times: int):
    nonlocal unknown
    for line in comps.get(name, ()):
      m = _INSTR.match(line)
      if not m:
        continue
      rhs = m.group(2)
      op = _opcode(rhs)
      if op is None or op in BOOKKEEPING or op.endswith("-done"):
        continue  # an async pair (fusion-start / -done, copy-start / -done) is one launch
      if op in CONTROL:
        refs = {k: [r.strip().lstrip("%") for r in (listed or single).split(",")]
                for k, listed, single in _REF.findall(rhs)}
        n = 1
        if op == "while":
          trip = _TRIP.search(rhs)
          if trip:
            n = int(trip.group(1))
          else:
            unknown += 1
          visit(refs["condition"][0], times * (n + 1))
          visit(refs["body"][0], times * n)
        else:  # call / conditional: every branch once (an upper bound for conditionals)
          for key in ("to_apply", "calls", "branch_computations", "true_computation",
                      "false_computation"):
            for ref in refs.get(key, ()):
              visit(ref, times)
        continue
      by_op[op] += times

  visit(entry, 1)
  return KernelCount(sum(by_op.values()), dict(by_op.most_common()), unknown)


_SHAPE = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*([a-z]\w*)\[([\d,]*)\]")
_BYTES = {"f32": 4, "s32": 4, "u32": 4, "bf16": 2, "f16": 2, "c64": 8, "f64": 8, "pred": 1,
          "s8": 1, "u8": 1}


def large_copies(text: str, min_bytes: int = 2**20) -> list[str]:
  """`dtype[shape]` of every copy instruction (in any computation, counted once) whose result
  has at least min_bytes: the hidden copies of big buffers that in-place updates should avoid."""
  out = []
  for line in text.splitlines():
    m = _SHAPE.match(line)
    if not m or _opcode(line.split("=", 1)[1]) not in ("copy", "copy-start"):
      continue
    dims = [int(d) for d in m.group(2).split(",") if d]
    n = _BYTES.get(m.group(1), 4)
    for d in dims:
      n *= d
    if n >= min_bytes:
      out.append(f"{m.group(1)}[{m.group(2)}]")
  return out
