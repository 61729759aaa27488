"""Kernel events of a JAX profiler trace (jax.profiler.ProfileData), summarised per step.

Kept apart from experiments/trace_gpu.py (an absl program with flags) so tests can import it.
"""

from __future__ import annotations

import collections
import glob
import os
import tempfile
from typing import Callable

import jax


def profile(run: Callable[[], None]):
  """Calls run() under a JAX profiler trace and returns the trace (jax.profiler.ProfileData)."""
  folder = tempfile.mkdtemp(prefix="trace_")
  with jax.profiler.trace(folder):
    run()
  path, = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
  return jax.profiler.ProfileData.from_file(path)


def device_lines(profile) -> list:
  """(plane name, line) pairs that hold the device's kernels: the GPU planes' stream lines,
  else (CPU) the XLA thread-pool lines of the host plane."""
  gpu = [(p.name, ln) for p in profile.planes if p.name.startswith("/device:")
         for ln in p.lines]
  streams = [(p, ln) for p, ln in gpu if "stream" in ln.name.lower()]
  if streams or gpu:
    return streams or gpu
  return [(p.name, ln) for p in profile.planes if p.name.startswith("/host:")
          for ln in p.lines if ln.name.startswith("tf_XLA")]


def busy_ns(intervals: list[tuple[float, float]]) -> float:
  """Length of the union of [start, end) intervals."""
  total, end = 0.0, float("-inf")
  for s, e in sorted(intervals):
    if e <= end:
      continue
    total += e - max(s, end)
    end = e
  return total


def host_summary(profile, steps: int, top: int) -> list[dict]:
  """The host planes' named events (XLA's thunk execution, launches, JAX dispatch; Python
  frames left out), by total time: where the host spends a step when the device waits."""
  events: dict = collections.defaultdict(lambda: [0, 0.0])
  for plane in profile.planes:
    if not plane.name.startswith("/host:"):
      continue
    for line in plane.lines:
      for ev in line.events:
        if ev.duration_ns and not ev.name.startswith("$"):
          events[ev.name][0] += 1
          events[ev.name][1] += ev.duration_ns
  ranked = sorted(events.items(), key=lambda kv: -kv[1][1])[:top]
  return [dict(name=k[:160], per_step=c / steps, us_per_step=t / steps / 1e3)
          for k, (c, t) in ranked]


def summarize(profile, steps: int, top: int) -> dict:
  kernels: dict = collections.defaultdict(lambda: [0, 0.0])
  lines, intervals = {}, []
  for plane, line in device_lines(profile):
    n, ns = 0, 0.0
    for ev in line.events:
      if not ev.duration_ns or ev.name.startswith("$"):  # "$file:line": Python tracer frames
        continue
      n += 1
      ns += ev.duration_ns
      kernels[ev.name][0] += 1
      kernels[ev.name][1] += ev.duration_ns
      intervals.append((ev.start_ns, ev.start_ns + ev.duration_ns))
    lines[f"{plane} / {line.name}"] = dict(events=n, total_us=ns / 1e3)
  ranked = sorted(kernels.items(), key=lambda kv: -kv[1][1])
  launches = sum(c for c, _ in kernels.values())
  kernel_ns = sum(t for _, t in kernels.values())
  return dict(kernels_per_step=launches / steps, kernel_us_per_step=kernel_ns / steps / 1e3,
              busy_us_per_step=busy_ns(intervals) / steps / 1e3,
              top=[dict(name=k[:160], per_step=c / steps, us_per_step=t / steps / 1e3)
                   for k, (c, t) in ranked[:top]], lines=lines,
              host=host_summary(profile, steps, top))
