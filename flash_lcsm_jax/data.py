"""Byte-level tokenizer and a training corpus read from a folder of text files.

The default corpus is the Python standard library's own source files (found through sysconfig),
so training runs out of the box on any machine with Python and no download. Any other folder of
text files works too.

Batches are a pure function of (seed, step): a resumed run draws exactly the batches the
uninterrupted run would have, with no data-loader state to save.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import sysconfig

import numpy as np

_SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", ".git", ".hg", ".svn"}


class ByteTokenizer:
  """UTF-8 bytes as token ids 0..255 (no special tokens)."""

  vocab_size = 256

  def encode(self, text: str) -> np.ndarray:
    """str -> (n,) int32 ids."""
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)

  def decode(self, ids) -> str:
    """ids -> str; invalid UTF-8 (e.g. a cut multi-byte character) shows as U+FFFD."""
    ids = np.asarray(ids).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() > 255):
      raise ValueError(f"byte ids must be in [0, 255], got values in [{ids.min()}, {ids.max()}]")
    return bytes(ids.astype(np.uint8).tolist()).decode("utf-8", errors="replace")


def default_corpus_dir() -> str:
  """The standard library's source folder of the running Python."""
  return sysconfig.get_paths()["stdlib"]


@dataclasses.dataclass(frozen=True)
class Corpus:
  """A corpus as two byte streams: train and held-out (split by file)."""
  root: str
  train: np.ndarray  # (n_train,) uint8
  heldout: np.ndarray  # (n_heldout,) uint8
  num_files: int
  num_heldout_files: int
  split: str  # "by file" or "by bytes" (fallback when files cannot fill both splits)

  def describe(self) -> str:
    return (f"corpus {self.root}: {self.num_files} files, {self.train.size / 1e6:.2f} MB train, "
            f"{self.heldout.size / 1e6:.2f} MB held out ({self.num_heldout_files} files, split "
            f"{self.split})")


def _is_heldout(relpath: str, fraction: float) -> bool:
  """A stable per-file coin (same on every machine and Python run)."""
  digest = hashlib.sha256(relpath.encode("utf-8", "surrogateescape")).digest()
  return int.from_bytes(digest[:8], "little") / 2**64 < fraction


def list_text_files(root: str, pattern: str) -> list[str]:
  """Sorted paths under root whose name matches pattern (fnmatch), skipping caches and VCS."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
    found.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                 if fnmatch.fnmatch(f, pattern) and not f.startswith("."))
  return found


def load_corpus(root: str = "", pattern: str = "", holdout_fraction: float = 0.05,
                max_bytes: int = 0, min_bytes: int = 2) -> Corpus:
  """Reads every text file under root into train / held-out byte streams.

  Args:
    root: folder of text files; "" means the Python standard library sources.
    pattern: file-name pattern; "" means "*.py" for the standard library and "*" otherwise.
      Files with NUL bytes (binary files) are skipped.
    holdout_fraction: share of files (chosen by a hash of their relative path) held out.
    max_bytes: stop reading after this many bytes (0: no limit).
    min_bytes: each split must hold at least this many bytes (e.g. seq_len + 1).

  Raises:
    ValueError: bad arguments, or too little text to fill both splits.
  """
  if not 0.0 < holdout_fraction < 1.0:
    raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
  if max_bytes < 0:
    raise ValueError(f"max_bytes must be >= 0 (0: no limit), got {max_bytes}")
  root = root or default_corpus_dir()
  if not os.path.isdir(root):
    raise ValueError(f"corpus directory does not exist: {root!r}")
  pattern = pattern or ("*.py" if os.path.samefile(root, default_corpus_dir()) else "*")
  train, heldout, total, num_files, num_heldout = [], [], 0, 0, 0
  for path in list_text_files(root, pattern):
    try:
      with open(path, "rb") as f:
        blob = f.read()
    except OSError:
      continue  # unreadable (permissions, broken link): not part of the corpus
    if not blob or b"\x00" in blob:
      continue
    rel = os.path.relpath(path, root)
    target = heldout if _is_heldout(rel, holdout_fraction) else train
    target.append(np.frombuffer(blob, np.uint8))
    num_files += 1
    num_heldout += target is heldout
    total += len(blob)
    if max_bytes and total >= max_bytes:
      break
  join = lambda parts: np.concatenate(parts) if parts else np.zeros((0,), np.uint8)
  train_bytes, heldout_bytes, split = join(train), join(heldout), "by file"
  if train_bytes.size < min_bytes or heldout_bytes.size < min_bytes:
    # Too few files for a file split: hold out the tail of the whole stream instead.
    stream = join(train + heldout)
    cut = int(round(stream.size * (1.0 - holdout_fraction)))
    train_bytes, heldout_bytes, split, num_heldout = stream[:cut], stream[cut:], "by bytes", 0
  if train_bytes.size < min_bytes or heldout_bytes.size < min_bytes:
    raise ValueError(f"corpus {root!r} (pattern {pattern!r}) has too little text: "
                     f"{train_bytes.size} train and {heldout_bytes.size} held-out bytes, each "
                     f"split needs >= {min_bytes} (seq_len + 1)")
  return Corpus(root, train_bytes, heldout_bytes, num_files, num_heldout, split)


def _windows(data: np.ndarray, starts: np.ndarray, seq_len: int):
  idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
  w = data[idx].astype(np.int32)
  return w[:, :-1], w[:, 1:]


def train_batch(data: np.ndarray, batch_size: int, seq_len: int, seed: int, step: int):
  """Random windows for one training step: (inputs, targets), each (batch_size, seq_len) int32.

  A pure function of (seed, step), so resuming at any step reproduces the data exactly.
  """
  if data.size < seq_len + 1:
    raise ValueError(f"seq_len={seq_len} needs at least {seq_len + 1} bytes, got {data.size}")
  rng = np.random.default_rng([seed, step])
  starts = rng.integers(0, data.size - seq_len, size=batch_size)
  return _windows(data, starts, seq_len)


def eval_batches(data: np.ndarray, batch_size: int, seq_len: int, num_batches: int):
  """A fixed list of (inputs, targets) windows spread evenly over the held-out stream."""
  if data.size < seq_len + 1:
    raise ValueError(f"seq_len={seq_len} needs at least {seq_len + 1} held-out bytes, "
                     f"got {data.size}")
  n = batch_size * num_batches
  starts = np.linspace(0, data.size - seq_len - 1, n).astype(np.int64)
  return [_windows(data, starts[i * batch_size:(i + 1) * batch_size], seq_len)
          for i in range(num_batches)]
