"""Greedy generation from a trained checkpoint: flash vs lazy token equality, and a sample.

  PYTHONPATH=. python experiments/trained_check.py --checkpoint=runs/train --steps=4096 \
      --out=results/trained_check.json
"""

import json
import time

from absl import app, flags
import jax
import numpy as np

from flash_lcsm_jax import Generator, Sampler, cli, load_model

_CKPT = flags.DEFINE_string("checkpoint", "runs/train", "Model checkpoint (file or run dir).")
_STEPS = flags.DEFINE_integer("steps", 4096, "Greedy tokens to generate.")
_PROMPT = flags.DEFINE_string("prompt", "import os\n\ndef ", "Prompt text (bytes).")
_OUT = flags.DEFINE_string("out", "results/trained_check.json", "JSON output.")


def main(_):
  params, cfg = load_model(_CKPT.value)
  gen = Generator(params, cfg)
  prompt = cli.encode_prompt(_PROMPT.value, 1, cfg)
  tokens, seconds = {}, {}
  for method in ("flash", "lazy"):
    gen.generate(prompt, 64, method=method)  # compile the small blocks
    start = time.perf_counter()
    tokens[method] = gen.generate(prompt, _STEPS.value, method=method).tokens[0]
    seconds[method] = time.perf_counter() - start
  same = bool(np.array_equal(tokens["flash"], tokens["lazy"]))
  first_diff = None if same else int(np.argmax(tokens["flash"] != tokens["lazy"]))
  sample = gen.generate(prompt, 400, sampler=Sampler(0.8, top_k=40),
                        rng=jax.random.PRNGKey(0)).tokens[0]
  doc = {"environment": cli.environment(), "model": cfg.to_dict(), "steps": _STEPS.value,
         "greedy_tokens_equal": same, "first_difference": first_diff,
         "seconds_incl_compile_of_large_tiles": seconds,
         "greedy_text_head": cli.decode_bytes(tokens["flash"][:600]),
         "sampled_text": _PROMPT.value + cli.decode_bytes(sample)}
  with open(_OUT.value, "w") as f:
    json.dump(doc, f, indent=1)
  print(json.dumps({k: v for k, v in doc.items() if k != "model"}, indent=1))


if __name__ == "__main__":
  app.run(main)
