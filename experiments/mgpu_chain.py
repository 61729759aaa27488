"""The Mosaic GPU chain kernel of experiments/mgpu_chain_gpu.py (see its docstring), with its
work items, item table and float64 reference. No flags here, so tests can import it."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

ROWS, KP, CHUNK = 64, 896, 224            # item rows, padded K, ring chunk (K = 4 chunks)
N_CHUNKS = KP // CHUNK
NB = 8                                    # batch columns of the product (B <= 8, zero padded)
ITEMS = {"mix": 41, "out": 14, "up": 27, "down": 28}
START = {"mix": 0, "out": 41, "up": 55, "down": 82}
PER_LAYER = 110
# Column regions of the activation buffer (each a multiple of 64).
Z, X0, H, Y, U, P0, P1 = 0, 896, 1792, 4416, 5312, 7104, 8000
COLS = 8896
_TRANSFORMS = (plgpu.TilingTransform((8, 32)), plgpu.SwizzleTransform(64))


KINDS = ("mix", "out", "up", "down")
LN_KINDS = (0, 2)          # the items whose input a layer norm precedes in the model (mix, up)
D_MODEL, LN_EPS = 864, 1e-5


def item_table(layers: int) -> np.ndarray:
  """(layers * 110, 6) int32: wait count, three input offsets (Z when unused), output offset,
  kind (an index into KINDS)."""
  rows = []
  for layer in range(layers):
    base = layer * PER_LAYER
    for t in range(ITEMS["mix"]):
      rows.append((base + START["mix"], X0, P0, P1, H + 64 * t, 0))
    for t in range(ITEMS["out"]):
      rows.append((base + START["out"], H, H + 1728, Z, Y + 64 * t, 1))
    for t in range(ITEMS["up"]):
      rows.append((base + START["up"], Y, Z, Z, U + 64 * t, 2))
    for t in range(ITEMS["down"]):
      half = t % 2
      rows.append((base + START["down"], U + KP * half, Z, Z, (P0, P1)[half] + 64 * (t // 2),
                   3))
  return np.asarray(rows, np.int32)


def random_items(layers: int, seed: int = 0) -> np.ndarray:
  """The weights as items, (layers * 110, 64, 896) bfloat16 values (float32 array): the real
  shapes zero-padded (mix rows 2592 -> 2624, D = 864 -> 896 in rows and columns, down's two
  columns 1728 -> 2 x 896), entries ~ N(0, 1 / fan_in)."""
  rng = np.random.default_rng(seed)
  items = np.zeros((layers * PER_LAYER, ROWS, KP), np.float32)
  def tiles(n_out, n_in, count):
    w = np.zeros((count * ROWS, KP), np.float32)
    w[:n_out, :n_in] = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
    return w.reshape(count, ROWS, KP)
  for layer in range(layers):
    b = layer * PER_LAYER
    items[b:b + 41] = tiles(2592, 864, 41)
    items[b + 41:b + 55] = tiles(864, 864, 14)
    items[b + 55:b + 82] = tiles(1728, 864, 27)
    down = np.zeros((896, 2 * KP), np.float32)  # halves: u[0:896] and u[896:1728] + zeros
    down[:864, :1728] = rng.standard_normal((864, 1728)) / np.sqrt(1728)
    halves = down.reshape(14, ROWS, 2, KP).transpose(0, 2, 1, 3).reshape(28, ROWS, KP)
    items[b + 82:b + 110] = halves
  return items.astype(jnp.bfloat16).astype(np.float32)


def layer_norm_f32(x: np.ndarray) -> np.ndarray:
  """The kernel's layer norm over the first D_MODEL columns of float32 rows (the padding is
  zero in every input it applies to), statistics E[x], E[x^2] - E[x]^2 in float32, no scale."""
  x = np.asarray(x, np.float32)
  mean = np.sum(x, 1, keepdims=True, dtype=np.float32) / np.float32(D_MODEL)
  var = np.sum(x * x, 1, keepdims=True, dtype=np.float32) / np.float32(D_MODEL) - mean * mean
  return (x - mean) * (np.float32(1) / np.sqrt(var + np.float32(LN_EPS)))


def reference_chain(items: np.ndarray, table: np.ndarray, acts: np.ndarray,
                    product_dtype=np.float64, ln: bool = False) -> np.ndarray:
  """The items in order: inputs summed in float32, rounded to bfloat16 (as the kernel stages
  them), products in `product_dtype` (float64: exact), outputs stored as float32.

  The chain is chaotic at the bfloat16 level: one input that rounds the other way changes 64
  outputs, whose next roundings then differ too, so float32 products already move 72 phases'
  result by ~1.5e-2 of its maximum (measured here at 18 layers). The GPU check therefore reports
  that noise (this function with float32 products) beside the kernel's error, and a one-layer
  check where little can cascade. `ln`: the inputs of mix and up items are layer-normed first
  (layer_norm_f32), as the model does; that also keeps the chain's magnitudes from growing."""
  a = np.array(acts, np.float32)
  for g in range(items.shape[0]):
    _, i0, i1, i2, out, kind = table[g]
    x = a[:, i0:i0 + KP] + a[:, i1:i1 + KP] + a[:, i2:i2 + KP]
    if ln and kind in LN_KINDS:
      x = layer_norm_f32(x)
    x = x.astype(jnp.bfloat16).astype(product_dtype)  # ml_dtypes' bfloat16: nearest even
    a[:, out:out + ROWS] = (x @ items[g].astype(product_dtype).T).astype(np.float32)
  return a


# ----------------------------------------------------------------------------- the kernel


def _inline(arg_types):
  return plgpu.inline_mgpu(arg_types=arg_types)


def batch_guard(idx, rows: int, body):
  """body() only where the batch row idx < rows (every row where rows == NB): the padded
  rows' loads and stores skipped, so a B < 8 step moves B rows' bytes, not 8."""
  if rows >= NB:
    body()
    return
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import arith  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import scf  # pylint: disable=g-import-not-at-top
  inside = arith.cmpi(arith.CmpIPredicate.ult, idx, mgpu_utils.c(rows, ir.IndexType.get()))
  branch = scf.IfOp(inside)
  with ir.InsertionPoint(branch.then_block):
    body()
    scf.yield_([])


def store_transposed(out_ref, acc, *addend_refs, rows: int = NB):
  """out = acc^T + the addends: the (64, 8) WGMMA-layout accumulator into (8, 64) GMEM rows
  (each addend an (8, 64) ref too), one scalar load / store per element; only the first
  `rows` rows (batch_guard)."""
  from jax._src.lib.mlir.dialects import arith  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import memref as mref  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(),) * (1 + len(addend_refs)) + (plgpu.Layout.WGMMA,))
  def store(ctx, out, *rest):
    del ctx
    *addends, acc = rest
    def one(v, idx):
      at = [idx[1], idx[0]]
      def body():
        w = v
        for ref in addends:
          w = arith.addf(w, mref.load(ref, at))
        mref.store(w, out, at)
      batch_guard(idx[1], rows, body)
    acc.foreach(one)

  store(out_ref, *addend_refs, acc)


def load_transposed(ref, rows: int = NB, interpret: bool = False):
  """An (NB, 64) float32 GMEM ref as the (64, NB) WGMMA-layout array of its transpose (the
  layout of a product's accumulator), so an epilogue's addends can be loaded before the
  product and added to it in registers; rows >= `rows` zero, never read. One scalar load per
  element. Interpret mode: the (NB, 64) values themselves (its accumulators are (NB, 64))."""
  if interpret:
    return ref[...]
  import jax.experimental.mosaic.gpu as mgpu  # pylint: disable=g-import-not-at-top
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import arith  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import memref as mref  # pylint: disable=g-import-not-at-top
  out_type = plgpu.ShapeDtypeStruct((ROWS, NB), jnp.float32, layout=plgpu.Layout.WGMMA)

  @plgpu.inline_mgpu(arg_types=(plgpu.RefType(),), return_type=out_type)
  def load(ctx, src):
    del ctx
    zero = mgpu.FragmentedArray.splat(mgpu_utils.c(0.0, ir.F32Type.get()), (ROWS, NB),
                                      layout=mgpu.WGMMA_LAYOUT)
    last = mgpu_utils.c(rows - 1, ir.IndexType.get())
    def one(v, idx):
      row = idx[1] if rows >= NB else arith.minui(idx[1], last)
      w = mref.load(src, [row, idx[0]])
      if rows >= NB:
        return w
      return arith.select(arith.cmpi(arith.CmpIPredicate.ule, idx[1], last), w, v)
    return zero.foreach(one, create_array=True)

  return load(ref)


def load_rows(ref, layout, rows: int, mask: bool = True):
  """An (NB, n) float32 GMEM ref into registers in `layout` (a plgpu.Layout.SMEM_GMEM_COPY),
  reading only rows 0..rows-1: row r reads row min(r, rows - 1), whose addresses a warp's load
  then shares with the rows below it, so the bytes moved are `rows` rows' (plgpu.load moves
  all NB). mask: rows >= `rows` are zero (activations' padding); otherwise they repeat the
  last row (rows = 1: a parameter vector broadcast from row 0). One vector load per register."""
  import jax.experimental.mosaic.gpu as mgpu  # pylint: disable=g-import-not-at-top
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import arith  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import vector  # pylint: disable=g-import-not-at-top
  shape = tuple(ref.shape)
  out_type = plgpu.ShapeDtypeStruct(shape, jnp.float32, layout=layout)

  @plgpu.inline_mgpu(arg_types=(plgpu.RefType(),), return_type=out_type)
  def load(ctx, src):
    del ctx
    tiled = layout.to_mgpu()
    zero = mgpu.FragmentedArray.splat(mgpu_utils.c(0.0, ir.F32Type.get()), shape, layout=tiled)
    vec_type = zero.registers.flat[0].type
    last = mgpu_utils.c(rows - 1, ir.IndexType.get())
    regs = np.empty(zero.registers.shape, dtype=object)
    for (row, col), reg_idx in zip(tiled.thread_idxs(shape), np.ndindex(zero.registers.shape)):
      v = vector.load(vec_type, src, [arith.minui(row, last), col])
      if mask and rows < shape[0]:
        inside = arith.cmpi(arith.CmpIPredicate.ule, row, last)
        v = arith.select(inside, v, zero.registers[reg_idx])
      regs[reg_idx] = v
    return mgpu.FragmentedArray(_registers=regs, _layout=tiled, _is_signed=None)

  return load(ref)


def load_slice(ref, start, width: int, layout, rows: int, interpret: bool,
               params: bool = False):
  """ref[:, start:start + width] in `layout`, the kernels' one way to read a slice: the ref
  itself in interpret mode; load_rows where fewer than NB rows are wanted (params: a parameter
  vector, read from row 0); else plgpu.load."""
  view = ref.at[:, pl.ds(start, width)]
  if interpret:
    return ref[:, pl.ds(start, width)]
  if rows < NB:
    return load_rows(view, layout, 1 if params else rows, mask=not params)
  return plgpu.load(view, (), layout=layout, optimized=False)


def fetch_chunk(items_ref, ring_ref, full_ref, p, q, *, programs: int, n_items: int, ring: int,
                chunk: int):
  """Chunk q of program p's stream (items p, p + programs, ...; N_CHUNKS chunks of `chunk`
  columns each) into its ring slot q mod ring, by TMA; nothing past the last item."""
  g = p + (q // N_CHUNKS) * programs
  @pl.when(g < n_items)
  def _():
    c, slot = q % N_CHUNKS, q % ring
    plgpu.copy_gmem_to_smem(items_ref.at[g, :, pl.ds(c * chunk, chunk)], ring_ref.at[slot],
                            full_ref.at[slot])


def signal_counter(counter_ref):
  """All threads' stores, then one release add of 1 at GPU scope (Mosaic's semaphore signal)."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(),))
  def signal(ctx, ref):
    del ctx
    mgpu_utils.warpgroup_barrier()
    mgpu_utils.SemaphoreRef(mgpu_utils.memref_ptr(ref)).signal(1, memory_scope="gpu")

  signal(counter_ref)


def zero_counter(ref):
  """ref[0] = 0 from one thread, at GPU scope (relaxed: the kernel's end orders it)."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import llvm  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(),))
  def zero(ctx, ref):
    del ctx
    pred = mgpu_utils.single_thread_predicate(mgpu_utils.ThreadSubset.WARPGROUP)
    zero_i32 = mgpu_utils.c(0, ir.IntegerType.get_signless(32))
    llvm.inline_asm(ir.Type.parse("!llvm.void"), [mgpu_utils.memref_ptr(ref), zero_i32, pred],
                    "@$2 st.relaxed.gpu.global.b32 [$0], $1;", "l,r,b", has_side_effects=True)

  zero(ref)


TRACE_POINTS = ("start", "waited", "staged", "product", "stored", "signalled")


def stamp(ref):
  """ref[0] = this SM's cycle counter (%clock, 32 bits), written by one thread: a trace
  point. The read is volatile, so it keeps its place among the kernel's other side effects
  (waits, fences, stores): a stamp after a fence or a wgmma wait is taken once they are done."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import llvm  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(),))
  def write(ctx, r):
    del ctx
    pred = mgpu_utils.single_thread_predicate(mgpu_utils.ThreadSubset.WARPGROUP)
    llvm.inline_asm(ir.Type.parse("!llvm.void"), [mgpu_utils.memref_ptr(r), pred],
                    "{ .reg .u32 t; mov.u32 t, %clock; @$1 st.global.u32 [$0], t; }", "l,b",
                    has_side_effects=True)

  write(ref)


def wait_counter(counter_ref, target):
  """One thread polls (relaxed loads) until counter >= target, then acquires; all wait."""
  from jax.experimental.mosaic.gpu import utils as mgpu_utils  # pylint: disable=g-import-not-at-top

  @_inline((plgpu.RefType(), plgpu.Layout.WG_SPLAT))
  def wait(ctx, ref, value):
    del ctx
    mgpu_utils.SemaphoreRef(mgpu_utils.memref_ptr(ref)).wait(
        value.registers.item(), decrement=False, memory_scope="gpu")

  wait(counter_ref, target)


def interpret_params():
  from jax._src.pallas.mosaic_gpu.interpret import params  # pylint: disable=g-import-not-at-top
  return params.InterpretGPUParams()


def ring_product(ring_ref, full_ref, x_smem, i: int, ring: int, chunk: int, interpret: bool):
  """Item i's product: its weight chunks (ring slots (4 i + c) mod ring, each awaited on its
  barrier) times the staged input. On the GPU a wgmma (64, NB) float32 accumulator value (the
  transposed result); in interpret mode the (NB, 64) result itself."""
  if interpret:
    acc = jnp.zeros((NB, ROWS), jnp.float32)
    for c in range(N_CHUNKS):
      slot = (i * N_CHUNKS + c) % ring
      plgpu.barrier_wait(full_ref.at[slot])
      acc = acc + jax.lax.dot_general(
          x_smem[:, pl.ds(c * chunk, chunk)], ring_ref[slot], (((1,), (1,)), ((), ())),
          preferred_element_type=jnp.float32)
    return acc

  def product(acc_ref):
    for c in range(N_CHUNKS):
      slot = (i * N_CHUNKS + c) % ring
      plgpu.barrier_wait(full_ref.at[slot])
      xt = plgpu.transpose_ref(x_smem.at[:, pl.ds(c * chunk, chunk)], (1, 0))
      plgpu.wgmma(acc_ref, ring_ref.at[slot], xt)
    return acc_ref[...]
  return pl.run_scoped(product, plgpu.ACC((ROWS, NB), jnp.float32))


def layer_norm_rows(x, layout, d: int = D_MODEL):
  """layer_norm_f32 on an (NB, KP) float32 register array whose first d columns are the
  features (the rest zero): per-row sums over its columns (layout: the array's, for the
  broadcasts back; None in interpret mode)."""
  inv_d = 1.0 / d
  mean = jnp.sum(x, axis=1) * inv_d
  var = jnp.sum(x * x, axis=1) * inv_d - mean * mean
  rstd = jax.lax.rsqrt(var + LN_EPS)
  def rows(v):
    v = jax.lax.broadcast_in_dim(v, x.shape, (0,))
    return v if layout is None else plgpu.layout_cast(v, layout)
  return (x - rows(mean)) * rows(rstd)


def chain_kernel(layers: int, programs: int, ring: int, wait: bool = True, ln: bool = False,
                 xload: int = 0, interpret: bool = False, noload: bool = False,
                 rows: int = NB):
  """kernel(items, table, acts, counters, parity): one token's items over GMEM refs (made with
  jax.new_ref inside a jit): items (n, 64, 896) bf16, table (n, 6) i32, acts (8, COLS) f32
  (updated in place), counters (2,) i32. The token counts on counters[parity], which must be
  zero, and zeroes counters[1 - parity] for the next token (the previous token, the only one
  that used it, has finished: kernels on a stream run one after the other).

  ln: mix and up items layer-norm their input (a per-row reduction in registers), as the model;
  xload: out items load that many more (zero) slices, standing in for the short convolution's
  state and gating inputs (the cost of the model's widest input), the result unchanged;
  noload: items stage zeros instead of loading their inputs (wrong results: a timing probe of
  the loads' share of a phase); rows < NB: items load and store only the first `rows` batch
  rows (load_rows, store_transposed), the rest staged as zeros.

  interpret: Mosaic GPU's interpret mode on the CPU, for one program (its items run in order,
  so nothing needs the counter): it has no GMEM loads with layouts, no inline_mgpu (atomics,
  the transposed store) and no transposed wgmma operand, so those four steps take plain-jnp
  stand-ins (the same values); the TMA ring, its barriers, the item table, the staging and the
  layer norm run as on the GPU."""
  n_items = layers * PER_LAYER
  per_program = -(-n_items // programs)
  if ring < N_CHUNKS + 1:
    raise ValueError(f"ring must exceed {N_CHUNKS} chunks (one item), got {ring}")
  if programs < 1:
    raise ValueError(f"programs must be positive, got {programs}")
  if interpret and programs != 1:
    raise ValueError(f"interpret mode runs one program, got {programs}")
  wait = wait and not interpret
  load_layout = plgpu.Layout.SMEM_GMEM_COPY((NB, KP), jnp.bfloat16, swizzle=64)

  fetch = functools.partial(fetch_chunk, programs=programs, n_items=n_items, ring=ring,
                            chunk=CHUNK)

  def program(items_ref, table_ref, acts_ref, counters_ref, parity, ring_ref, x_smem, full_ref):
    p = jax.lax.axis_index("p")
    counter_ref = counters_ref.at[pl.ds(parity, 1)]
    if not interpret:
      pl.when(p == 0)(lambda: zero_counter(counters_ref.at[pl.ds(1 - parity, 1)]))
    for q in range(ring):
      fetch(items_ref, ring_ref, full_ref, p, q)

    def step(i, carry):
      g = p + i * programs
      @pl.when(g < n_items)
      def _():
        row = table_ref.at[g]
        target, i0, i1, i2, out, kind = (row[j] for j in range(6))
        if wait:
          wait_counter(counter_ref, target)
        load = lambda start: load_slice(acts_ref, start, KP, load_layout, rows, interpret)
        if noload:
          x = jnp.zeros((NB, KP), jnp.float32)
          x = x if interpret else plgpu.layout_cast(x, load_layout)
        else:
          x = load(i0) + load(i1) + load(i2)
        def stage(v):
          x_smem[...] = v.astype(jnp.bfloat16)

        if not (ln or xload):
          stage(x)
        else:
          is_ln = ((kind == LN_KINDS[0]) | (kind == LN_KINDS[1])) if ln else kind < 0
          is_wide = (kind == 1) if xload else kind < 0
          pl.when(is_ln)(lambda: stage(layer_norm_rows(x, None if interpret else load_layout)))
          pl.when(is_wide)(lambda: stage(sum((load(Z) for _ in range(xload)), x)))
          pl.when(~is_ln & ~is_wide)(lambda: stage(x))
        plgpu.commit_smem()

        acc = ring_product(ring_ref, full_ref, x_smem, i, ring, CHUNK, interpret)
        for c in range(N_CHUNKS):  # the slots just read are free: refill them
          fetch(items_ref, ring_ref, full_ref, p, i * N_CHUNKS + c + ring)
        if interpret:
          acts_ref[:, pl.ds(out, ROWS)] = acc
        else:
          store_transposed(acts_ref.at[:, pl.ds(out, ROWS)], acc, rows=rows)
          signal_counter(counter_ref)
      return carry

    jax.lax.fori_loop(0, per_program, step, 0)

  def kernel(items_ref, table_ref, acts_ref, counters_ref, parity: int):
    @pl.core_map(plgpu.Mesh(grid=(programs,), grid_names=("p",)),
                 compiler_params=plgpu.CompilerParams(),
                 interpret=interpret_params() if interpret else False)
    def _():
      pl.run_scoped(
          functools.partial(program, items_ref, table_ref, acts_ref, counters_ref, parity),
          plgpu.SMEM((ring, ROWS, CHUNK), jnp.bfloat16, transforms=_TRANSFORMS),
          plgpu.SMEM((NB, KP), jnp.bfloat16, transforms=_TRANSFORMS),
          plgpu.Barrier(num_arrivals=1, num_barriers=ring))
  return kernel


def parse_variant(name: str, sms: int) -> dict:
  parts = name.split("_")
  spec = {"wait": parts[0] != "nowait", "ring": 6, "programs": sms, "ln": False, "xload": 0,
          "noload": False, "rows": False}
  if parts[0] not in ("chain", "nowait"):
    raise ValueError(f"unknown variant {name!r}")
  for part in parts[1:]:
    if part.startswith("ring"):
      spec["ring"] = int(part[4:])
    elif part.startswith("progs"):
      spec["programs"] = int(part[5:])
    elif part in ("ln", "noload", "rows"):
      spec[part] = True
    elif part.startswith("xload"):
      spec["xload"] = int(part[5:])
    else:
      raise ValueError(f"unknown variant part {part!r} in {name!r}")
  return spec



def make_runner(layers: int, spec: dict, tokens: int = 1, interpret: bool = False,
                batch: int = NB):
  """jit(items, table, acts0) -> acts after `tokens` tokens (acts0 is not modified): kernels
  back to back, alternating the counter parity, each token's activations feeding the next, as
  the engine chains its tokens. Unrolled in Python: JAX 0.11.2's fori_loop cannot carry the
  GMEM refs (their memory space is lost in the loop's carry types). spec["rows"]: the kernel
  moves only `batch` rows (chain_kernel's rows)."""
  kernel = chain_kernel(layers, spec["programs"], spec["ring"], spec["wait"], spec["ln"],
                        spec["xload"], interpret, spec["noload"],
                        batch if spec["rows"] else NB)

  @jax.jit
  def run(items, table, acts0):
    gmem = functools.partial(jax.new_ref, memory_space=plgpu.GMEM)
    items_ref, table_ref, acts_ref = gmem(items), gmem(table), gmem(acts0)
    counters = gmem(jnp.zeros((2,), jnp.int32))
    for token in range(tokens):
      kernel(items_ref, table_ref, acts_ref, counters, token % 2)
    return acts_ref[...]
  return run
