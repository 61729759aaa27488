"""Static schedules: flash tiles cover every (input, output) pair exactly once, buffers and
windows are large enough that no dynamic slice is ever clamped, and the block structure keeps
the number of compiled executables small."""

import numpy as np
import pytest

from flash_lcsm_jax.engine import mixers, schedule

NO_TILE = schedule.NO_TILE

# (start, stop) pairs: empty and one-step generations, powers of two and not, with prompts.
SPANS = sorted({(0, 1), (0, 2), (0, 3), (1, 2), (5, 5), (0, 16), (0, 17), (3, 20), (17, 64),
                (0, 100), (1, 129), (7, 200), (64, 256), (777, 1000), (0, 1000), (1, 1024),
                (0, 1025), (100, 613), (2, 4096)} |
               {(s, s + n) for s in (0, 1, 6) for n in range(1, 40)})
BLOCK_SIZES = (1, 2, 4, 16, 64)


def steps_with_levels(blocks):
  """[(absolute position, level)] of every step, in order."""
  return [(b.first + j, q) for b in blocks for j, q in enumerate(b.levels)]


def tiles(start, stop, block_size):
  """[(position of the step that runs it, U)] for every gray tile."""
  return [(t, 1 << q) for t, q in steps_with_levels(schedule.flash_blocks(start, stop,
                                                                          block_size))
          if q != NO_TILE]


def test_trailing_zeros_and_tile_level():
  for i in range(1, 300):
    want = next(k for k in range(20) if i % (1 << (k + 1)))
    assert schedule.trailing_zeros(i) == want
    assert schedule.tile_level(i, 300) == want
  assert schedule.tile_level(300, 300) == NO_TILE
  with pytest.raises(ValueError, match="positive"):
    schedule.trailing_zeros(0)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_flash_blocks_walk_every_position_once(block_size):
  for start, stop in SPANS:
    blocks = schedule.flash_blocks(start, stop, block_size)
    positions = [t for t, _ in steps_with_levels(blocks)]
    assert positions == list(range(start, stop)), (start, stop)
    for b in blocks[:-1]:
      assert b.num_steps == block_size
    if blocks:
      assert 1 <= blocks[-1].num_steps <= block_size
      assert blocks[-1].levels[-1] == NO_TILE  # nothing follows the last position


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_flash_tiles_cover_each_pair_exactly_once(block_size):
  for start, stop in SPANS:
    n = stop - start
    cover = np.zeros((n, n), np.int64)  # [output - start, input - start]
    for t, U in tiles(start, stop, block_size):
      inputs = np.arange(t - U + 1, t + 1)
      outputs = np.arange(t + 1, min(t + U, stop - 1) + 1)
      # A tile reads generated positions only (the prompt's contribution comes from its FFT),
      # all already computed at the step that runs it, and writes only later positions.
      assert inputs.min() >= start, (start, stop, t, U)
      cover[np.ix_(outputs - start, inputs - start)] += 1
    want = np.tril(np.ones((n, n), np.int64), -1)  # every s < t, never s >= t
    np.testing.assert_array_equal(cover, want, err_msg=f"start={start} stop={stop}")


def test_flash_tile_counts_for_power_of_two_lengths():
  """For L = 2^P there are L / 2^(q+1) tiles of size 2^q, q < P (none after the last step)."""
  for P in range(1, 12):
    L = 1 << P
    sizes = [U for _, U in tiles(0, L, 16)]
    assert len(sizes) == L - 1
    for q in range(P):
      assert sizes.count(1 << q) == L >> (q + 1), (L, q)


def test_flash_buffer_length_bounds_every_tile_write():
  for start, stop in SPANS:
    length = schedule.flash_buffer_length(start, stop)
    ends = [t + U + 1 for t, U in tiles(start, stop, 4)]  # last written index + 1, unclipped
    assert length >= stop
    assert length >= max(ends, default=0), (start, stop)
    assert length == max(ends + [stop]), (start, stop)  # and no larger than needed
    plan = mixers.make_plan("flash", start, stop, 4, "fft")
    assert plan.buffer_length == schedule.window_bucket(length)  # shared by nearby lengths
    assert length <= plan.buffer_length <= max(16, 1.5 * length)


def test_flash_block_keys_stay_few():
  """Only the block-boundary tile level differs between full blocks: O(log L) executables."""
  for start, stop in ((0, 4096), (777, 4096), (1, 1000)):
    for block_size in (4, 16):
      keys = {b.key for b in schedule.flash_blocks(start, stop, block_size)}
      n = stop - start
      assert len(keys) <= (n // block_size).bit_length() + 2, (start, stop, block_size)


def test_window_bucket():
  values = set()
  for span in range(0, 5000):
    w = schedule.window_bucket(span)
    assert w >= span and w >= 16
    if span > 16:
      assert w < 1.5 * span + 1, span
    values.add(w)
    odd = w >> (w & -w).bit_length() - 1  # w / (largest power of two dividing it)
    assert odd in (1, 3), w  # 2^k or 3 * 2^(k-1): at most two windows per octave
  assert schedule.window_bucket(3, minimum=4) == 4


@pytest.mark.parametrize("method", ["lazy", "eager"])
@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_quadratic_windows_and_buffers_cover_needed_spans(method, block_size):
  for start, stop in SPANS:
    plan = mixers.make_plan(method, start, stop, block_size)
    blocks = plan.blocks
    assert [t for t, _ in steps_with_levels(blocks)] == list(range(start, stop))
    assert all(q == NO_TILE for b in blocks for q in b.levels)
    assert plan.buffer_length >= stop
    for b in blocks:
      for t in range(b.first, b.first + b.num_steps):
        if method == "lazy":
          # read(): history [0, window) holds every s < t; the reversed-filter slice
          # [stop-1-t, stop-1-t+window) and the history slice stay in range (no clamping).
          assert b.window >= t, (start, stop, t)
          assert plan.buffer_length >= b.window
          assert plan.filter_length >= stop - 1 - t + b.window, (start, stop, t)
        else:
          # write(): future (t, t+window] holds every output < stop; taps 1..window exist.
          assert b.window >= stop - 1 - t, (start, stop, t)
          assert plan.buffer_length >= t + 1 + b.window, (start, stop, t)
          assert plan.filter_length >= b.window + 1
    windows = {b.window for b in blocks}
    assert len(windows) <= 2 * max(stop, 2).bit_length() + 2


def test_bad_block_sizes_and_methods():
  for bad in (0, 3, 6, -4):
    with pytest.raises(ValueError, match="block_size must be a power of two"):
      schedule.flash_blocks(0, 10, bad)
    with pytest.raises(ValueError, match="block_size must be a power of two"):
      schedule.quadratic_blocks(0, 10, bad, "lazy")
  with pytest.raises(ValueError, match="method must be 'lazy' or 'eager'"):
    schedule.quadratic_blocks(0, 10, 4, "flash")
  with pytest.raises(ValueError, match="unknown method 'fast'"):
    mixers.make_plan("fast", 0, 10, 4)


@pytest.mark.parametrize("start,stop", [(0, 1), (0, 37), (5, 70), (1, 64), (13, 13 + 129)])
def test_flash_schedule_reproduces_online_causal_convolution(start, stop):
  """The algorithm in float64 numpy, driven by the schedule: the prompt's contribution by one
  convolution, red cells z_t = acc_t + h_0 y_t, and the tiles' middle products; y_t depends on
  z_t (as the next layer's input would), so every contribution must arrive in time."""
  rng = np.random.default_rng(start * 1000 + stop)
  h = rng.normal(size=stop) * np.exp(-np.arange(stop) / 20)
  y = np.zeros(stop)
  y[:start] = rng.normal(size=start)
  noise = rng.normal(size=stop)
  acc = np.zeros(schedule.flash_buffer_length(start, stop) + 1)
  acc[start:stop] = np.convolve(h, y[:start])[start:stop] if start else 0.0
  z = np.zeros(stop)
  for block in schedule.flash_blocks(start, stop, 4):
    for j, q in enumerate(block.levels):
      t = block.first + j
      y[t] = np.tanh(acc[t]) + noise[t]  # the input depends on the outputs so far
      z[t] = acc[t] + h[0] * y[t]  # red cell; acc_t must be complete at this point
      if q != NO_TILE:
        U = 1 << q
        taps = np.zeros(2 * U)
        taps[:min(2 * U, stop)] = h[:2 * U]
        acc[t + 1:t + 1 + U] += np.convolve(taps, y[t - U + 1:t + 1])[U:2 * U]
  want = np.array([np.dot(h[t::-1], y[:t + 1]) for t in range(stop)])
  np.testing.assert_allclose(z[start:], want[start:], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("start,stop", [(0, 0), (0, 1), (0, 2), (3, 5), (0, 128), (0, 129),
                                        (17, 1000), (5, 4101)])
def test_max_tile_level_is_the_schedules_largest_level(start, stop):
  levels = [q for b in schedule.flash_blocks(start, stop, 1) for q in b.levels]
  assert schedule.max_tile_level(start, stop) == max(levels + [schedule.NO_TILE])
