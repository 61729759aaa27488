"""The benchmark programs by name, for `run.py --mode=bench` and `--mode=figures`.

  python run.py --mode=bench --experiment=NAME [--size=cpu] [--out=results]
  python run.py --mode=bench --experiment=all              # each in its own process, in order
  python run.py --mode=figures [--out=figures]             # results/*.json -> figures/*.png

Each experiment writes results/NAME.json (device, JAX version, dtype, matmul precision, config,
records) and its module's plot() turns that JSON, and only it, into figures/NAME.png.
Knobs of one experiment are keyword arguments of its module's run(size, outdir, name, ...);
`run_one(NAME, size, outdir, key=value, ...)` passes them, e.g. lengths=(2**10, 2**14).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
import time
import traceback


@dataclasses.dataclass(frozen=True)
class Entry:
  module: str  # experiments.<module> with run(size, outdir, name, **kw) and plot(data, path)
  figure: str
  gpu_minutes: float  # rough H100 estimate at the GPU defaults, compilation included
  kwargs: dict = dataclasses.field(default_factory=dict)  # for both sizes
  gpu: dict = dataclasses.field(default_factory=dict)  # GPU-size only
  # CPU-size only: the CPU size is a smoke run (tests/test_experiments.py runs every experiment);
  # where an experiment covers every tau, a few stand for all there (each tau's generation is
  # checked in tests/test_engines.py), as interpret-mode Pallas compiles dominate its time.
  cpu: dict = dataclasses.field(default_factory=dict)


_CPU_VARIANTS = dict(variants=("hybrid", "fft", "pallas+fft"))
_B8 = dict(batch=8, lengths=(2**10, 2**12, 2**14, 2**16, 2**17))  # 2^17 skipped if it won't fit
# gpu_minutes: first run on a cold compilation cache. The paper model's whole-model block
# compiles in about a minute (H200 probe, layers unrolled); experiments that share a reference
# plan (same model, batch and part) reuse it, so later ones run faster than listed.
EXPERIMENTS: dict[str, Entry] = {
    # The first point of e2e_b1 on the same reference plans: compile and step times and device
    # rates in a few minutes, and a warm compilation cache for e2e_b1, breakdown and latency.
    "probe": Entry("e2e", "probe: one length, every method", 4.5, gpu=dict(lengths=(2**10,))),
    "tiling": Entry("tiling", "1: tiling diagram from the engine's schedules", 0.2),
    "e2e_b1": Entry("e2e", "2: end-to-end time vs L, B=1", 5.5),
    "e2e_b8": Entry("e2e", "2: end-to-end time vs L, B=8", 6.0, kwargs=dict(batch=8), gpu=_B8),
    "e2e_taus": Entry("e2e", "2: end-to-end time vs L, flash with every tau", 8.5,
                      kwargs=dict(methods=("flash",), variants="all", lengths=(32,)),
                      gpu=dict(lengths=(2**10, 2**14)), cpu=_CPU_VARIANTS),
    # Blocks of 64 on the GPU: the long convolutions alone are bound by the host's cost per
    # executable call (experiments/NOTES.md, session 4), which larger blocks spread out.
    "mixer_b1": Entry("mixer", "3: long-convolution time vs L, B=1, every tau", 6.0,
                      kwargs=dict(variants="all"), gpu=dict(block_size=64), cpu=_CPU_VARIANTS),
    # Issue #3's online convolution: the long convolutions alone (18 x 864 channels) at
    # L = 2^16, flash only, blocks of 256 (results/h100/online_conv.json gathers such runs).
    "online_conv": Entry("mixer", "online convolution, flash, L=2^16, blocks of 256", 1.0,
                         kwargs=dict(methods=("flash",), variants=("hybrid",)),
                         gpu=dict(lengths=(2**16,), block_size=256)),
    "mixer_b8": Entry("mixer", "3: long-convolution time vs L, B=8", 3.5,
                      kwargs=dict(batch=8, variants=("hybrid", "fft")),
                      gpu=dict(_B8, block_size=64)),
    "tau_levels": Entry("tau_levels", "4: tau ablation by tile size", 3.0),
    "sweep_batch": Entry("sweeps", "5: flash vs lazy over batch B", 6.5,
                         kwargs=dict(axis="batch")),
    "sweep_layers": Entry("sweeps", "5: flash vs lazy over layers M", 6.5,
                          kwargs=dict(axis="layers")),
    "sweep_width": Entry("sweeps", "5: flash vs lazy over width D", 6.0,
                         kwargs=dict(axis="width")),
    "breakdown": Entry("breakdown", "6: mixer vs non-mixer per method, B=1", 4.5),
    "breakdown_b8": Entry("breakdown", "6: mixer vs non-mixer per method, B=8", 5.0,
                          kwargs=dict(batches=(8,))),
    "latency": Entry("latency", "7: per-token latency along a generation", 3.5),
    "peak_memory": Entry("peak_memory", "8: peak memory vs L", 4.5),
    "layer_batching": Entry("layer_batching", "9: all layers in one call vs layer by layer", 2.5),
    # After mixer_*: joins their timings to its byte counts.
    "activation_bytes": Entry("activation_bytes", "10: bytes per step vs L, and bandwidth", 0.3),
}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module(name: str):
  return importlib.import_module(f"experiments.{EXPERIMENTS[name].module}")


def run_one(name: str, size: str, outdir: str, **overrides) -> dict:
  """Runs one experiment in this process; returns the data it wrote to outdir/NAME.json."""
  entry = EXPERIMENTS[name]
  kwargs = {**entry.kwargs, **(entry.gpu if size == "gpu" else entry.cpu), **overrides}
  if size == "gpu":
    enable_compilation_cache()
  return module(name).run(size, outdir, name=name, **kwargs)


def enable_compilation_cache():
  """Executables shared between experiments (same model, batch, part: common.REF_MAX) compile
  once per machine: a persistent cache under build/ (git-ignored), unless one is configured."""
  from flash_lcsm_jax import cli
  cli.enable_compilation_cache(os.path.join(_ROOT, "build", "xla_cache"))


def bench_main(experiment: str, size: str, outdir: str) -> int:
  """Runs one experiment, or several / "all" in registry order. At GPU size each runs in its own
  process, so every experiment starts with the whole device (and peak_memory's children get
  it); at CPU size they share this process and its compiled executables."""
  names = list(EXPERIMENTS) if experiment == "all" else [
      n.strip() for n in experiment.split(",") if n.strip()]
  unknown = [n for n in names if n not in EXPERIMENTS]
  if unknown or not names:
    print(f"unknown experiment(s) {unknown}; available: all, {', '.join(EXPERIMENTS)}")
    return 2
  if size not in ("gpu", "cpu"):
    print(f"size must be 'gpu' or 'cpu', got {size!r}")
    return 2
  if len(names) == 1:
    run_one(names[0], size, outdir)
    return 0
  failed = []
  for name in names:
    started = time.perf_counter()
    code = _run_isolated(name, size, outdir) if size == "gpu" else _run_here(name, size, outdir)
    print(f"== {name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
    if code:
      failed.append(name)
  if failed:
    print(f"failed: {failed}")
  return 1 if failed else 0


def _run_isolated(name: str, size: str, outdir: str) -> int:
  paths = [_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
  return subprocess.run([sys.executable, "-m", "experiments.registry", name, size,
                         os.path.abspath(outdir)], cwd=_ROOT, env=env).returncode


def _run_here(name: str, size: str, outdir: str) -> int:
  try:
    run_one(name, size, outdir)
    return 0
  except Exception:  # report it and go on with the others
    traceback.print_exc()
    return 1


def figures_main(outdir: str = "figures", results_dir: str = "results") -> int:
  """Plots every results_dir/NAME.json of a known experiment into outdir/NAME.png."""
  from experiments import common
  made, failed = [], []
  for name in EXPERIMENTS:
    data = common.read_json(results_dir, name)
    if data is None:
      continue
    path = os.path.join(outdir, f"{name}.png")
    try:
      module(name).plot(data, path)
      made.append(path)
    except Exception:  # one broken JSON must not cost the other figures
      traceback.print_exc()
      failed.append(name)
  print(f"figures: {len(made)} written to {outdir}/" + (f"; failed: {failed}" if failed else ""))
  if not made and not failed:
    print(f"no results found in {results_dir}/ (run --mode=bench first)")
  return 1 if failed or not made else 0


if __name__ == "__main__":
  if len(sys.argv) != 4:
    raise SystemExit("usage: python -m experiments.registry NAME SIZE OUTDIR")
  try:
    run_one(*sys.argv[1:4])
  except Exception:
    traceback.print_exc()
    raise SystemExit(1)
