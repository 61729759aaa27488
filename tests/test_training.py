"""Training: byte data pipeline, optimiser, loss going down, exact checkpoint resume (also after
a real SIGKILL), and the end-to-end train -> checkpoint -> generate path."""

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from configs import train as train_config
from flash_lcsm_jax import Generator, HyenaConfig, data, init_params, training
from flash_lcsm_jax.io import checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = dict(d_model=16, n_layers=2, d_inner=32, l_max=64, filter_order=8, emb_dim=3,
             filter_inner_mlps=1)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
  """A small folder of text files (the pipeline takes any folder)."""
  root = tmp_path_factory.mktemp("corpus")
  for i in range(12):
    sub = root / f"pkg{i % 3}"
    sub.mkdir(exist_ok=True)
    (sub / f"mod{i}.txt").write_text(
        "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}  # line {j}\n" for j in range(30)))
  (root / "blob.bin").write_bytes(b"\x00\x01binary")  # skipped: not text
  return str(root)


def make_config(workdir, corpus, **train):
  c = train_config.get_config()
  c.model.update(MODEL)
  c.train.update(dict(steps=8, batch_size=4, seq_len=32, learning_rate=3e-2, warmup_steps=1,
                      log_every=1, eval_every=4, eval_batches=2, ckpt_every=2,
                      keep_checkpoints=0, workdir=str(workdir), corpus_dir=corpus,
                      sample_tokens=0))
  c.train.update(train)
  return c


def _leaves_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(
      x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


# ----------------------------------------------------------------------------- data


def test_byte_tokenizer_round_trip():
  tok = data.ByteTokenizer()
  text = "héllo, wörld ✓\n"
  ids = tok.encode(text)
  assert ids.dtype == np.int32 and ids.max() < 256 and len(ids) == len(text.encode())
  assert tok.decode(ids) == text
  assert tok.decode(ids[:2]) == "h\ufffd"  # a cut multi-byte character is replaced
  with pytest.raises(ValueError, match=r"\[0, 255\]"):
    tok.decode([300])


def test_corpus_split_and_batches(corpus_dir):
  corpus = data.load_corpus(corpus_dir, holdout_fraction=0.25, min_bytes=33)
  assert corpus.num_files == 12 and corpus.split == "by file"
  assert 0 < corpus.num_heldout_files < 12
  assert corpus.train.size + corpus.heldout.size == sum(
      os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(corpus_dir) for f in fs
      if f.endswith(".txt"))
  x, y = data.train_batch(corpus.train, 4, 32, seed=0, step=5)
  assert x.shape == y.shape == (4, 32) and x.dtype == np.int32
  np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
  x2, _ = data.train_batch(corpus.train, 4, 32, seed=0, step=5)
  np.testing.assert_array_equal(x, x2)  # a pure function of (seed, step)
  assert not np.array_equal(x, data.train_batch(corpus.train, 4, 32, seed=0, step=6)[0])
  batches = data.eval_batches(corpus.heldout, 4, 32, 3)
  assert len(batches) == 3 and batches[0][0].shape == (4, 32)


def test_default_corpus_is_the_standard_library():
  root = data.default_corpus_dir()
  assert os.path.isfile(os.path.join(root, "os.py"))
  corpus = data.load_corpus("", max_bytes=2_000_000, min_bytes=257)
  assert corpus.train.size > 1_000_000 and corpus.heldout.size > 256


def test_corpus_errors(tmp_path):
  with pytest.raises(ValueError, match="does not exist"):
    data.load_corpus(str(tmp_path / "nope"))
  (tmp_path / "a.txt").write_text("tiny")
  with pytest.raises(ValueError, match="too little text"):
    data.load_corpus(str(tmp_path), min_bytes=100)
  with pytest.raises(ValueError, match="holdout_fraction"):
    data.load_corpus(str(tmp_path), holdout_fraction=1.0)
  one = data.load_corpus(str(tmp_path), min_bytes=1, holdout_fraction=0.5)
  assert one.split == "by bytes" and one.train.size == one.heldout.size == 2


# ----------------------------------------------------------------------------- optimiser


def test_schedule_and_settings():
  c = make_config("/tmp/unused", "", steps=100, warmup_steps=10, min_lr_ratio=0.1,
                  learning_rate=1e-2)
  sched = training.make_schedule(training.OptimizerSettings.from_config(c.train))
  assert float(sched(0)) == 0.0
  assert float(sched(10)) == pytest.approx(1e-2)
  assert float(sched(100)) == pytest.approx(1e-3)
  assert float(sched(55)) < float(sched(20))
  cfg = HyenaConfig.from_mapping(c.model)
  bad = make_config("/tmp/unused", "", seq_len=65)
  with pytest.raises(ValueError, match=r"config.train.seq_len must be <= the model's l_max"):
    training.check_settings(bad.train, cfg)
  bad = make_config("/tmp/unused", "", warmup_steps=8)
  with pytest.raises(ValueError, match="warmup_steps must be < steps"):
    training.check_settings(bad.train, cfg)


def test_loss_decreases_on_a_fixed_batch():
  c = make_config("/tmp/unused", "")
  cfg = HyenaConfig.from_mapping(c.model)
  opt = training.OptimizerSettings.from_config(c.train)
  state = training.init_state(cfg, opt, seed=0)
  deltas = np.asarray(state.params["layers"]["filter"]["deltas"])
  step = functools.partial(training.train_step, cfg=cfg, opt=opt)
  tokens = np.random.default_rng(0).integers(0, 256, (4, 33)).astype(np.int32)
  x, y = tokens[:, :-1], tokens[:, 1:]
  losses = []
  for _ in range(c.train.steps):
    state, metrics = step(state, x, y)
    losses.append(float(metrics["loss"]))
  final = float(training.eval_loss(state.params, x, y, cfg=cfg))
  assert final < 0.85 * losses[0], (losses, final)
  assert losses[-1] < losses[1] < losses[0] * (1 + 1e-6), losses  # lr is 0 at step 0
  assert int(state.step) == c.train.steps
  # The filter's decay rates are frozen, as in the reference.
  np.testing.assert_array_equal(state.params["layers"]["filter"]["deltas"], deltas)


# ----------------------------------------------------------------------------- checkpoints


def test_train_checkpoint_round_trip_is_exact(tmp_path):
  c = make_config(tmp_path, "")
  cfg = HyenaConfig.from_mapping(c.model)
  opt = training.OptimizerSettings.from_config(c.train)
  step = functools.partial(training.train_step, cfg=cfg, opt=opt)
  state = training.init_state(cfg, opt, seed=0)
  x = np.random.default_rng(0).integers(0, 256, (4, 33)).astype(np.int32)
  for _ in range(3):
    state, _ = step(state, x[:, :-1], x[:, 1:])
  path = training.save_checkpoint(str(tmp_path), state, cfg, c.train, seed=0, keep=0)
  restored, info = training.restore_checkpoint(path, cfg, opt, seed=0)
  assert info["step"] == 3 and int(restored.step) == 3
  assert _leaves_equal(state, restored)  # params, optimiser state, step: bit for bit
  # ... and both continue identically.
  a, _ = step(state, x[:, :-1], x[:, 1:])
  b, _ = step(restored, x[:, :-1], x[:, 1:])
  assert _leaves_equal(a, b)
  other = HyenaConfig.from_mapping({**c.model.to_dict(), "d_inner": 48})
  with pytest.raises(checkpoint.CheckpointError, match="d_inner"):
    training.restore_checkpoint(path, other, opt, seed=0)


def test_interrupted_training_resumes_exactly(tmp_path, corpus_dir):
  full = training.train(make_config(tmp_path / "full", corpus_dir), progress_stream=open(
      os.devnull, "w"))
  part_cfg = make_config(tmp_path / "part", corpus_dir)
  first = training.train(part_cfg, stop_after=3, progress_stream=open(os.devnull, "w"))
  assert int(first.state.step) == 3
  assert checkpoint.latest_checkpoint(first.ckpt_dir).endswith("ckpt_00000003.safetensors")
  resumed = training.train(part_cfg, progress_stream=open(os.devnull, "w"))
  assert int(resumed.state.step) == 8
  assert _leaves_equal(full.state, resumed.state)
  assert [r["step"] for r in resumed.history] == list(range(1, 9))
  assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]


def test_killed_training_resumes_from_its_checkpoint(tmp_path, corpus_dir):
  """SIGKILL `run.py --mode=train` once it has written a checkpoint, then resume to the end."""
  c = make_config(tmp_path / "killed", corpus_dir, ckpt_every=1)
  flags = [f"--config.model.{k}={v}" for k, v in MODEL.items()] + [
      f"--config.train.{k}={v}" for k, v in c.train.to_dict().items() if v != ""]
  # The child is run.py's main, slowed down after each checkpoint so the kill lands mid-run.
  code = textwrap.dedent(f"""
      import sys, time
      sys.path.insert(0, {REPO!r})
      from absl import app
      from flash_lcsm_jax import training
      import run
      save = training.save_checkpoint
      training.save_checkpoint = lambda *a, **k: (save(*a, **k), time.sleep(0.5))[0]
      sys.argv = ["run.py", "--mode=train", "--config=configs/train.py"] + {flags!r}
      app.run(run.main)
  """)
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
  ckpt_dir = str(tmp_path / "killed" / "checkpoints")
  deadline = time.time() + 240
  try:
    while checkpoint.latest_checkpoint(ckpt_dir) is None:
      assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
      assert time.time() < deadline, "no checkpoint written in time"
      time.sleep(0.02)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  killed_at = int(checkpoint.latest_checkpoint(ckpt_dir).split("_")[-1].split(".")[0])
  assert 1 <= killed_at < c.train.steps
  resumed = training.train(c, progress_stream=open(os.devnull, "w"))
  assert int(resumed.state.step) == c.train.steps
  full = training.train(make_config(tmp_path / "full", corpus_dir, ckpt_every=1),
                        progress_stream=open(os.devnull, "w"))
  assert _leaves_equal(full.state, resumed.state)


def test_main_writes_outputs_and_the_model_generates(tmp_path, corpus_dir):
  c = make_config(tmp_path / "run", corpus_dir, sample_tokens=4)
  c.prompt = "def "
  assert training.main(c) == 0
  run = tmp_path / "run"
  history = json.loads((run / "history.json").read_text())["records"]
  assert history[-1]["step"] == 8 and "eval_bpb" in history[-1]
  assert history[-1]["eval_bpb"] == pytest.approx(history[-1]["eval_loss"] / np.log(2))
  assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"
  assert (run / "sample.txt").read_text().startswith("def ")
  # Generation from the checkpoint in Python (the command line goes through load_model too).
  params, cfg = checkpoint.load_model(str(run))
  assert cfg == HyenaConfig.from_mapping(c.model)
  out = Generator(params, cfg).generate(data.ByteTokenizer().encode("def ")[None], 4)
  assert out.tokens.shape == (1, 4)
  # A training checkpoint also serves as a model checkpoint.
  params2, _ = checkpoint.load_model(checkpoint.latest_checkpoint(str(run / "checkpoints")))
  assert _leaves_equal(params, params2)


def test_command_line_generates_from_a_checkpoint(tmp_path):
  cfg = HyenaConfig(**MODEL)
  checkpoint.save_model(str(tmp_path / "model.safetensors"), init_params(
      jax.random.PRNGKey(0), cfg), cfg)
  gen = subprocess.run(
      [sys.executable, "run.py", "--mode=generate", "--config=configs/train.py",
       f"--config.checkpoint={tmp_path}", "--config.num_tokens=4", "--config.prompt=def "],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert gen.returncode == 0, gen.stderr[-2000:]
  assert "[flash]" in gen.stdout and "width 16" in gen.stdout
