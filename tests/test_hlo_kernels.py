"""Kernel counts from optimized HLO (experiments/hlo_kernels.py) and the result merger."""

import textwrap

import jax
import jax.extend.core
import pytest

from experiments import collect, common, hlo_kernels
from experiments.engine_probe import random_state
from flash_lcsm_jax import Generator
from flash_lcsm_jax.ops import pallas_inplace

HLO = textwrap.dedent("""\
    HloModule m

    %fused_a (p: f32[4]) -> f32[4] {
      %p = f32[4]{0} parameter(0)
      ROOT %e = f32[4]{0} exponential(%p)
    }

    %body (t: (s32[], f32[4])) -> (s32[], f32[4]) {
      %t = (s32[], f32[4]{0}) parameter(0)
      %i = s32[] get-tuple-element(%t), index=0
      %x = f32[4]{0} get-tuple-element(%t), index=1
      %f = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_a
      %s = ((f32[4]{0}), f32[4]{0}) fusion-start(%f), kind=kLoop, calls=%fused_a
      %d = f32[4]{0} fusion-done(%s)
      ROOT %r = (s32[], f32[4]{0}) tuple(%i, %d)
    }

    %cond (t: (s32[], f32[4])) -> pred[] {
      %t = (s32[], f32[4]{0}) parameter(0)
      %i = s32[] get-tuple-element(%t), index=0
      %c = s32[] constant(5)
      ROOT %lt = pred[] compare(%i, %c), direction=LT
    }

    ENTRY %main (x: f32[4]) -> f32[4] {
      %x = f32[4]{0} parameter(0)
      %z = s32[] constant(0)
      %t = (s32[], f32[4]{0}) tuple(%z, %x)
      %w = (s32[], f32[4]{0}) while(%t), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"5"}}
      %y = f32[4]{0} get-tuple-element(%w), index=1
      ROOT %c = f32[4]{0} copy(%y)
    }
    """)


def test_counts_loops_by_trip_count_and_async_pairs_once():
  c = hlo_kernels.count(HLO)
  # body: fusion + fusion-start per trip (5), condition: compare per check (6), entry: copy.
  assert c.by_opcode == {"fusion": 5, "fusion-start": 5, "compare": 6, "copy": 1}
  assert c.total == 17 and c.unknown_trip_counts == 0


def test_unknown_trip_count_is_reported():
  c = hlo_kernels.count(HLO.replace(', backend_config={"known_trip_count":{"n":"5"}}', ""))
  assert c.unknown_trip_counts == 1 and c.by_opcode["fusion"] == 1


def test_rejects_text_without_entry():
  with pytest.raises(ValueError, match="ENTRY"):
    hlo_kernels.count("HloModule m\n")


@pytest.mark.parametrize("layers", [1, 3])
def test_engine_block_count_grows_with_layers(layers):
  """A compiled flash block: the scanned layer loop counts M times, as the unrolled one does."""
  counts = {}
  for unroll in (False, True):
    cfg = common.model_config("cpu", n_layers=layers)
    gen = Generator(common.random_params(cfg), cfg, 4, unroll_layers=unroll)
    plan, consts = gen.plan("flash", "fft", 0, 16, 1)
    state = random_state(plan, cfg, 1, None)()
    text = gen.compiled_block_text(plan, consts, state, 0, "dense")
    counts[unroll] = hlo_kernels.count(text)
    assert counts[unroll].unknown_trip_counts == 0
  for c in counts.values():
    assert c.total >= 4 * layers * 3  # >= 3 launches per layer and step
  ratio = counts[False].total / counts[True].total
  assert 0.5 < ratio < 3.0, (counts[False].total, counts[True].total)


def _part(records, config=True, complete=True, flags=""):
  env = {"device": "X", "XLA_FLAGS": flags}
  return {"experiment": "sweep_layers", "environment": env, "config": {"a": 1} if config else {},
          "records": records, "wall_s": 1.0, **({} if complete else {"complete": False})}


def test_collect_merges_parts_and_drops_points_measured_elsewhere():
  a = _part([{"label": "lazy", "value": 6, "seconds": 1.0},
             {"label": "lazy", "value": 36, "skipped": "budget"},
             {"label": "flash", "value": 36, "skipped": "budget"}])
  b = _part([{"label": "lazy", "value": 36, "variant": None, "seconds": 2.0}], config=False,
            complete=False, flags="--xla_gpu_autotune_level=0")
  out = collect.merge([a, b])
  assert [(r["label"], r["value"], "skipped" in r) for r in out["records"]] == [
      ("lazy", 6, False), ("flash", 36, True), ("lazy", 36, False)]
  assert out["config"] == {"a": 1} and [p["complete"] for p in out["parts"]] == [True, False]
  assert [p["environment"] for p in out["parts"]] == [a["environment"], b["environment"]]


def test_collect_refuses_mixed_devices_and_experiments():
  a, b = _part([]), _part([])
  b["environment"] = {"device": "Y"}
  with pytest.raises(ValueError, match="devices"):
    collect.merge([a, b])
  b = {**_part([]), "experiment": "other"}
  with pytest.raises(ValueError, match="experiments"):
    collect.merge([a, b])


def test_flash_block_gives_its_kernels_the_block_start_and_literal_offsets():
  """Every fused step of a flash block takes the block's first position (the state's, one
  value) and its index in the block as a literal: no step computes a position for a Pallas
  kernel, which on the GPU costs a kernel launch per step (session 17's trace)."""
  cfg = common.model_config("cpu", n_layers=2)
  gen = Generator(common.random_params(cfg), cfg, 8)
  plan, consts = gen.plan("flash", "pallas_inplace", 0, 64, 1)
  state = random_state(plan, cfg, 1, None)()
  jaxpr = gen.traced_block(plan, consts, state, 1, "mixer").jaxpr
  position, = [v for v in jaxpr.jaxpr.invars if v.aval.shape == () and v.aval.dtype == "int32"]
  # (taps, buf, u, t, offset) of the fused step, (taps, buf, t, offset) of the tile alone.
  operands = {"step_pallas": slice(3, 5), "inplace_pallas": slice(2, 4)}
  kernels = [e for e in jaxpr.eqns if e.params.get("name") in operands]
  # Block 1: levels 0 1 0 2 0 1 0 4; the last (a boundary tile) runs after the block.
  assert len(kernels) == 7
  assert {e.params["name"] for e in kernels} == {
      "step_pallas" if q in pallas_inplace.FUSED_STEP_LEVELS else "inplace_pallas"
      for q in (0, 1, 2)}
  for index, e in enumerate(kernels):
    t, offset = e.invars[operands[e.params["name"]]]
    assert t is position
    assert isinstance(offset, jax.extend.core.Literal) and int(offset.val) == index
