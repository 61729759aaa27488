"""Figure 6: where the time goes — long convolutions vs the rest, per method.

At a fixed length, each method runs three times: the whole model (part "all"), only the long
convolutions ("mixer") and the model with the long convolutions removed ("dense"). mixer + dense
vs all shows how well the two overlap (or interfere) inside one compiled block. "dense" runs the
same steps whatever the method, so it is timed for flash (unrolled steps) and lazy (scanned
steps, which eager shares) only. methods=(...) runs a subset of the methods.
"""

from __future__ import annotations

import time

from experiments import common

DEFAULTS = {
    "gpu": dict(batches=(1,), length=2**14, repeats=3, full_budget_s=20.0, max_keys=6),
    "cpu": dict(batches=(1,), length=64, repeats=2, full_budget_s=3.0, max_keys=3),
}
ENTRIES = (("lazy", None), ("eager", None), ("flash", "hybrid"))
PARTS = ("all", "mixer", "dense")


def run(size: str, outdir: str, name: str = "breakdown", **overrides) -> dict:
  started = time.perf_counter()
  opts = {**DEFAULTS[size], **overrides}
  cfg = common.model_config(size, **opts.pop("model", {}))
  gen = common.generator(cfg)
  records = common.Progress(outdir, name, size, started)
  ref_max = opts.setdefault("ref_max", common.REF_MAX[size])
  records.config = {"model": cfg.to_dict(), "parts": PARTS,
                    **common.engine_config(gen, max(opts["batches"])), **opts}
  methods = opts.pop("methods", None)
  for batch in opts["batches"]:
    for method, variant in ENTRIES:
      if methods is not None and method not in methods:
        continue
      for part in PARTS:
        if part == "dense" and method == "eager":
          continue  # the same scanned steps as lazy's dense part: nothing new to time
        rec, = common.sweep_lengths(gen, method, variant, [opts["length"]], batch, part,
                                    ref_max=ref_max, repeats=opts["repeats"],
                                    full_budget_s=opts["full_budget_s"],
                                    max_keys=opts["max_keys"], check=False)
        common.log(name, common.describe(rec))
        records.append(rec)
  data = common.payload(name, size, records.config, records, started,
                        integration_checks=common.integration_checks(records))
  common.write_json(outdir, name, data)
  return data


def plot(data: dict, path: str):
  plt = common.pyplot()
  batches = data["config"]["batches"]
  fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4.5), squeeze=False,
                           layout="constrained")
  for ax, batch in zip(axes[0], batches):
    recs = [r for r in data["records"] if r["batch"] == batch and common.ok(r)]
    labels = list(dict.fromkeys(r["label"] for r in recs))
    ms = {(r["label"], r["part"]): r["per_token_s"] * 1e3 for r in recs}
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [ms.get((l, "all"), 0) for l in labels], width=0.4,
           label="whole model", color="tab:gray")
    mixer = [ms.get((l, "mixer"), 0) for l in labels]
    ax.bar([i + 0.2 for i in x], mixer, width=0.4, label="long convolutions only",
           color="tab:blue")
    ax.bar([i + 0.2 for i in x], [ms.get((l, "dense"), 0) for l in labels], width=0.4,
           bottom=mixer, label="rest of the model only", color="tab:orange")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("ms per step (mean over the generation)")
    ax.set_title(f"B={batch}, L={data['config']['length']}")
    ax.legend(fontsize=8)
  fig.suptitle(f"Mixer vs non-mixer time per method\n{common.subtitle(data)}", fontsize=10)
  common.save_figure(fig, path)
