"""Shared test setup: float32 with HIGHEST matmul precision, small random Hyena models.

Exactness checks compare float32 engines against float32 / float64 references, so matmuls must
not silently drop to bfloat16 passes (XLA:CPU default) or TF32 (GPU default).
"""

import math
import os
import sys
import zlib

# Compilation is most of the suite's time (tiny models, 2 CPU cores). XLA's LLVM backend at -O0
# compiles ~25% faster; the tests' programs run for milliseconds, so their slower code costs
# nothing, and every numerical check still compares against its reference. Set here, before
# jax starts its backends; the experiments the tests run in subprocesses inherit it. A flag
# already in XLA_FLAGS wins.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_backend_optimization_level=0").strip()

from absl.testing import parameterized
import jax
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

jax.config.update("jax_enable_x64", False)
jax.config.update("jax_default_matmul_precision", "highest")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flash_lcsm_jax import HyenaConfig, init_params  # noqa: E402


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: one of the longer CPU tests (seconds of compile)")


def random_params(cfg: HyenaConfig, seed: int, perturb: bool = True):
  """Random parameters with the layout of init_params, drawn with numpy (no compile).

  Matmul weights are uniform +-1/sqrt(fan_in) as in init_params; with perturb=True the
  parameters init_params sets to constants (norm scales and biases, Sin frequencies, decay
  rates) get noise too, so a reference test sees every parameter act.
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), cfg))
  M, D = cfg.n_layers, cfg.d_model
  max_decay = math.log(cfg.decay_target) / cfg.decay_fast_pct
  min_decay = math.log(cfg.decay_target) / cfg.decay_slow_pct
  noise = 0.3 if perturb else 0.0

  def leaf(path, sd):
    names = tuple(p.key for p in path)
    shape, name = sd.shape, names[-1]
    if names == ("embed",):
      value = rng.normal(size=shape)
    elif name == "deltas":
      value = np.linspace(min_decay, max_decay, D)[None] * (1 + noise * rng.uniform(
          -1, 1, (M, D)))
    elif name.startswith("freq"):
      value = cfg.filter_sin_freq * (1 + noise * rng.uniform(-1, 1, shape))
    elif name == "scale":
      value = 1 + noise * rng.normal(size=shape)
    elif names[-2:] in (("filter", "bias"),):
      value = rng.normal(size=shape)
    elif name == "bias" and names[1] in ("norm1", "norm2") or names[0] == "final_norm":
      value = noise * rng.normal(size=shape)
    else:  # kernels, filter MLP weights, dense biases, untied unembedding
      fan_in = shape[-2] if len(shape) >= 2 and name not in ("bias", "b_in", "b_hidden") else (
          shape[-1])
      value = rng.uniform(-1, 1, shape) / math.sqrt(fan_in)
    return jnp.asarray(value, sd.dtype)

  return jax.tree_util.tree_map_with_path(leaf, shapes)


_MODEL_CACHE = {}


def make_model(seed: int = 0, perturb: bool = True, **overrides):
  """(params, cfg) of a small random Hyena, cached by arguments (params are immutable)."""
  key = (seed, perturb, tuple(sorted(overrides.items())))
  if key not in _MODEL_CACHE:
    base = dict(vocab_size=32, d_model=8, n_layers=2, d_inner=16, l_max=4096, filter_order=8,
                emb_dim=5, filter_inner_mlps=1)
    base.update(overrides)
    cfg = HyenaConfig(**base)
    _MODEL_CACHE[key] = (random_params(cfg, seed, perturb), cfg)
  return _MODEL_CACHE[key]


def rel_err(got, want) -> float:
  """||got - want|| / ||want|| over all elements, in float64."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def max_position_rel_err(got, want) -> float:
  """Largest per-position relative error of logits (..., V)."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  num = np.linalg.norm(got - want, axis=-1)
  den = np.maximum(np.linalg.norm(want, axis=-1), 1e-300)
  return float(np.max(num / den)) if num.size else 0.0


@pytest.fixture
def np_rng(request):
  """A numpy Generator seeded from the test id: fresh inputs per test, reproducible runs."""
  import zlib
  return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


GPU_BACKENDS = ("gpu", "cuda", "rocm")


class KernelTestCase(parameterized.TestCase):
  """Base of the Pallas kernel tests. INTERPRET = False runs the compiled (Triton) kernels and
  skips without a GPU; a subclass with INTERPRET = True runs the same tests in interpret mode.
  self.implementation names the mode; self.rng is seeded by the test's id (fresh per test,
  reproducible per test)."""
  INTERPRET = False

  def setUp(self):
    super().setUp()
    if not self.INTERPRET and jax.default_backend() not in GPU_BACKENDS:
      self.skipTest("compiled Pallas (Triton) kernels need a GPU")
    self.implementation = "interpret" if self.INTERPRET else "pallas"
    self.rng = np.random.default_rng(zlib.crc32(self.id().encode()))


def lower_for_cuda(test, traced) -> str:
  """StableHLO text of a traced kernel lowered for CUDA (the Pallas -> Triton lowering), on any
  host; skips `test` where this jax cannot: no cross-platform lowering, or a jaxlib (> 0.10.2)
  that compiles Triton while lowering and so needs CUDA."""
  try:
    return traced.lower(lowering_platforms=("cuda",)).as_text()
  except TypeError as e:
    test.skipTest(f"cannot lower for CUDA here: {e}")
  except RuntimeError as e:
    if "Triton compilation handler" not in str(e):
      raise
    test.skipTest(f"cannot compile Triton for CUDA here: {e}")


def triton_ir(test, traced) -> list[str]:
  """The Triton IR text of every Pallas kernel that lowering `traced` for CUDA lowers (see
  lower_for_cuda; captured as experiments/ptx_stats does). jax's caches are cleared first: a
  kernel lowered before (by another test in this process) would otherwise come from the cache
  without being lowered again."""
  from experiments.ptx_stats import captured_triton_ir  # pylint: disable=g-import-not-at-top
  jax.clear_caches()
  with captured_triton_ir() as captured:
    lower_for_cuda(test, traced)
  return captured


def level_shape_cases(levels, shapes, full_level=None):
  """(level, shape) pairs covering every level and every shape without their product: each
  level once with the shapes taken in turn, plus every shape at `full_level` (default: the
  middle level). The kernels' code paths depend on the level and the shape separately (tile
  size; padding and blocking), and interpret-mode compiles dominate the suite's time."""
  levels, shapes = tuple(levels), tuple(shapes)
  full_level = levels[len(levels) // 2] if full_level is None else full_level
  cases = [(level, shapes[i % len(shapes)]) for i, level in enumerate(levels)]
  cases += [(full_level, s) for s in shapes if (full_level, s) not in cases]
  return [dict(testcase_name=f"_U{1 << level}_{'x'.join(map(str, s))}", level=level, shape=s)
          for level, s in cases]
