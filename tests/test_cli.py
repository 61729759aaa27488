"""run.py end to end, as a user runs it (subprocesses: exit codes and absl flag parsing are part
of the contract), with tiny overrides so each run compiles in seconds."""

import json
import os
import subprocess
import sys

import pytest

from flash_lcsm_jax import tau_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*flags, timeout=300, **env_vars):
  """run.py in a subprocess; env_vars set (a value of None: unset) in its environment."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  for key, value in env_vars.items():
    env.pop(key, None)
    if value is not None:
      env[key] = value
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), *flags], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)
  return proc.returncode, proc.stdout + proc.stderr


def test_generate_with_every_method():
  code, out = run("--config.num_tokens=8")
  assert code == 0, out
  for method in ("flash", "lazy", "eager"):
    assert f"[{method:5s}]" in out, out
  assert "8 new tokens" in out
  assert "all methods produced the same tokens: True" in out, out


def test_verify_writes_a_passing_json_report(tmp_path):
  path = tmp_path / "reports" / "v.json"  # the directory does not exist yet
  # One prompt length: every tau at every (L, P) of the grid is tests/test_engines.py's job.
  code, out = run("--mode=verify", "--config.verify_lengths=9", "--config.verify_prompts=3",
                  f"--out={path}")
  assert code == 0, out
  assert "PASSED" in out
  report = json.loads(path.read_text())
  assert report["passed"] is True
  assert report["tolerance"] == 1e-5
  assert report["environment"]["matmul_precision"] == "highest"
  assert report["environment"]["platform"] == "cpu"
  assert report["model"]["d_model"] == 64  # configs/tiny.py
  checks = report["checks"]
  seen = {(c["length"], c["prompt"], c["method"], c["tau"]) for c in checks}
  want = {(9, 3, m, "-") for m in ("lazy", "eager")}
  want |= {(9, 3, "flash", t) for t in tau_names() + ["hybrid"]}
  assert seen == want  # every method and tau
  for c in checks:  # 9 positions need tiles up to level 3: every tau runs them
    assert "skipped" not in c, c
    assert c["passed"] is True and 0 <= c["rel_error"] <= 1e-5, c


def test_verify_with_an_impossible_tolerance_fails(tmp_path):
  path = tmp_path / "v.json"
  code, out = run("--mode=verify", "--config.verify_lengths=2", "--config.verify_prompts=1",
                  "--config.verify_tolerance=0", f"--out={path}")
  assert code != 0, out
  assert "FAILED" in out
  report = json.loads(path.read_text())
  assert report["passed"] is False and report["tolerance"] == 0
  ran = [c for c in report["checks"] if "skipped" not in c]
  assert ran and any(not c["passed"] for c in ran)
  assert all(c["passed"] == (c["rel_error"] <= 0) for c in ran)


def test_generate_with_the_fused_dense_path():
  code, out = run("--config.num_tokens=6", "--config.methods=flash,lazy",
                  "--config.dense_path=fused")
  assert code == 0, out
  assert "dense path fused" in out, out
  assert "all methods produced the same tokens: True" in out, out


def test_bench_gives_jax_most_of_the_gpu_unless_told_otherwise(tmp_path):
  """--mode=bench sets XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 when unset (flash at 2^17 on an
  80 GB GPU needs it); each JSON records what the run had."""
  bench = ("--mode=bench", "--size=cpu", "--experiment=tiling", f"--out={tmp_path}")
  code, out = run(*bench, XLA_PYTHON_CLIENT_MEM_FRACTION=None)
  assert code == 0, out
  env = json.loads((tmp_path / "tiling.json").read_text())["environment"]
  assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.92"
  code, out = run(*bench, XLA_PYTHON_CLIENT_MEM_FRACTION="0.5")
  assert code == 0, out
  env = json.loads((tmp_path / "tiling.json").read_text())["environment"]
  assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.5"


@pytest.mark.parametrize("flags,match", [
    (("--mode=nope",), "mode"),
    (("--config.dense_path=cuda",), "dense_path must be None or one of"),
    (("--config.baseline_kernels=cuda",), "baseline_kernels must be None or one of"),
    (("--config.model.d_model=0",), "HyenaConfig.d_model must be a positive int"),
    (("--config.precision=float64",), "config.precision must be one of"),
    (("unexpected_positional",), "unexpected arguments"),
])
def test_bad_command_lines_fail_with_a_message(flags, match):
  code, out = run(*flags)
  assert code != 0, out
  assert match in out, out


def verify_with_a_fake_engine(monkeypatch, tmp_path, lengths, prompts):
  """verify_main in process on a tiny numpy-random model, with decode_logits answered by the
  parallel forward: checks which rows the report runs or skips, without compiling engines."""
  from configs import tiny
  from conftest import make_model
  from flash_lcsm_jax import cli, forward, materialise_filter

  params, cfg = make_model(seed=401, l_max=256)

  class FakeGenerator:

    def __init__(self, params, cfg, block_size, **unused):
      self.params, self.cfg = params, cfg

    def dense_path_for(self, batch):
      return "xla"

    def filters(self, length):
      return materialise_filter(self.params["layers"]["filter"], self.cfg, length)

    def decode_logits(self, tokens, prompt_len, method, tau):
      return forward(self.params, self.cfg, tokens)

  monkeypatch.setattr(cli, "build_model", lambda config: (params, cfg))
  monkeypatch.setattr(cli, "Generator", FakeGenerator)
  config = tiny.get_config()
  config.batch, config.verify_lengths, config.verify_prompts = 1, lengths, prompts
  path = tmp_path / "v.json"
  assert cli.verify_main(config, str(path)) == 0
  return {(c["length"], c["tau"]): c for c in json.loads(path.read_text())["checks"]
          if c["method"] == "flash"}


def test_verify_skips_taus_that_cannot_run_the_largest_tile(monkeypatch, tmp_path):
  rows = verify_with_a_fake_engine(monkeypatch, tmp_path, "129", "0")
  # 129 generated positions need a 128-wide tile (level 7): 'direct' stops at level 6.
  assert "skipped" in rows[129, "direct"] and "7" in rows[129, "direct"]["skipped"]
  assert rows[129, "fft"]["passed"] and rows[129, "hybrid"]["passed"]


def test_fixed_verify_skips_runnable_taus_at_power_of_two_lengths(monkeypatch, tmp_path):
  """Regression (fixed; was: cli.verify_main): `needed = max(L - P, 1).bit_length() - 1` is one level too high
  when L - P is a power of two (the step after position L - P runs no tile): at L = 128, P = 0
  the largest tile is level 6, which 'direct' runs, yet the report skips it ('needs tile
  level 7'). Use (L - P - 1).bit_length() - 1, or the schedule itself."""
  rows = verify_with_a_fake_engine(monkeypatch, tmp_path, "128", "0")
  assert "skipped" not in rows[128, "direct"], rows[128, "direct"]


def test_compilation_cache_is_written_where_asked_and_can_be_turned_off(tmp_path):
  cache = tmp_path / "cache"
  code, out = run("--config.num_tokens=4", "--config.methods=flash",
                  f"--compilation_cache={cache}")
  assert code == 0, out
  assert cache.is_dir() and any(cache.iterdir()), "no executables were cached"
  home = tmp_path / "home"  # '' must not fall back to the default under ~/.cache
  env = dict(os.environ, JAX_PLATFORMS="cpu", HOME=str(home))
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--config.num_tokens=4",
                         "--config.methods=flash", "--compilation_cache="], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert not (home / ".cache" / "flash_lcsm_jax").exists()
