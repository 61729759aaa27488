"""Train a small byte-level Hyena on a folder of text (default: Python's standard library).

  python run.py --mode=train --config=configs/train.py
  python run.py --mode=train --config=configs/train.py --config.train.steps=200 \
      --config.train.corpus_dir=/path/to/texts
  python run.py --mode=generate --config=configs/train.py --config.checkpoint=runs/train

A run resumes from the latest checkpoint in train.ckpt_dir automatically.
"""

import ml_collections

from configs import tiny


def get_config():
  c = tiny.get_config()
  c.model.update(dict(vocab_size=256, d_model=128, n_layers=4, d_inner=256, l_max=2048,
                      filter_order=64, emb_dim=9, filter_inner_mlps=2, filter_sin_freq=10.0,
                      short_filter_order=3, tie_embeddings=True, dtype="float32"))
  c.precision = "default"
  # Generation from the trained model (--mode=generate with --config.checkpoint=...).
  c.prompt = "def "
  c.batch = 1
  c.num_tokens = 512
  c.methods = "flash"
  c.sampler = "top_k"
  c.temperature = 0.8
  c.top_k = 40
  c.train = ml_collections.ConfigDict(dict(
      steps=1000,
      batch_size=16,
      seq_len=256,
      learning_rate=3e-3,
      warmup_steps=100,
      min_lr_ratio=0.1,  # the cosine decays to learning_rate * min_lr_ratio
      b1=0.9,
      b2=0.98,
      weight_decay=0.1,  # on embeddings and dense kernels only
      clip_norm=1.0,  # global gradient-norm clipping
      log_every=10,
      eval_every=200,
      eval_batches=8,
      ckpt_every=200,
      keep_checkpoints=3,
      workdir="runs/train",  # history.json, loss.png, model.safetensors
      ckpt_dir="",  # "" means <workdir>/checkpoints
      corpus_dir="",  # "" means the Python standard library's sources
      corpus_pattern="",  # file-name pattern; "" means *.py (stdlib) or * (any other folder)
      holdout_fraction=0.05,
      max_corpus_bytes=0,  # 0: read the whole folder
      sample_tokens=256,  # generate this many bytes from `prompt` after training (0: skip)
  ))
  return c
