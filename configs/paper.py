"""Paper-size Hyena (close to the 153M Hyena of the Flash Inference paper)."""

from configs import tiny


def get_config():
  c = tiny.get_config()
  c.model.update(dict(vocab_size=50257, d_model=864, n_layers=18, d_inner=1728, l_max=2**17,
                      filter_order=64, emb_dim=33, short_filter_order=3))
  c.batch = 1
  c.num_tokens = 1024
  c.verify_lengths = "4096"
  c.verify_prompts = "0,777"
  c.verify_tolerance = 1e-4
  return c
