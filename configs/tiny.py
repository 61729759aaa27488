"""Tiny Hyena for CPU smoke runs (seconds)."""

import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict(dict(
      vocab_size=256, d_model=64, n_layers=2, d_inner=128, l_max=4096, filter_order=16,
      emb_dim=5, filter_inner_mlps=2, filter_sin_freq=1.0, short_filter_order=3,
      tie_embeddings=True, dtype="float32"))
  c.seed = 0
  c.batch = 2
  c.prompt = "Flash inference "  # encoded as bytes
  c.num_tokens = 256
  c.methods = "flash,lazy,eager"
  c.tau = "hybrid"
  c.sampler = "greedy"
  c.temperature = 1.0
  c.top_k = 0
  c.top_p = 1.0
  c.block_size = 16
  c.dense_path = ""  # per-token dense path: "" (auto: the persistent Pallas kernel on GPU for B <= 2), xla, fused, persistent
  c.baseline_kernels = ""  # lazy / eager steps: "" (xla), xla, pallas (filter tiles once per batch)
  c.checkpoint = ""  # load parameters from this checkpoint instead of random init
  c.import_modulation_shift = 0.0  # reference state dicts only: 0.05 for HyenaDNA standalone/HF
  c.precision = "highest"  # matmul precision: default | high | highest
  c.verify_lengths = "1,3,64,1000"
  c.verify_prompts = "0,1,17"
  c.verify_tolerance = 1e-5
  return c
