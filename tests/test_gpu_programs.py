"""The standalone GPU programs (experiments/dense_gpu.py, block_probe.py, calibrate.py) in their
CPU-sized modes, as the device runs them (own process, absl flags), so they cannot rot.
(mgpu_token_gpu.py's: tests/test_mgpu_token.py, a file of its own for the workers' balance.)"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from experiments import hlo_kernels

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_program(script: str, *args: str) -> str:
  env = dict(os.environ, PYTHONPATH=_ROOT)
  proc = subprocess.run([sys.executable, os.path.join("experiments", script), *args], cwd=_ROOT,
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def test_dense_gpu_tiny_checks_and_times_fused_against_xla(tmp_path):
  out = tmp_path / "dense.json"
  # --check_variants: the variant (two changes combined with "+") is checked before it is timed.
  run_program("dense_gpu.py", "--tiny", f"--out={out}", "--dtypes=float32", "--batches=2",
              "--phase2=", "--python_chain=", "--variants=order_chunk+warps8", "--check_variants")
  data = json.loads(out.read_text())
  assert data["complete"] and data["checks_passed"] and data["fused_implementation"] == "interpret"
  checks = {r.get("variant"): r for r in data["rows"] if r["kind"] == "check"}
  assert set(checks) == {None, "order_chunk+warps8"}
  for check in checks.values():
    assert check["ok"] and max(check["rel_err_unroll"].values()) <= 1e-5
  timed = {(r["impl"], r.get("variant")): r for r in data["rows"] if r["kind"] == "time"}
  assert set(timed) == {("fused_unroll", None), ("xla_scan", None),
                        ("fused_unroll", "order_chunk+warps8")}
  for row in timed.values():
    assert row["per_token_ms"] > 0 and row["kernels_per_token"] > 0
  variant = timed[("fused_unroll", "order_chunk+warps8")]["config"]["mix"]
  assert (variant["order"], variant["num_warps"]) == ("chunk", 8)


def test_dense_gpu_tiny_persistent_loop_and_its_variants(tmp_path):
  # The persistent layer loop is checked and timed; "LOOP:VARIANT" varies it; a variant with
  # the barriers removed (results wrong by design) is timed only, never checked.
  out = tmp_path / "persistent.json"
  run_program("dense_gpu.py", "--tiny", f"--out={out}", "--dtypes=float32", "--batches=1",
              "--phase1=fused_persistent", "--phase2=", "--python_chain=",
              "--variants=persistent:noprefetch,persistent:nobarrier,"
              "persistent:rel_acq+prefetch_ops", "--check_variants")
  data = json.loads(out.read_text())
  assert data["complete"] and data["checks_passed"]
  checks = {r.get("variant"): r for r in data["rows"] if r["kind"] == "check"}
  assert set(checks) == {None, "noprefetch", "rel_acq+prefetch_ops"}
  for check in checks.values():
    assert max(check["rel_err_persistent"].values()) <= 1e-5
  timed = {r.get("variant"): r for r in data["rows"] if r["kind"] == "time"}
  assert set(timed) == {None, "noprefetch", "nobarrier", "rel_acq+prefetch_ops"}
  assert all(r["impl"] == "fused_persistent" and r["per_token_ms"] > 0 for r in timed.values())
  for name in ("noprefetch", "nobarrier"):
    assert timed[name]["config"]["prefetch"] == (name != "noprefetch")
  both = timed["rel_acq+prefetch_ops"]["config"]
  assert (both["barrier_order"], both["prefetch_operands"]) == ("release_acquire", True)
  assert timed[None]["config"]["barrier_order"] == "acq_rel"
  assert timed[None]["config"]["persistent"]


def test_barrier_gpu_tiny_counts_every_arrival(tmp_path):
  out = tmp_path / "barrier.json"
  # Every barrier order, with and without a load through each barrier (its sums checked).
  run_program("barrier_gpu.py", "--tiny", f"--out={out}", "--load_kb=0,1",
              "--orders=acq_rel,release_acquire,none")
  data = json.loads(out.read_text())
  assert data["interpret"] and data["barriers"] == 3
  seen = {(r["order"], r["load_kb"]) for r in data["records"]}
  assert seen == {(o, k) for o in ("acq_rel", "release_acquire", "none") for k in (0, 1)}
  for rec in data["records"]:
    assert "error" not in rec and rec["grid"] == 1 and rec["launch_us"] > 0


def test_block_probe_tiny_compares_step_loops_and_dense_paths(tmp_path):
  out = tmp_path / "block_probe.json"
  run_program("block_probe.py", "--tiny", f"--out={out}", "--repeats=1", "--methods=lazy,flash",
              "--dense=xla,fused")
  rows = json.loads(out.read_text())["rows"]
  keys = {(r["method"], r["dense"], r["unroll_steps"]) for r in rows}
  # flash blocks always unroll, so flash appears once per dense path
  assert keys == {("lazy", d, u) for d in ("xla", "fused") for u in (False, True)} | {
      ("flash", d, False) for d in ("xla", "fused")}
  for r in rows:
    assert "error" not in r, r
    assert r["per_step_ms"] > 0 and r["kernels_per_step"] > 0 and r["steps"] == 16


def test_calibrate_writes_a_table_level_by_level(tmp_path):
  stdout = run_program("calibrate.py", "--batches=1", "--layers=2", "--width=8", "--max_level=2",
                       f"--dir={tmp_path}", "--impls=direct,fft")
  assert stdout.count("best=") == 3
  doc = json.loads(next(tmp_path.glob("*.json")).read_text())
  table, measured = doc["tables"]["1"], doc["measured_us"]["1"]
  assert sorted(table) == ["0", "1", "2"]
  for level, times in measured.items():
    assert set(times) == {"direct", "fft"} and all(np.isfinite(v) for v in times.values())
    assert table[level] == min(times, key=times.get)


def test_large_copies_lists_big_copy_results_only():
  text = textwrap.dedent("""\
      ENTRY %main (p: f32[18,1,864,4096]) -> f32[18,1,864,4096] {
        %p = f32[18,1,864,4096]{3,2,1,0} parameter(0)
        %small = f32[4]{0} copy(%x)
        %big = f32[18,1,864,4096]{3,2,1,0} copy(%p)
        %s = (f32[8,1024,64]{2,1,0}, u32[]) copy-start(%q)
        ROOT %f = f32[18,1,864,4096]{3,2,1,0} fusion(%big), kind=kLoop, calls=%c
      }
      """)
  assert hlo_kernels.large_copies(text) == ["f32[18,1,864,4096]"]
  assert hlo_kernels.large_copies(text, min_bytes=16) == ["f32[4]", "f32[18,1,864,4096]"]


def test_trace_gpu_tiny_reads_kernel_events_from_the_profiler(tmp_path):
  out = tmp_path / "trace_gpu.json"
  stdout = run_program("trace_gpu.py", "--tiny", f"--out={out}", "--parts=mixer,all",
                       "--repeats=1", "--top=3", "--block_size=8")
  data = json.loads(out.read_text())
  assert [r["part"] for r in data["records"]] == ["mixer", "all"]
  for rec in data["records"]:
    assert rec["wall_us_per_step"] > 0 and rec["kernels_per_step"] > 0 and rec["lines"]
    assert 0 < rec["busy_us_per_step"] <= rec["kernel_us_per_step"] + 1e-9
    assert len(rec["top"]) <= 3 and not any(k["name"].startswith("$") for k in rec["top"])
    # The host's own events (dispatch of the block executables among them), no Python frames.
    host = [k["name"] for k in rec["host"]]
    assert 0 < len(host) <= 3 and not any(n.startswith("$") for n in host)
  assert data["config"]["block_size"] == 8
  assert "wrote" in stdout


def test_busy_time_is_the_union_of_intervals():
  from experiments.profile_events import busy_ns
  assert busy_ns([]) == 0
  assert busy_ns([(0, 10), (5, 15), (20, 30), (21, 22)]) == 25


def test_inplace_blocks_tiny_times_every_config_set(tmp_path):
  out = tmp_path / "inplace_blocks.json"
  run_program("inplace_blocks_gpu.py", "--tiny", f"--out={out}", "--levels=0,1", "--rounds=1")
  data = json.loads(out.read_text())
  seen = {(r["configs"], r["level"]) for r in data["rows"]}
  assert seen == {(c, q) for c in data["configs"] for q in (0, 1)}
  for r in data["rows"]:
    assert np.isfinite(r["us"]["pallas_inplace"]) and r["us"]["pallas_inplace"] > 0
    if r["configs"] == "current":
      assert set(r["us"]) == {"pallas_inplace", "direct", "direct_dot"}


@pytest.mark.parametrize("form", ["unrolled", "constant", "fori"])
def test_tile_kernels_tiny_times_tiles_and_steps_by_wall_and_kernel_time(tmp_path, form):
  out = tmp_path / "tile_kernels.json"
  args = {"unrolled": ["--loop=unrolled"], "fori": ["--loop=fori"],
          "constant": ["--loop=unrolled", "--constant_positions"]}[form]
  run_program("tile_kernels_gpu.py", "--tiny", f"--out={out}", "--levels=0,1",
              f"--hlo_dir={tmp_path / 'hlo'}", *args)
  data = json.loads(out.read_text())
  seen = {(r["variant"], r["level"]) for r in data["rows"]}
  variants = {"tile:pallas_inplace", "tile:direct", "tile:direct_dot", "step:pallas", "step:xla"}
  assert seen == {(v, q) for v in variants for q in (0, 1)}
  assert len(list((tmp_path / "hlo").iterdir())) == len(seen)
  for r in data["rows"]:
    assert r["loop"] == ("fori" if form == "fori" else "unrolled") and r["wall_us"] > 0
    assert r["constant_positions"] == (form == "constant")
    assert r["kernel_us"] >= 0 and r["kernels"] >= 0
    # The CPU profiler sees no events for some programs (inside a while loop, or XLA's small
    # tiles compiled into one function); the interpreted Pallas ones are many ops outside loops.
    if form != "fori" and "pallas" in r["variant"]:
      assert r["kernel_us"] > 0 and r["kernels"] > 0
  copies = {(r["variant"], r["level"]): r["buffer_copies"] for r in data["rows"]}
  # Positions compiled in make XLA's tiles copy the whole buffer (the GPU writes it out of place
  # instead); positions as an argument, unrolled or in a loop, leave only the CPU's XLA step at
  # U = 1 with copies.
  expect_copies = {("step:xla", 0)}
  if form == "constant":
    expect_copies |= {("step:xla", 1), ("tile:direct", 0), ("tile:direct_dot", 0)}
  assert {k for k, n in copies.items() if n} == expect_copies, copies
  assert {(s["level"], s["fast"], s["slow"]) for s in data["speedups"]} == {
      (q, f, s) for q in (0, 1) for f, s in (("tile:pallas_inplace", "tile:direct"),
                                             ("tile:pallas_inplace", "tile:direct_dot"),
                                             ("step:pallas", "step:xla"))}


def test_ptx_broadcast_forms_compute_the_same_product():
  # experiments/ptx_broadcast.py compares how Triton lowers three forms of one batched product;
  # they must be the same product (interpret mode, fresh random inputs, non-square shapes).
  from experiments import ptx_broadcast
  rng = np.random.default_rng()
  batch, rows, chunk, chunks = 4, 2, 16, 3
  x = rng.standard_normal((batch, chunk * chunks)).astype(np.float32)
  w = rng.standard_normal((rows, chunk * chunks)).astype(np.float32)
  want = x.astype(np.float64) @ w.T.astype(np.float64)
  for form in ptx_broadcast.FORMS:
    xs, ws = ptx_broadcast.shapes(form, batch, rows, chunk * chunks)
    got = ptx_broadcast.product(form, batch, rows, chunk, chunks, interpret=True)(
        x.reshape(xs), w.reshape(ws))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5, err_msg=form)
  with pytest.raises(ValueError, match="form must be one of"):
    ptx_broadcast.product("4d", batch, rows, chunk, chunks, interpret=True)


def test_dense_gpu_barrier_variant_undoes_the_batch_choice():
  # persistent_config polls at B = 2 (DATA_SYNC_BATCHES); the "barrier" variant keeps the
  # barriers there, for side-by-side timings against the default. dense_gpu defines absl flags
  # that other experiment modules define too, so it is imported in its own process, as the
  # device runs it.
  code = textwrap.dedent("""\
      from experiments import dense_gpu
      from flash_lcsm_jax.ops import pallas_layer as pal
      base = pal.persistent_config(864, 1728)
      assert base.for_batch(2, "float32").sync == "data_l1"
      for name in ("barrier", "sm2+barrier", "barrier+sm2"):
        config = dense_gpu.variant_config(name, base)
        assert config.for_batch(2, "float32").sync == "barrier", name
        assert config.for_batch(2, "bfloat16").sync == "barrier", name
        assert config.programs_per_sm == (2 if "sm2" in name else 1), name
      # sm1 / sm2 name a layout, from either base: the engine's base at bfloat16 B = 1 is sm2.
      sm1, sm2 = (pal.persistent_config(864, 1728, programs_per_sm=n) for n in (1, 2))
      for base in (sm1, sm2):
        assert dense_gpu.variant_config("sm1", base) == sm1
        assert dense_gpu.variant_config("sm2", base) == sm2
      assert dense_gpu.base_config("persistent", dense_gpu.Model("bfloat16", True).cfg,
                                   1).programs_per_sm == 2
      print("ok")
      """)
  env = dict(os.environ, PYTHONPATH=_ROOT)
  proc = subprocess.run([sys.executable, "-c", code], cwd=_ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == "ok"


def test_baselines_tiny_checks_every_form_against_float64(tmp_path):
  # Every form of the baselines' steps (lazy's read in three XLA layouts and as the Pallas
  # kernel, eager's write in two XLA layouts and as the kernel; kernels in interpret mode) is
  # checked against float64 on fresh random inputs before it is timed.
  out = tmp_path / "baselines.json"
  run_program("baselines_gpu.py", "--tiny", f"--out={out}", "--splits=2")
  data = json.loads(out.read_text())
  assert data["complete"] and data["checks_passed"]
  assert {(c["form"], c["splits"]) for c in data["checks"]} == {
      ("lazy:xla_bsd", 2), ("lazy:xla_sdb", 2), ("lazy:xla_sbd", 2), ("lazy:pallas", 2),
      ("eager:xla_sbd", 2), ("eager:xla_bsd", 2), ("eager:pallas", 2)}
  assert all(c["rel_err"] <= 1e-5 for c in data["checks"])
  timed = [r for r in data["rows"] if "ms" in r]
  assert len(timed) == 2 * 7 and all(r["TBps_least"] > 0 for r in timed)


def test_product_forms_compute_the_phase_products(tmp_path):
  # experiments/product_forms_gpu.py times ways of forming the batched products of one dense
  # phase; every form must compute the product (interpret mode, against an einsum at HIGHEST on
  # random inputs; the out phase's 864 columns end in a masked chunk), and a bad form is an
  # error, not a silent skip.
  out = tmp_path / "forms.json"
  run_program("product_forms_gpu.py", "--interpret", "--phases=out", "--batches=8,1",
              "--forms=bcast,rows_t,rows_g,dot1,nope", "--layers=2", f"--out={out}")
  entries = {(e["form"], e["batch"]): e for e in json.loads(out.read_text())["entries"]}
  forms = ("bcast", "rows_t", "rows_g", "dot1", "nope")
  assert set(entries) == {(f, b) for f in forms for b in (8, 1)}
  for (form, _), entry in entries.items():
    if form == "nope":
      assert "form must be" in entry["error"]
    else:
      assert "error" not in entry and entry["rel_error"] < 1e-5, entry
