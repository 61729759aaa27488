"""flash_lcsm_jax: exact, fast autoregressive generation for long convolution sequence models.

Public API:
  HyenaConfig, init_params, forward                       the model
  Generator, generate, decode_logits, Sampler             generation (lazy | eager | flash)
  DecodeState, GenerateResult
  tau_names                                               tile-contribution implementations
  load_model, save_model, load_reference                  checkpoints and reference imports
"""

from flash_lcsm_jax.config import HyenaConfig
from flash_lcsm_jax.engine.generation import (DecodeState, GenerateResult, Generator,
                                              decode_logits, generate)
from flash_lcsm_jax.engine.mixers import METHODS
from flash_lcsm_jax.engine.sampling import Sampler
from flash_lcsm_jax.io.checkpoint import load_model, save_model
from flash_lcsm_jax.io.torch_import import load_reference
from flash_lcsm_jax.models.hyena import forward, init_params, materialise_filter
from flash_lcsm_jax.ops.tau import names as tau_names

__all__ = [
    "HyenaConfig", "init_params", "forward", "materialise_filter", "Generator", "generate",
    "decode_logits", "Sampler", "DecodeState", "GenerateResult", "METHODS", "tau_names",
    "load_model", "save_model", "load_reference",
]
__version__ = "0.1.0"
