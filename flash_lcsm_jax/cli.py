"""The generate and verify jobs of run.py (thin wrappers over the library)."""

from __future__ import annotations

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from flash_lcsm_jax import HyenaConfig, Generator, Sampler, forward, init_params
from flash_lcsm_jax.engine import sampling, schedule
from flash_lcsm_jax.ops import tau as tau_ops

PRECISIONS = ("default", "high", "highest")


def set_precision(name: str):
  if name not in PRECISIONS:
    raise ValueError(f"config.precision must be one of {PRECISIONS}, got {name!r}")
  jax.config.update("jax_default_matmul_precision", None if name == "default" else name)


def build_model(config):
  """(params, HyenaConfig) from config.checkpoint if set, else random init from config.model."""
  if config.get("checkpoint"):
    from flash_lcsm_jax.io import checkpoint
    # Only used when the file is a reference (safari / HyenaDNA) state dict: HyenaDNA's
    # standalone / Hugging Face code uses a decay shift of 0.05, safari 0.0.
    return checkpoint.load_model(config.checkpoint,
                                 modulation_shift=config.get("import_modulation_shift", 0.0))
  cfg = HyenaConfig.from_mapping(config.model)
  return init_params(jax.random.PRNGKey(config.seed), cfg), cfg


def encode_prompt(text: str, batch: int, cfg: HyenaConfig) -> np.ndarray:
  ids = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) % cfg.vocab_size
  if ids.size == 0:
    raise ValueError("config.prompt must not be empty")
  return np.tile(ids[None], (batch, 1))


def decode_bytes(ids) -> str:
  return bytes(int(i) % 256 for i in ids).decode("utf-8", errors="replace")


def environment() -> dict:
  dev = jax.devices()[0]
  return {"device": dev.device_kind, "platform": dev.platform, "jax": jax.__version__,
          "python": platform.python_version(),
          "matmul_precision": str(jax.config.jax_default_matmul_precision)}


def enable_compilation_cache(path: str):
  """Persistent XLA compilation cache in `path` ('~' expanded; '' leaves it off), unless one is
  configured already (JAX_COMPILATION_CACHE_DIR): later runs with the same shapes load their
  executables instead of compiling them."""
  if jax.config.jax_compilation_cache_dir or not path:
    return
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def make_generator(params, cfg, config) -> Generator:
  """The config's Generator (block size, dense path, baseline kernels; "" or a missing key: the
  default)."""
  dense = config.get("dense_path", "") or None
  baseline = config.get("baseline_kernels", "") or None
  return Generator(params, cfg, config.block_size, dense_path=dense, baseline_kernels=baseline)


def generate_main(config) -> int:
  set_precision(config.precision)
  params, cfg = build_model(config)
  prompt = encode_prompt(config.prompt, config.batch, cfg)
  sampler = sampling.from_name(config.sampler, config.temperature, config.top_k, config.top_p)
  gen = make_generator(params, cfg, config)
  rng = jax.random.PRNGKey(config.seed)
  env = environment()
  source = config.checkpoint or f"random weights (seed {config.seed})"
  print(f"model: {cfg.n_layers} layers, width {cfg.d_model}, vocab {cfg.vocab_size}, "
        f"l_max {cfg.l_max}, {source}; device {env['device']}, jax {env['jax']}")
  print(f"prompt: {config.prompt!r} x batch {config.batch}; {config.num_tokens} new tokens; "
        f"sampler {sampler}; dense path {gen.dense_path_for(config.batch)}")
  outputs = {}
  for method in config.methods.split(","):
    gen.generate(prompt, config.num_tokens, method=method, tau=config.tau, sampler=sampler,
                 rng=rng)  # compile
    start = time.perf_counter()
    result = gen.generate(prompt, config.num_tokens, method=method, tau=config.tau,
                          sampler=sampler, rng=rng)
    seconds = time.perf_counter() - start
    outputs[method] = result.tokens
    rate = result.tokens.size / seconds
    print(f"[{method:5s}] {rate:10.1f} tokens/s  ({seconds * 1e3:.1f} ms)  "
          f"row 0: {decode_bytes(result.tokens[0][:80])!r}")
  methods = list(outputs)
  same = all(np.array_equal(outputs[methods[0]], outputs[m]) for m in methods[1:])
  print(f"all methods produced the same tokens: {same}")
  return 0


def verify_main(config, out_path: str = "") -> int:
  """Teacher-forced logits of every method and tau against the parallel forward."""
  set_precision(config.precision)
  params, cfg = build_model(config)
  gen = make_generator(params, cfg, config)
  lengths = [int(x) for x in str(config.verify_lengths).split(",")]
  prompts = [int(x) for x in str(config.verify_prompts).split(",")]
  key = jax.random.PRNGKey(config.seed + 1)
  rows, ok = [], True
  for L in lengths:
    key, sub = jax.random.split(key)
    tokens = jax.random.randint(sub, (config.batch, L), 0, cfg.vocab_size)
    ref = forward(params, cfg, tokens, filters=gen.filters(L))
    for P in sorted({min(p, L) for p in prompts}):
      for method, tau in [("lazy", "-"), ("eager", "-")] + [("flash", t) for t in
                                                          tau_ops.names() + ["hybrid"]]:
        if method == "flash" and tau != "hybrid" and tau != "fft":
          needed = schedule.max_tile_level(P, L)
          if needed > tau_ops.get(tau).max_level:  # it cannot run the largest tiles alone
            rows.append({"length": L, "prompt": P, "method": method, "tau": tau,
                         "skipped": f"needs tile level {needed} > max_level "
                                    f"{tau_ops.get(tau).max_level}"})
            continue
        logits = gen.decode_logits(tokens, P, method=method,
                                   tau="hybrid" if tau == "-" else tau)
        err = float(jnp.linalg.norm(logits - ref) / jnp.linalg.norm(ref))
        passed = err <= config.verify_tolerance
        ok &= passed
        rows.append({"length": L, "prompt": P, "method": method, "tau": tau,
                     "rel_error": err, "passed": passed})
        print(f"L={L:6d} P={P:5d} {method:5s} tau={tau:7s} rel.err={err:.2e} "
              f"{'ok' if passed else 'FAIL'}")
  report = {"environment": environment(), "model": cfg.to_dict(),
            "dense_path": gen.dense_path_for(config.batch),
            "tolerance": config.verify_tolerance, "passed": bool(ok), "checks": rows}
  if out_path:
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
      json.dump(report, f, indent=1)
    print(f"report written to {out_path}")
  print("PASSED" if ok else "FAILED")
  return 0 if ok else 1
