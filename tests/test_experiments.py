"""The benchmark programs at CPU size: every experiment writes its JSON and every figure its PNG.

One module-scoped run of `bench_main("all", "cpu", ...)` then `figures_main` (about two minutes
on two cores, mostly compilation), plus quick checks of the timing integral and the registry.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import common, registry
from flash_lcsm_jax.engine import mixers

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_KEYS = ("device", "platform", "jax", "matmul_precision")
TOP_KEYS = ("experiment", "size", "environment", "dtype", "matmul_precision", "config",
            "records", "wall_s")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
  root = tmp_path_factory.mktemp("bench")
  results, figures = str(root / "results"), str(root / "figures")
  assert registry.bench_main("all", "cpu", results) == 0
  assert registry.figures_main(figures, results_dir=results) == 0
  return results, figures


def _load(results, name):
  with open(os.path.join(results, f"{name}.json")) as f:
    return json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(registry.EXPERIMENTS))
def test_json_and_figure(outputs, name):
  results, figures = outputs
  data = _load(results, name)
  for key in TOP_KEYS:
    assert key in data, key
  for key in ENV_KEYS:
    assert data["environment"][key] is not None, key
  assert data["experiment"] == name and data["size"] == "cpu"
  assert data["records"]
  assert not [r for r in data["records"] if "error" in r]
  with open(os.path.join(figures, f"{name}.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_timings_are_complete(outputs):
  results, _ = outputs
  for name in ("e2e_b1", "e2e_b8", "mixer_b1", "breakdown", "sweep_batch"):
    data = _load(results, name)
    assert "copy_bandwidth_GBps" in data["environment"]
    for rec in data["records"]:
      assert rec["seconds"] > 0 and isinstance(rec["integrated"], bool), rec
      assert rec["keys"], rec
      if not rec["integrated"]:
        assert rec["integration_rel_diff"] is not None
  mixer = _load(results, "mixer_b1")
  assert any("history_read_GBps" in k for r in mixer["records"] for k in r["keys"])
  assert "integration_checks" in _load(results, "e2e_b1")


@pytest.mark.slow
def test_schedule_derived_outputs(outputs):
  results, _ = outputs
  tiling = _load(results, "tiling")
  assert all(r["each_pair_once"] for r in tiling["records"])
  assert tiling["flash_tile_levels"][:8] == [0, 1, 0, 2, 0, 1, 0, 3]
  nbytes = _load(results, "activation_bytes")
  assert any("achieved_GBps" in r for r in nbytes["records"])  # joined with mixer_* timings
  flash = [r for r in nbytes["records"] if r["method"] == "flash"]
  lazy = [r for r in nbytes["records"] if r["method"] == "lazy"]
  assert flash[-1]["activation_bytes_per_step"] < lazy[-1]["activation_bytes_per_step"]
  latency = _load(results, "latency")
  flash = next(r for r in latency["records"] if r["method"] == "flash")
  assert len(flash["block_seconds"]) == len(flash["block_first"])
  batching = _load(results, "layer_batching")
  assert {t["variant"] for t in batching["totals"]} == {"batched", "per_layer"}


def _keys(plan, per_step):
  """Synthetic timings of every key of a plan: per_step(window) seconds per step."""
  return [common.KeyTiming(bl[0].levels, bl[0].window, len(bl), bl[0].first,
                           per_step(bl[0].window) * bl[0].num_steps, 1)
          for bl in common.block_groups(plan.blocks).values()]


def test_copy_seconds_times_each_pass_of_the_buffer(monkeypatch):
  # With the timer read once per call and every call 1 s of the fake clock, one pass is
  # 1 / COPY_PASSES s: the passes are counted, not the calls.
  clock = iter(range(1000))
  fake_time = type("FakeTime", (), {"perf_counter": staticmethod(lambda: float(next(clock)))})
  monkeypatch.setattr(common, "time", fake_time)  # common's clock only, not JAX's
  median, times = common.copy_seconds(1 << 10, repeats=4, warmups=1)
  assert times == [1.0 / common.COPY_PASSES] * 4 and median == times[0]


def test_marginal_ms_leaves_out_the_fixed_cost_of_a_call(monkeypatch):
  # A call of T tokens costs 2 + T (fake) seconds: the marginal cost is 1 s per token.
  now = [0.0]
  fake_time = type("FakeTime", (), {"perf_counter": staticmethod(lambda: now[0])})
  monkeypatch.setattr(common, "time", fake_time)
  def call(tokens):
    def run():
      now[0] += 2 + tokens
    return run
  per, many, one = common.marginal_ms(call(5), call(1), 5, repeats=3)
  assert (per, many, one) == (1000.0, 7000.0, 3000.0)


def test_device_rates_reports_the_copy_spread():
  rates = common.device_rates("cpu")
  low, high = rates["copy_bandwidth_GBps_spread"]
  assert 0 < low <= rates["copy_bandwidth_GBps"] <= high
  assert rates["copy_passes"] == common.COPY_PASSES


def test_integrate_sums_every_block_once():
  plan = mixers.make_plan("flash", 0, 256, common.BLOCK_SIZE, "fft")
  timings = _keys(plan, lambda w: 1.0)
  assert sum(t.count for t in timings) == len(plan.blocks)
  assert common.integrate(plan.blocks, timings) == pytest.approx(256.0)
  with pytest.raises(ValueError, match="own keys"):
    common.integrate(plan.blocks, timings[:-1])


def test_fits_refuses_then_measures_with_the_skip_variable(monkeypatch):
  from flash_lcsm_jax import validation
  gen = common.generator(common.model_config("cpu"))
  plan = mixers.make_plan("lazy", 0, 64, common.BLOCK_SIZE, "fft")
  # the autotuner off: no buffer copy, so no untuned compile to fall back on (test_validation)
  monkeypatch.setenv("XLA_FLAGS", validation.AUTOTUNE_OFF_FLAG)
  need1, need2 = (validation.estimate_peak_bytes(gen.params, gen.cfg, plan, b) for b in (1, 2))
  assert need2 > need1
  monkeypatch.setattr(validation, "device_memory_limit", lambda: int(need1 / 0.85) + 1)
  monkeypatch.delenv(validation.SKIP_MEMORY_CHECK_ENV, raising=False)
  assert "needs about" in common.fits(gen, plan, 2)
  assert common.fits(gen, plan, 1) is None
  monkeypatch.setenv(validation.SKIP_MEMORY_CHECK_ENV, "1")
  assert common.fits(gen, plan, 2) is None


@pytest.mark.parametrize("method", ["lazy", "eager"])
def test_integrate_interpolates_sampled_windows(method):
  plan = mixers.make_plan(method, 0, 1000, common.BLOCK_SIZE)
  cost = lambda w: 1e-6 * (3 + 0.5 * w)  # a per-step cost affine in the window
  exact = sum(cost(b.window) * b.num_steps for b in plan.blocks)
  timings = _keys(plan, cost)
  windows = sorted({t.window for t in timings})
  sampled = [t for t in timings if t.window in (windows[0], windows[len(windows) // 2],
                                                windows[-1])]
  assert common.integrate(plan.blocks, sampled) == pytest.approx(exact, rel=1e-9)


def test_flash_variants_cover_every_tau():
  variants = common.flash_variants()
  assert variants["hybrid"] == ("hybrid", None) and variants["fft"] == ("fft", None)
  assert variants["hybrid_default"] == ("hybrid", common.tau_ops.DEFAULT_HYBRID)
  assert len(variants) == len(common.tau_ops.names()) + 2
  with pytest.raises(ValueError, match="unknown flash variants"):
    common.flash_variants(["nope"])


def test_bench_main_rejects_unknown_names(capsys):
  assert registry.bench_main("no_such_experiment", "cpu", "unused") == 2
  assert "available" in capsys.readouterr().out


def test_registry_entry_point_runs_in_its_own_process(tmp_path):
  env = dict(os.environ, PYTHONPATH=_ROOT)
  proc = subprocess.run([sys.executable, "-m", "experiments.registry", "tiling", "cpu",
                         str(tmp_path)], cwd=_ROOT, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  data = _load(str(tmp_path), "tiling")
  cover = np.array(data["records"][2]["cover"])
  assert (cover >= 0).sum() == 16 * 17 // 2  # lower triangle and diagonal, L = 16


def test_a_stopped_experiment_leaves_a_partial_self_describing_json(tmp_path, monkeypatch):
  """Progress rewrites NAME.json after every record: an experiment killed at its time limit
  keeps what it measured, with its config, marked incomplete."""
  real, calls = common.sweep_lengths, []

  def stop_on_second(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt  # like a SIGINT / time limit mid-run: nothing catches it
    return real(*args, **kwargs)

  monkeypatch.setattr(common, "sweep_lengths", stop_on_second)
  with pytest.raises(KeyboardInterrupt):
    registry.run_one("breakdown", "cpu", str(tmp_path))
  data = _load(str(tmp_path), "breakdown")
  assert data["complete"] is False
  assert len(data["records"]) == 1 and common.ok(data["records"][0])
  assert data["config"]["model"]["n_layers"] == common.CPU_MODEL["n_layers"]
  assert data["environment"]["device"]


def test_tau_levels_subset_fills_a_missing_point(tmp_path):
  """tau_levels(taus=...) measures only those taus (what session 5 used to fill a skipped point)
  and records the subset in its config."""
  data = registry.run_one("tau_levels", "cpu", str(tmp_path), taus=("fft",), max_level=1)
  assert data["config"]["taus"] == ["fft"]
  assert {r["tau"] for r in data["records"]} == {"fft"}
  assert sorted(r["level"] for r in data["records"]) == [0, 1]
  assert all(r["seconds"] > 0 for r in data["records"])


def test_step_unrolling_knob(monkeypatch):
  """FLASH_LCSM_UNROLL_STEPS reaches the Generator (and each JSON's environment); bad values
  are refused."""
  monkeypatch.setenv(common.UNROLL_STEPS_ENV, "0")
  assert common.unroll_steps() is False
  gen = common.generator(common.model_config("cpu"))
  assert gen.unroll_steps is False and gen.unroll_steps_for(1) is False
  assert common.environment("cpu", rates=False)[common.UNROLL_STEPS_ENV] == "0"
  monkeypatch.setenv(common.UNROLL_STEPS_ENV, "yes")
  with pytest.raises(ValueError, match=common.UNROLL_STEPS_ENV):
    common.unroll_steps()
  monkeypatch.delenv(common.UNROLL_STEPS_ENV)
  assert common.unroll_steps() is None


@pytest.mark.parametrize("check", [True, False])
def test_e2e_check_forces_one_full_run_or_not(tmp_path, check):
  """e2e's check=True runs the shortest length in full even when its full run is over budget
  (full_budget_s=0), so the integral is compared with a full run; check=False integrates it
  (a single long lazy length whose full run would not fit a device call)."""
  data = registry.run_one("e2e_b1", "cpu", str(tmp_path), methods=("lazy",), lengths=(32, 64),
                          full_budget_s=0.0, check=check)
  assert data["config"]["check"] is check
  by_length = {r["length"]: r for r in data["records"]}
  assert by_length[64]["integrated"] and not by_length[64]["full_s"]
  assert by_length[32]["integrated"] is not check
  assert (by_length[32]["integration_rel_diff"] is not None) is check
  assert all(r["untuned_blocks"] is False for r in data["records"])
