"""The cluster-exchange probe (experiments/cluster_probe.py) on the GPU: each kernel checked
against the float64 recurrence over a few iterations, then timed as the marginal cost of one
exchange (a kernel of --iters iterations less a kernel of one, over iters - 1).

  PYTHONPATH=. python experiments/cluster_probe_gpu.py --clusters=2,4,8,16
  PYTHONPATH=. python experiments/cluster_probe_gpu.py --forms=split --clusters=4,8
  python experiments/cluster_probe_gpu.py --lower_only   (no GPU: lowers every kernel for CUDA)

Per cluster size, both forms do the same work (each block reads `cluster` (width,) float32
vectors per iteration). The grid form's exchange is the Mosaic token kernel's hand-over
between phases; the cluster form's is what a split-K phase's partial sums would cost inside a
cluster. Cluster sizes above 8 are non-portable; their record says whether they launch. The
split form is a split-K phase's whole exchange (the sum over every block, in every block);
cluster_local is the cluster form reading its own shared memory instead of its peers' (what
the barriers, fences and adds cost without DSMEM).
"""

from __future__ import annotations

import functools
import json
import os
import traceback

from absl import app
from absl import flags
import numpy as np

from experiments import cluster_probe as cp

_OUT = flags.DEFINE_string("out", None, "JSON path (default $OUT/cluster_probe.json).")
_PROGRAMS = flags.DEFINE_integer("programs", 128, "Blocks (the grid form needs them all "
                                 "resident: at most one per SM).")
_CLUSTERS = flags.DEFINE_list("clusters", ["2", "4", "8", "16"], "Cluster sizes.")
_WIDTH = flags.DEFINE_integer("width", 1024, "float32 values per block's vector.")
_ITERS = flags.DEFINE_integer("iters", 256, "Iterations of a timed kernel.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per kernel (median).")
_LOWER_ONLY = flags.DEFINE_bool("lower_only", False, "Lower every kernel for CUDA and stop.")
_FORMS = flags.DEFINE_list("forms", ["cluster", "grid"], "Forms to run (split: clusters <= 8).")
FORMS = {"cluster": cp.make_cluster_exchange, "grid": cp.make_grid_exchange,
         "split": cp.make_split_exchange,
         "cluster_local": functools.partial(cp.make_cluster_exchange, peers=False)}
CHECK_ITERS = 5  # few enough that a stale read still shows in float32


def main(argv):
  del argv
  programs, width = _PROGRAMS.value, _WIDTH.value
  sizes = [int(c) for c in _CLUSTERS.value]
  forms = {form: FORMS[form] for form in _FORMS.value}
  if _LOWER_ONLY.value:
    for size in sizes:
      for form, make in forms.items():
        text = make(programs, size, 2, width).trace().lower(
            lowering_platforms=("cuda",)).as_text()
        print(f"{form} cluster={size}: lowered for CUDA ({len(text)} characters)")
    return
  from experiments import common  # pylint: disable=g-import-not-at-top
  records = []
  out = {"experiment": "cluster_probe", "environment": common.environment("gpu", rates=False),
         "programs": programs, "width": width, "iters": _ITERS.value, "records": records}
  path = _OUT.value or os.path.join(os.environ.get("OUT", "."), "cluster_probe.json")
  for size in sizes:
    for form, make in forms.items():
      rec = {"form": form, "cluster": size}
      records.append(rec)
      try:
        got = np.asarray(make(programs, size, CHECK_ITERS, width)())
        group = {"split": programs, "cluster_local": 1}.get(form, size)  # blocks summed over
        want = cp.reference(programs, size, CHECK_ITERS, width, group)
        rec["rel_error"] = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        many, one = make(programs, size, _ITERS.value, width), make(programs, size, 1, width)
        per, many_ms, one_ms = common.marginal_ms(many, one, _ITERS.value, _REPEATS.value)
        rec.update(us_per_exchange=per * 1e3, ms_many=many_ms, ms_one=one_ms)
      except Exception as err:  # pylint: disable=broad-except
        rec["error"] = common.error_text(err, 1500)
        rec["traceback_tail"] = traceback.format_exc()[-2000:]
      print(json.dumps({k: v for k, v in rec.items() if k != "traceback_tail"}), flush=True)
      common.write_json_file(path, out)
  print("wrote", path)


if __name__ == "__main__":
  app.run(main)
