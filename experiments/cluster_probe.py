"""What it costs to exchange partial vectors within a thread-block cluster, against the same
exchange through global memory with a grid-wide counter (no flags here: tests import it).

Why: #4's bfloat16 target needs fewer dependent phases per token, and the only form left
(experiments/NOTES.md, session 28) reduces split-K partial sums inside clusters through
distributed shared memory (DSMEM) instead of a grid-wide barrier. This probe measures the
two synchronisations on the same work before anyone builds that kernel. Session 29 (H100):
the cluster exchange is no cheaper than the grid's (a cluster barrier ~1.1 us, each peer's
DSMEM read ~0.7 us more), so that design was dropped (experiments/NOTES.md).

Both kernels run `programs` blocks in groups of `cluster` and iterate the same recurrence on a
(width,) float32 vector per block: v_0 = c + 1 and v_{i+1} = (0.5 / cluster) * sum_j v_i[j] +
(c + 1), the sum over the block's group (c: its index there; bounded for any iters). So every
iteration each block reads its group's `cluster` vectors written in the previous iteration,
and a stale read changes the result (`reference`).
  cluster: the group is a cluster; vectors live in shared memory (one buffer per parity),
           read from the peers' through cluster_ref (DSMEM), one cluster barrier per iteration
           (peers=False: the block's own buffer instead, the cost without DSMEM).
  grid:    one block per SM, no clusters; vectors live in global memory (two slots by parity),
           ordered by one grid-wide counter (mgpu_chain's signal / wait: a release add, one
           thread's relaxed polls and an acquire), as the Mosaic token kernel's phases are.
  split:   the whole exchange a split-K phase of the two-phases-per-layer design needs: the
           sum over ALL blocks' vectors, in every block (group = programs, make_split_exchange).
           A cluster reduce-scatter through DSMEM (block c sums slice c of its cluster's
           vectors), the cluster sums' slices through global memory and the grid counter (block
           c adds slice c of every cluster's sum), and a cluster all-gather through DSMEM: two
           cluster barriers and one grid-wide hand-over per iteration.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from experiments import mgpu_chain as mc


def reference(programs: int, cluster: int, iters: int, width: int,
              group: int | None = None) -> np.ndarray:
  """The (programs, width) values the kernels end with, in float64: the recurrence summed over
  groups of `group` blocks (default `cluster`; the split form sums over all `programs`)."""
  group = group or cluster
  c = np.tile(np.arange(cluster, dtype=np.float64) + 1, programs // cluster)
  v = c.copy()
  for _ in range(iters):
    v = 0.5 / group * v.reshape(-1, group).sum(1).repeat(group) + c
  return np.broadcast_to(v[:, None], (programs, width))


def _check(programs: int, cluster: int, width: int):
  if programs % cluster:
    raise ValueError(f"{programs} programs are not groups of {cluster}")
  if width % 512:
    raise ValueError(f"width must be a multiple of 512 (a warpgroup's 4-wide vectors), got "
                     f"{width}")


def _sum_of(read, n: int):
  """read(0) + read(1) + ... + read(n - 1), added in that order."""
  total = read(0)
  for j in range(1, n):
    total = total + read(j)
  return total


def _cluster_fence(sync: bool):
  """Every thread's fence.acq_rel.cluster; sync: then a warpgroup barrier. Before a cluster
  barrier's arrival (sync: Mosaic's collective arrive is one thread per peer, with no barrier
  before it and CTA-scope semantics) it releases every thread's shared-memory writes to the
  cluster; after its wait it acquires the peers'."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import llvm  # pylint: disable=g-import-not-at-top

  @plgpu.inline_mgpu()
  def fence(ctx):
    del ctx
    llvm.inline_asm(ir.Type.parse("!llvm.void"), [], "fence.acq_rel.cluster;", "",
                    has_side_effects=True)
    if sync:
      mgpu_utils.warpgroup_barrier()

  fence()


def _cluster_sync(barrier):
  """Every peer of the cluster reaches `barrier` (a ClusterBarrier slot): this block's shared
  memory writes are released to the cluster before its arrival, the peers' acquired after."""
  _cluster_fence(True)
  plgpu.barrier_arrive(barrier)
  plgpu.barrier_wait(barrier)
  _cluster_fence(False)


def _params(semantics: str):
  """Compiler parameters with Mosaic GPU's lowering semantics named ("Lane", the default, or
  "Warpgroup"). The tests lower with both: the device's JAX 0.11.2 ran Mosaic GPU's dialect
  lowering on these kernels, which the CPU's 0.10.2 runs only under Warpgroup semantics."""
  return plgpu.CompilerParams(lowering_semantics=getattr(plgpu.LoweringSemantics, semantics))


def _by_parity(iters: int, step):
  """step(i, slot) for i < iters with slot = i % 2 a Python int: iterations run in pairs, so
  each names its shared-memory buffers statically (a peer's buffer must be read whole: see
  make_cluster_exchange)."""
  def pair(k, carry):
    step(2 * k, 0)
    step(2 * k + 1, 1)
    return carry
  jax.lax.fori_loop(0, iters // 2, pair, 0)
  if iters % 2:
    step(iters - 1, 0)


def make_cluster_exchange(programs: int, cluster: int, iters: int, width: int = 1024,
                          semantics: str = "Lane", peers: bool = True):
  """jit() -> (programs, width): the recurrence with clusters of `cluster` blocks. peers=False
  reads the block's own buffer `cluster` times instead of its peers' (the same barriers, fences
  and adds without DSMEM: the recurrence of groups of one, reference(..., group=1)).

  Every peer buffer is a whole scratch ref, one per parity: JAX 0.11.2's Mosaic GPU keeps a
  sliced ref's dynamic offset in the type of its cluster_ref while the DSMEM address it lowers
  to has none, and the compile fails (session 29, H100)."""
  _check(programs, cluster, width)

  def kernel(out_ref):
    @pl.core_map(plgpu.Mesh(grid=(programs // cluster,), cluster=(cluster,), grid_names=("g",),
                            cluster_names=("c",)),
                 compiler_params=_params(semantics))
    def _():
      def body(buf0, buf1, bar):
        bufs = (buf0, buf1)
        c, g = jax.lax.axis_index("c"), jax.lax.axis_index("g")
        own = (c + 1).astype(jnp.float32)
        buf0[...] = jnp.full((width,), 1.0, jnp.float32) * own

        sync = lambda slot: _cluster_sync(bar.at[slot])

        def step(i, slot):
          del i
          sync(slot)  # bufs[slot] was written last iteration; peers read it after the barrier
          read = lambda j: (plgpu.cluster_ref(bufs[slot], {"c": j}) if peers else bufs[slot])[...]
          total = _sum_of(read, cluster)
          # The other buffer is free: every peer passed this barrier, so it is done reading it.
          bufs[1 - slot][...] = (0.5 / cluster) * total + own

        _by_parity(iters, step)
        # No block may exit while a peer still reads its shared memory.
        sync(iters % 2)
        out_ref[g * cluster + c] = bufs[iters % 2][...]

      pl.run_scoped(body, plgpu.SMEM((width,), jnp.float32), plgpu.SMEM((width,), jnp.float32),
                    plgpu.ClusterBarrier(collective_axes=("c",), num_barriers=2))

  @jax.jit
  def run():
    out = jax.new_ref(jnp.zeros((programs, width), jnp.float32), memory_space=plgpu.GMEM)
    kernel(out)
    return out[...]
  return run


def make_grid_exchange(programs: int, cluster: int, iters: int, width: int = 1024,
                       semantics: str = "Lane"):
  """jit() -> (programs, width): the recurrence through global memory and one grid-wide
  counter (every block must be resident at once: programs <= SMs)."""
  _check(programs, cluster, width)
  layout = plgpu.Layout.WG_STRIDED((width,), vec_size=4)

  def kernel(buf_ref, counter_ref, out_ref):
    @pl.core_map(plgpu.Mesh(grid=(programs,), grid_names=("p",)),
                 compiler_params=_params(semantics))
    def _():
      p = jax.lax.axis_index("p")
      c, first = p % cluster, p - p % cluster
      own = (c + 1).astype(jnp.float32)
      load = lambda ref: plgpu.load(ref, (), layout=layout, optimized=False)
      buf_ref[0, p] = jnp.full((width,), 1.0, jnp.float32) * own
      mc.signal_counter(counter_ref)

      def step(i, carry):
        slot = i % 2
        mc.wait_counter(counter_ref, (i + 1) * programs)
        total = _sum_of(lambda j: load(buf_ref.at[slot, first + j]), cluster)
        # A block still reading the other slot (iteration i - 1) has not signalled i + 1 yet,
        # and this block passed the wait for it: the other slot is free.
        buf_ref[1 - slot, p] = (0.5 / cluster) * total + own
        mc.signal_counter(counter_ref)
        return carry

      jax.lax.fori_loop(0, iters, step, 0)
      out_ref[p] = load(buf_ref.at[iters % 2, p])  # its own row, ordered by the last signal

  @jax.jit
  def run():
    gmem = functools.partial(jax.new_ref, memory_space=plgpu.GMEM)
    buf, out = gmem(jnp.zeros((2, programs, width), jnp.float32)), gmem(
        jnp.zeros((programs, width), jnp.float32))
    kernel(buf, gmem(jnp.zeros((1,), jnp.int32)), out)
    return out[...]
  return run


def make_split_exchange(programs: int, cluster: int, iters: int, width: int = 1024,
                        semantics: str = "Lane"):
  """jit() -> (programs, width): the recurrence summed over all `programs` blocks (see the
  module docstring's "split"; every block must be resident at once, as in the grid form)."""
  _check(programs, cluster, width)
  part = width // cluster  # the slice of the vector that each block of a cluster reduces
  if part % 128 or cluster > 8:
    raise ValueError(f"width / cluster must be a multiple of 128 (a warpgroup's threads) and "
                     f"the cluster portable (<= 8), got width {width}, cluster {cluster}")
  groups = programs // cluster
  layout = plgpu.Layout.WG_STRIDED((part,), vec_size=min(4, part // 128))
  scale = 0.5 / programs

  def kernel(sums_ref, counter_ref, out_ref):
    @pl.core_map(plgpu.Mesh(grid=(groups,), cluster=(cluster,), grid_names=("g",),
                            cluster_names=("c",)),
                 compiler_params=_params(semantics))
    def _():
      def body(*refs):
        # vec[slot][s]: slice s of this block's vector; total[slot]: its reduced slice. Whole
        # refs, one per parity and slice, as make_cluster_exchange explains.
        vec = (refs[:cluster], refs[cluster:2 * cluster])
        total, bar = refs[2 * cluster:2 * cluster + 2], refs[-1]
        c, g = jax.lax.axis_index("c"), jax.lax.axis_index("g")
        own = (c + 1).astype(jnp.float32)
        for j in range(cluster):
          vec[0][j][...] = jnp.full((part,), 1.0, jnp.float32) * own

        sync = lambda k: _cluster_sync(bar.at[k])

        def step(i, slot):
          # Reduce-scatter: slice c of the cluster's vectors, read from every peer's memory.
          sync(0)
          for s in range(cluster):
            def reduce(s=s):
              sums_ref[slot, g, s] = _sum_of(
                  lambda j: plgpu.cluster_ref(vec[slot][s], {"c": j})[...], cluster)
            pl.when(c == s)(reduce)
          mc.signal_counter(counter_ref)
          # Across clusters: slice c of every cluster's sum (slot reuse as in the grid form).
          mc.wait_counter(counter_ref, (i + 1) * programs)
          total[slot][...] = _sum_of(
              lambda h: plgpu.load(sums_ref.at[slot, h, c], (), layout=layout, optimized=False),
              groups)
          # All-gather: every slice of the total, from the peer that reduced it. The other
          # parity's `vec` is free: every peer passed sync(0), so it is done reading it.
          sync(1)
          for j in range(cluster):
            vec[1 - slot][j][...] = scale * plgpu.cluster_ref(total[slot], {"c": j})[...] + own

        _by_parity(iters, step)
        sync(0)  # no block may exit while a peer still reads its shared memory
        for j in range(cluster):
          out_ref[g * cluster + c, j] = vec[iters % 2][j][...]

      smem = [plgpu.SMEM((part,), jnp.float32) for _ in range(2 * cluster + 2)]
      pl.run_scoped(body, *smem, plgpu.ClusterBarrier(collective_axes=("c",), num_barriers=2))

  @jax.jit
  def run():
    gmem = functools.partial(jax.new_ref, memory_space=plgpu.GMEM)
    out = gmem(jnp.zeros((programs, cluster, part), jnp.float32))
    kernel(gmem(jnp.zeros((2, groups, cluster, part), jnp.float32)),
           gmem(jnp.zeros((1,), jnp.int32)), out)
    return out[...].reshape(programs, width)
  return run
