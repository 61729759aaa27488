"""Merges one experiment's JSON from several device calls into one results file.

A device session is cut into calls of at most 10 minutes, so a long experiment may run in parts
(other levels, other sweep values) or stop at its budget with a partial JSON (common.Progress).

  python -m experiments.collect results/NAME.json part1.json part2.json ...

The first part that has a full config gives the config and the top-level environment (each
part's own config and environment, e.g. its XLA_FLAGS, are kept under "parts"); records are
concatenated in order, and a record marked "skipped" is dropped when another part measured the
same point (same identifying fields). tau_levels' per-level summary is recomputed from the
merged records.
"""

from __future__ import annotations

import json
import sys

# Fields that say which point a record is (those a record has are compared).
POINT_FIELDS = ("label", "method", "variant", "tau", "level", "U", "batch", "length", "part",
                "axis", "value")


def _same_point(skipped: dict, measured: dict) -> bool:
  """Whether `measured` is the point `skipped` names (on every identifying field it has)."""
  return all(k in measured and measured[k] == skipped[k] for k in POINT_FIELDS if k in skipped)


def merge(parts: list[dict]) -> dict:
  if not parts:
    raise ValueError("nothing to merge")
  names = {p["experiment"] for p in parts}
  if len(names) != 1:
    raise ValueError(f"parts of different experiments: {sorted(names)}")
  devices = {p["environment"].get("device") for p in parts}
  if len(devices) != 1:
    raise ValueError(f"parts measured on different devices: {sorted(map(str, devices))}")
  base = next((p for p in parts if p.get("config")), None)
  if base is None:
    raise ValueError("no part has a config (all stopped before their first write?)")
  records = [r for p in parts for r in p["records"]]
  measured = [r for r in records if "skipped" not in r]
  records = [r for r in records
             if "skipped" not in r or not any(_same_point(r, m) for m in measured)]
  out = {**base, "records": records, "wall_s": sum(p.get("wall_s", 0.0) for p in parts),
         "parts": [{"config": p.get("config"), "complete": p.get("complete", True),
                    "records": len(p["records"]), "wall_s": p.get("wall_s"),
                    "environment": p["environment"]} for p in parts]}
  out.pop("complete", None)
  if out["experiment"] == "tau_levels":
    from experiments import tau_levels
    batches = sorted({r["batch"] for r in records})
    out["config"] = {**out["config"], "batches": batches}
    out["fastest_by_level"] = [
        s for b in batches for s in tau_levels.summary(
            [r for r in records if r["batch"] == b],
            sorted({r["level"] for r in records if r["batch"] == b}))]
  return out


def main(argv: list[str]) -> int:
  if len(argv) < 3:
    print(__doc__)
    return 2
  parts = []
  for path in argv[2:]:
    with open(path) as f:
      parts.append(json.load(f))
  data = merge(parts)
  with open(argv[1], "w") as f:
    json.dump(data, f, indent=1)
  print(f"wrote {argv[1]}: {len(data['records'])} records from {len(parts)} parts")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
