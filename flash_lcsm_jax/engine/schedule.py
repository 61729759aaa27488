"""Static schedules: which tile each flash step runs, and how steps group into compiled blocks.

Everything here is plain Python on the host. Generation feeds positions t = start..stop-1
(absolute, 0-indexed). Flash numbers the generated positions i = t - start + 1 (1-indexed);
after step i the gray tile of level q = ctz(i) (size U = 2^q) adds the contribution of inputs
at i-U+1..i to outputs i+1..i+U. Every (input s, output t > s) pair among generated positions is
covered by exactly one tile; pairs with s < start come from the prompt's one FFT.
"""

from __future__ import annotations

import dataclasses

import numpy as np

NO_TILE = -1


def trailing_zeros(i: int) -> int:
  if i <= 0:
    raise ValueError(f"trailing_zeros needs a positive int, got {i}")
  return (i & -i).bit_length() - 1


def tile_level(i: int, num_generated: int) -> int:
  """Tile level after generated step i (1-indexed); NO_TILE after the last step."""
  return NO_TILE if i >= num_generated else trailing_zeros(i)


def max_tile_level(start: int, stop: int) -> int:
  """Largest tile level of a generation over positions [start, stop); NO_TILE if none."""
  n = stop - start  # tiles run after generated steps 1..n-1
  return NO_TILE if n < 2 else (n - 1).bit_length() - 1


@dataclasses.dataclass(frozen=True)
class Block:
  """A run of consecutive steps compiled as one executable.

  first: absolute position of the block's first step.
  levels: per step, the flash tile level (NO_TILE for none); its length is the step count.
  window: for lazy / eager, the static history (lazy) or future (eager) span the block reads.
  """
  first: int
  levels: tuple[int, ...]
  window: int = 0

  @property
  def num_steps(self) -> int:
    return len(self.levels)

  @property
  def key(self) -> tuple:
    """What the compiled executable depends on (not the position)."""
    return (self.levels, self.window)


def flash_blocks(start: int, stop: int, block_size: int) -> list[Block]:
  """Blocks of block_size steps (a power of two) aligned to the generated index.

  Inside a block the small tile levels repeat, so only the last step's level differs between
  blocks: a handful of executables covers any length.
  """
  _check_block_size(block_size)
  n = stop - start
  blocks = []
  for i0 in range(1, n + 1, block_size):
    i1 = min(i0 + block_size, n + 1)
    blocks.append(Block(start + i0 - 1, tuple(tile_level(i, n) for i in range(i0, i1))))
  return blocks


def flash_buffer_length(start: int, stop: int) -> int:
  """Buffer length that holds every (unclipped) tile's outputs: max over tiles of t + U + 1."""
  i = np.arange(1, stop - start, dtype=np.int64)  # steps that run a tile
  return int(max(stop, (start + i + (i & -i)).max(initial=0)))


def window_bucket(span: int, minimum: int = 16) -> int:
  """Rounds span up to 2^k or 3 * 2^(k-1): at most two compiled windows per octave."""
  if span <= minimum:
    return minimum
  grain = 1 << max(0, span.bit_length() - 2)
  return -(-span // grain) * grain


def quadratic_blocks(start: int, stop: int, block_size: int, method: str) -> list[Block]:
  """Blocks for lazy (reads history [0, t)) and eager (writes future (t, stop))."""
  _check_block_size(block_size)
  blocks = []
  for t0 in range(start, stop, block_size):
    t1 = min(t0 + block_size, stop)
    if method == "lazy":
      window = window_bucket(t1 - 1)  # history of the block's last step
    elif method == "eager":
      window = window_bucket(stop - 1 - t0)  # future of the block's first step
    else:
      raise ValueError(f"quadratic_blocks: method must be 'lazy' or 'eager', got {method!r}")
    blocks.append(Block(t0, (NO_TILE,) * (t1 - t0), window))
  return blocks


def _check_block_size(block_size: int):
  if block_size < 1 or block_size & (block_size - 1):
    raise ValueError(f"block_size must be a power of two >= 1, got {block_size}")
