"""Every layer of one token's dense path in one Mosaic GPU kernel: the chain kernel of
experiments/mgpu_chain.py grown into the model's whole layer (no flags here: tests import it).

The chain kernel showed the design on the matrix products alone: weights cut into (64, KP)
"items", each SM streaming its own items through a TMA ring that never waits for activations,
one global counter ordering the phases. Here each item also does its part of the layer, so
the kernel computes exactly what `hyena._token_layer` does, layer after layer:

  kind  weights (rows = outputs)       input (computed by every item of the kind, in registers)
  mix   in_proj, 3 streams x KP rows   LN1(x)                     -> p, into the layer's ring
  out   out_proj, KP rows              x0 * (acc + red * x1 * v), (x0, x1, v) = short conv of
                                       the ring's last K p's       -> x + . + bias   (y)
  up    fc1, IP rows                   LN2(y)                     -> h
  down  fc2, one KP-column half each   gelu(h half)               -> y + . + bias (half 0),
                                                                     . (other halves)
The next layer's x is the sum of the down halves. Out item 0 also stores u = x1 * v (the
long convolution's input). The short convolution's state is a ring of the last K p's per
layer (slot = position mod K), so no item copies it; `make_token_dense` converts the engine's
(M, B, K - 1, 3D) state to and from the ring.

All activations live in one (8, COLS) float32 buffer (batch rows, B <= 8 padded); parameter
vectors in an (8, PCOLS) float32 buffer (rows repeated, so every load has the same shape).
Padded columns are zero in weights, biases, norm scales and shifts, so they stay zero through
every step (gelu(0) = 0); padded batch rows carry values nobody reads.

Options of token_kernel, each measured side by side on the GPU (experiments/NOTES.md,
sessions 25-27): conv_epilogue (where the short convolution runs), rows (only the batch's rows
moved), prefetch (epilogue addends loaded beside the inputs), hoist (the table row read before
the wait) and a trace of SM clock stamps (summarise_trace). make_chain times kernels back to
back; make_model_chain wraps them in the no-mixer model's token loop (embedding, final norm,
unembedding). A data-carrying synchronisation (consumers polling the values themselves instead
of a counter) was built here and measured slower at B = 1 and 8 (NOTES, sessions 27-28); its
code is in git history at 24c03ba.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from experiments import mgpu_chain as mc

ROWS, NB, N_CHUNKS = 64, 8, 4
MIX, OUT, UP, DOWN = range(4)
_TRANSFORMS = (plgpu.TilingTransform((8, 32)), plgpu.SwizzleTransform(64))
# Table columns.
(C_WAIT, C_IN0, C_IN1, C_IN2, C_OUT, C_KIND, C_PBASE, C_BIAS, C_RES0, C_RES1,
 C_UOUT, C_AUX) = range(12)


def _up(n: int, m: int) -> int:
  return -(-n // m) * m


def window_slot(slot, j: int, k: int):
  """The ring slot of entry j of the short convolution's window (0 = the oldest; K - 1 = the
  token's own, `slot`): (slot - (K - 1) + j) mod K, with a compare instead of a remainder where
  slot is traced (the kernel reads it at run time)."""
  w = slot + 1 + j
  return w % k if isinstance(slot, int) else jnp.where(w >= k, w - k, w)


@dataclasses.dataclass(frozen=True)
class Geometry:
  """Static shapes and buffer offsets for M layers of width D, inner width I, short order K."""
  layers: int
  d: int
  inner: int
  k: int

  @property
  def kp(self):  # the padded width: four wgmma chunks of a multiple of 32 columns
    return _up(self.d, 128)

  @property
  def ip(self):
    return _up(self.inner, ROWS)

  @property
  def halves(self):
    return -(-self.ip // self.kp)

  @property
  def chunk(self):
    return self.kp // N_CHUNKS

  def counts(self):
    t = self.kp // ROWS
    return {MIX: 3 * t, OUT: t, UP: self.ip // ROWS, DOWN: self.halves * t}

  @property
  def per_layer(self):
    return sum(self.counts().values())

  # Activation buffer regions (columns): one Y, H, P, C reused by every layer.
  def regions(self):
    kp, m, hk = self.kp, self.layers, self.halves * self.kp
    sizes = [("Z", kp), ("X0", kp), ("Y", kp), ("H", hk), ("P", hk), ("ACC", m * kp),
             ("UOUT", m * kp), ("RING", m * self.k * 3 * kp), ("C", 3 * kp)]
    out, col = {}, 0
    for name, size in sizes:
      out[name] = col
      col += size
    out["COLS"] = col
    return out

  # Parameter buffer: per layer these blocks (widths in units of KP), then one zero block.
  def param_blocks(self):
    return [("LN1S", 1), ("LN1B", 1), ("INB", 3), ("TAPS", 3 * self.k), ("CB", 3),
            ("RED", 1), ("OUTB", 1), ("LN2S", 1), ("LN2B", 1), ("UPB", self.halves),
            ("DNB", 1)]

  def param_offsets(self):
    out, col = {}, 0
    for name, width in self.param_blocks():
      out[name] = col
      col += width * self.kp
    out["LAYER"] = col
    return out

  @property
  def param_cols(self):
    return self.layers * self.param_offsets()["LAYER"] + self.kp  # + the zero block

  def validate(self):
    if self.halves > 2:
      raise ValueError(f"d_inner {self.inner} needs {self.halves} halves of {self.kp}; this "
                       "kernel takes at most 2 (d_inner <= 2 * padded d_model)")
    if self.k < 1:
      raise ValueError(f"short order must be >= 1, got {self.k}")


def item_table(g: Geometry, conv_epilogue: bool = False) -> np.ndarray:
  """(layers * per_layer, 12) int32, items in phase order (see the column names above).

  conv_epilogue: mix items also finish the short convolution of their 64 channels in their
  epilogue (p's older ring slots, taps from RES0 on, bias at RES1, into C at AUX), so out items
  load the three convolved streams from C instead of the ring's 3 K slots and the taps."""
  g.validate()
  r, p = g.regions(), g.param_offsets()
  kp, t = g.kp, g.kp // ROWS
  zero_params = g.layers * p["LAYER"]
  rows, done = [], 0
  counts = g.counts()
  for layer in range(g.layers):
    pb = layer * p["LAYER"]
    if layer == 0:
      x_in = (r["X0"], r["Z"])
    else:
      x_in = (r["P"], r["P"] + kp if g.halves > 1 else r["Z"])
    ring = r["RING"] + layer * g.k * 3 * kp
    for s in range(3):
      for i in range(t):
        if conv_epilogue:
          conv = (pb + p["TAPS"] + s * kp + ROWS * i, pb + p["CB"] + s * kp + ROWS * i,
                  r["C"] + s * kp + ROWS * i)
        else:
          conv = (r["Z"], r["Z"], -1)
        rows.append((done, x_in[0], x_in[1], r["Z"], ring + s * kp + ROWS * i, MIX, pb,
                     pb + p["INB"] + s * kp + ROWS * i, *conv[:2], -1, conv[2]))
    done += counts[MIX]
    for i in range(t):
      rows.append((done, r["C"] if conv_epilogue else ring, r["ACC"] + layer * kp, r["Z"],
                   r["Y"] + ROWS * i, OUT, pb, pb + p["OUTB"] + ROWS * i, x_in[0] + ROWS * i,
                   x_in[1] + ROWS * i, r["UOUT"] + layer * kp if i == 0 else -1, -1))
    done += counts[OUT]
    for i in range(counts[UP]):
      rows.append((done, r["Y"], r["Z"], r["Z"], r["H"] + ROWS * i, UP, pb,
                   pb + p["UPB"] + ROWS * i, r["Z"], r["Z"], -1, -1))
    done += counts[UP]
    for h in range(g.halves):
      for i in range(t):
        bias = pb + p["DNB"] + ROWS * i if h == 0 else zero_params
        res = r["Y"] + ROWS * i if h == 0 else r["Z"]
        rows.append((done, r["H"] + h * kp, r["Z"], r["Z"], r["P"] + h * kp + ROWS * i, DOWN,
                     pb, bias, res, r["Z"], -1, -1))
    done += counts[DOWN]
  return np.asarray(rows, np.int32)


def _pad2(w, rows, cols):
  out = np.zeros((rows, cols), np.float32)
  out[:w.shape[0], :w.shape[1]] = w
  return out


def prepare(params, g: Geometry):
  """(items (n, 64, KP) bfloat16, param buffer (8, PCOLS) float32) from hyena params."""
  g.validate()
  lp = jax.tree.map(lambda a: np.asarray(a, np.float32), params["layers"])
  d, kp, t = g.d, g.kp, g.kp // ROWS
  items, prm = [], np.zeros((g.param_cols,), np.float32)
  p = g.param_offsets()
  for layer in range(g.layers):
    w_in = lp["in_proj"]["kernel"][layer]  # (D, 3D): x @ w
    for s in range(3):
      items.append(_pad2(w_in[:, s * d:(s + 1) * d].T, kp, kp).reshape(t, ROWS, kp))
    items.append(_pad2(lp["out_proj"]["kernel"][layer].T, kp, kp).reshape(t, ROWS, kp))
    items.append(_pad2(lp["mlp"]["fc1"]["kernel"][layer].T, g.ip, kp).reshape(-1, ROWS, kp))
    down = _pad2(lp["mlp"]["fc2"]["kernel"][layer].T, kp, g.halves * kp)  # (D, I) padded
    for h in range(g.halves):
      items.append(down[:, h * kp:(h + 1) * kp].reshape(t, ROWS, kp))
    base = layer * p["LAYER"]
    def put(name, vec, offset=0):
      prm[base + p[name] + offset:base + p[name] + offset + len(vec)] = vec
    put("LN1S", lp["norm1"]["scale"][layer])
    put("LN1B", lp["norm1"]["bias"][layer])
    for s in range(3):
      put("INB", lp["in_proj"]["bias"][layer][s * d:(s + 1) * d], s * kp)
      put("CB", lp["short_conv"]["bias"][layer][s * d:(s + 1) * d], s * kp)
      for j in range(g.k):
        put("TAPS", lp["short_conv"]["kernel"][layer][j, s * d:(s + 1) * d], (3 * j + s) * kp)
    put("OUTB", lp["out_proj"]["bias"][layer])
    put("LN2S", lp["norm2"]["scale"][layer])
    put("LN2B", lp["norm2"]["bias"][layer])
    put("UPB", lp["mlp"]["fc1"]["bias"][layer])
    put("DNB", lp["mlp"]["fc2"]["bias"][layer])
  items = np.concatenate(items).astype(jnp.bfloat16)
  return jnp.asarray(items), jnp.asarray(np.broadcast_to(prm, (NB, prm.size)))


def set_red(prm, red, g: Geometry):
  """The param buffer with each layer's red tap (M, D) in place."""
  p = g.param_offsets()
  for layer in range(g.layers):
    col = layer * p["LAYER"] + p["RED"]
    prm = prm.at[:, col:col + g.d].set(jnp.broadcast_to(red[layer], (NB, g.d)))
  return prm


def _epilogue_conv(out_ref, bias_ref, old_refs, tap_refs, cb_ref, c_ref, acc, rows: int = NB):
  """A mix item's epilogue with the short convolution: p = acc^T + bias into the ring slot
  (out_ref) and c = sum_j tap_j * window_j + cb into C, window = (older slots..., p); only
  the first `rows` batch rows (mc.batch_guard)."""
  from jax._src.lib.mlir.dialects import arith  # pylint: disable=g-import-not-at-top
  from jax._src.lib.mlir.dialects import memref as mref  # pylint: disable=g-import-not-at-top
  refs = (out_ref, bias_ref, *old_refs, *tap_refs, cb_ref, c_ref)
  n_old = len(old_refs)

  @plgpu.inline_mgpu(arg_types=(plgpu.RefType(),) * len(refs) + (plgpu.Layout.WGMMA,))
  def store(ctx, *args):
    del ctx
    out, bias, *rest = args[:-1]
    olds, taps, (cb, c_out) = rest[:n_old], rest[n_old:-2], rest[-2:]
    def one(v, idx):
      at = [idx[1], idx[0]]
      ld = lambda ref: mref.load(ref, at)
      def body():
        p = arith.addf(v, ld(bias))
        mref.store(p, out, at)
        c = arith.addf(ld(cb), arith.mulf(p, ld(taps[-1])))
        for old, tap in zip(olds, taps[:-1]):
          c = arith.addf(c, arith.mulf(ld(old), ld(tap)))
        mref.store(c, c_out, at)
      mc.batch_guard(idx[1], rows, body)
    args[-1].foreach(one)

  store(*refs, acc)


def token_kernel(g: Geometry, programs: int, ring: int = 6, interpret: bool = False,
                 conv_epilogue: bool = False, rows: int = NB, prefetch: bool = False,
                 hoist: bool = False):
  """kernel(items, table, prm, acts, counters, where[, trace]): one token through every
  layer, in place on acts (see the module docstring); where: a (3,) int32 ref (token_where)
  holding the token's parity, its ring slot (position mod K) and its index in a trace, read by
  the kernel, so every token runs the same compiled kernel (a Mosaic kernel compiles in ~4.5 s;
  with these static, each (parity, slot) pair was another); counters as in
  mgpu_chain.chain_kernel (counters[parity] zero on entry); trace: a (tokens, items, 8) int32
  ref whose [token] row gets each item's stamps at mc.TRACE_POINTS (make_chain's trace).
  conv_epilogue: the table's layout of the same name (item_table). rows < NB: only the first
  `rows` batch rows of the activations are loaded and stored (mc.load_rows, mc.store_transposed;
  the rest are zero when loaded), and parameter vectors are read from their row 0 alone.
  prefetch: every epilogue addend (bias, residual rows; with conv_epilogue the older ring slots,
  taps and conv bias) is loaded right after the wait, beside the inputs (mc.load_transposed),
  instead of after the product: one dependent memory round trip fewer per phase (interpret mode
  always takes this epilogue: its transposed loads are plain reads of the same values). hoist:
  the item's whole table row is read before the wait (the wait's acquire orders every later load
  after it, so a column read after it costs a round trip before the loads it addresses)."""
  g.validate()
  kp, chunk, k = g.kp, g.chunk, g.k
  regions = g.regions()
  n_items = g.layers * g.per_layer
  per_program = -(-n_items // programs)
  if ring < N_CHUNKS + 1:
    raise ValueError(f"ring must exceed {N_CHUNKS} chunks (one item), got {ring}")
  if interpret and programs != 1:
    raise ValueError(f"interpret mode runs one program, got {programs}")
  po = g.param_offsets()
  layout = plgpu.Layout.SMEM_GMEM_COPY((NB, kp), jnp.bfloat16, swizzle=64)

  fetch = functools.partial(mc.fetch_chunk, programs=programs, n_items=n_items, ring=ring,
                            chunk=chunk)

  def program(items_ref, table_ref, prm_ref, acts_ref, counters_ref, where_ref, trace_ref,
              ring_ref, x_smem, full_ref):
    p = jax.lax.axis_index("p")
    parity, slot, token = where_ref[0], where_ref[1], where_ref[2]
    counter_ref = counters_ref.at[pl.ds(parity, 1)]
    if not interpret:
      pl.when(p == 0)(lambda: mc.zero_counter(counters_ref.at[pl.ds(1 - parity, 1)]))
    for q in range(ring):
      fetch(items_ref, ring_ref, full_ref, p, q)

    def load_from(ref, start, params=False):
      return mc.load_slice(ref, start, kp, layout, rows, interpret, params)

    def stage(v):
      x_smem[...] = v.astype(jnp.bfloat16)

    def step(i, carry):
      it = p + i * programs
      @pl.when(it < n_items)
      def _():
        def mark(point):  # a trace stamp (mc.TRACE_POINTS), if the kernel traces
          if trace_ref is not None and not interpret:
            mc.stamp(trace_ref.at[token, it, pl.ds(mc.TRACE_POINTS.index(point), 1)])
        mark("start")
        row = table_ref.at[it]
        if hoist:  # the whole row now, so no load after the wait waits for an address
          values = [row[c] for c in range(C_AUX + 1)]
          col = lambda c: values[c]
        else:
          col = lambda c: row[c]
        kind, pb = col(C_KIND), col(C_PBASE)
        if not interpret:
          mc.wait_counter(counter_ref, col(C_WAIT))
        mark("waited")
        out = col(C_OUT) + jnp.where(kind == MIX, slot * 3 * kp, 0)
        lay = None if interpret else layout

        # What each kind stages for its product, from its loaded inputs.
        def stage_norm(x, scale, shift):  # mix: LN1(x), up: LN2(y)
          stage(mc.layer_norm_rows(x, lay, g.d) * scale + shift)

        def stage_gate(x0, x1, v, acc_in, red):  # out; u = x1 * v is the long conv's input
          u = x1 * v
          stage(x0 * (acc_in + red * u))
          uout = col(C_UOUT)
          @pl.when(uout >= 0)
          def _():
            acts_ref[:, pl.ds(uout, kp)] = u

        def stage_gelu(h):  # down
          stage(jax.nn.gelu(h, approximate=True))  # the model's gelu

        if prefetch or interpret:  # (interpret mode: the same values, loaded earlier)
          addends = prefetch_addends(acts_ref, prm_ref, col, out, slot)
        act = functools.partial(load_from, acts_ref)
        prm = functools.partial(load_from, prm_ref, params=True)

        @pl.when(kind == MIX)
        def _():
          stage_norm(act(col(C_IN0)) + act(col(C_IN1)), prm(pb + po["LN1S"]),
                     prm(pb + po["LN1B"]))

        @pl.when(kind == OUT)
        def _():
          ring0 = col(C_IN0)
          def conv(s):
            if conv_epilogue:  # convolved by the mix items: C holds the three streams
              return act(ring0 + s * kp)
            c = prm(pb + po["CB"] + s * kp)
            for j in range(k):
              c = c + (act(ring0 + (3 * window_slot(slot, j, k) + s) * kp)
                       * prm(pb + po["TAPS"] + (3 * j + s) * kp))
            return c
          stage_gate(conv(0), conv(1), conv(2), act(col(C_IN1)), prm(pb + po["RED"]))

        pl.when(kind == UP)(lambda: stage_norm(act(col(C_IN0)), prm(pb + po["LN2S"]),
                                               prm(pb + po["LN2B"])))
        pl.when(kind == DOWN)(lambda: stage_gelu(act(col(C_IN0))))

        plgpu.commit_smem()
        mark("staged")

        acc = mc.ring_product(ring_ref, full_ref, x_smem, i, ring, chunk, interpret)
        mark("product")
        for c in range(N_CHUNKS):  # the slots just read are free: refill them
          fetch(items_ref, ring_ref, full_ref, p, i * N_CHUNKS + c + ring)
        cols = lambda ref, start: ref.at[:, pl.ds(start, ROWS)]

        def plain():
          mc.store_transposed(cols(acts_ref, out), acc, cols(prm_ref, col(C_BIAS)),
                              cols(acts_ref, col(C_RES0)), cols(acts_ref, col(C_RES1)),
                              rows=rows)

        def with_conv():
          taps = [col(C_RES0) + 3 * j * kp for j in range(k)]
          _epilogue_conv(cols(acts_ref, out), cols(prm_ref, col(C_BIAS)),
                         [cols(acts_ref, o) for o in older_slots(out, slot)],
                         [cols(prm_ref, t) for t in taps], cols(prm_ref, col(C_RES1)),
                         cols(acts_ref, col(C_AUX)), acc, rows)

        if prefetch or interpret:
          finish_prefetched(acts_ref, col, out, acc, addends)
        elif conv_epilogue:
          pl.when(kind == MIX)(with_conv)
          pl.when(kind != MIX)(plain)
        else:
          plain()
        mark("stored")
        if not interpret:
          mc.signal_counter(counter_ref)
        mark("signalled")
      return carry

    jax.lax.fori_loop(0, per_program, step, 0)

  zero_params = g.layers * po["LAYER"]

  def older_slots(out, slot):
    """A mix item's rows in the layer ring's older slots, oldest first (out: its current slot's
    offset)."""
    return [out + (window_slot(slot, j, k) - slot) * 3 * kp for j in range(k - 1)]

  def transposed(ref, start):
    return mc.load_transposed(ref.at[:, pl.ds(start, ROWS)], rows, interpret)

  def prefetch_addends(acts_ref, prm_ref, col, out, slot):
    """Every addend of the item's epilogue, as (64, NB) accumulator-layout values. Offsets an
    item's kind does not use point at zeros (Z, the zero parameter block), so every kind
    runs the same loads and the same sums."""
    if not conv_epilogue:
      return dict(bias=transposed(prm_ref, col(C_BIAS)),
                  res=transposed(acts_ref, col(C_RES0)) + transposed(acts_ref, col(C_RES1)))
    # Conv-epilogue mix rows hold the taps' base in RES0 and the conv bias in RES1 (prm), so
    # their residuals read Z; other kinds read Z for the ring's older slots and the zero
    # parameter block for the taps and the conv bias.
    is_mix, z = col(C_KIND) == MIX, regions["Z"]
    mix_only = lambda start: jnp.where(is_mix, start, zero_params)
    res = (transposed(acts_ref, jnp.where(is_mix, z, col(C_RES0)))
           + transposed(acts_ref, jnp.where(is_mix, z, col(C_RES1))))
    olds = [transposed(acts_ref, jnp.where(is_mix, o, z)) for o in older_slots(out, slot)]
    return dict(res=res, olds=olds, bias=transposed(prm_ref, col(C_BIAS)),
                taps=[transposed(prm_ref, mix_only(col(C_RES0) + 3 * j * kp))
                      for j in range(k)],
                cb=transposed(prm_ref, mix_only(col(C_RES1))))

  def finish_prefetched(acts_ref, col, out, acc, add):
    """out = acc + bias + residuals; with conv_epilogue a mix item also stores its channels'
    short convolution sum_j tap_j * window_j + cb into AUX (window = older slots, then out)."""
    def store(start, value):
      if interpret:
        acts_ref[:, pl.ds(start, ROWS)] = value
      else:
        mc.store_transposed(acts_ref.at[:, pl.ds(start, ROWS)], value, rows=rows)
    v = acc + add["bias"] + add["res"]
    store(out, v)
    if conv_epilogue:
      c = add["cb"] + v * add["taps"][-1]
      for old, tap in zip(add["olds"], add["taps"][:-1]):
        c = c + old * tap
      pl.when(col(C_KIND) == MIX)(lambda: store(col(C_AUX), c))

  def kernel(items_ref, table_ref, prm_ref, acts_ref, counters_ref, where_ref, trace_ref=None):
    @pl.core_map(plgpu.Mesh(grid=(programs,), grid_names=("p",)),
                 compiler_params=plgpu.CompilerParams(),
                 interpret=mc.interpret_params() if interpret else False)
    def _():
      pl.run_scoped(
          functools.partial(program, items_ref, table_ref, prm_ref, acts_ref, counters_ref,
                            where_ref, trace_ref),
          plgpu.SMEM((ring, ROWS, chunk), jnp.bfloat16, transforms=_TRANSFORMS),
          plgpu.SMEM((NB, kp), jnp.bfloat16, transforms=_TRANSFORMS),
          plgpu.Barrier(num_arrivals=1, num_barriers=ring))
  return kernel


def token_where(parity: int, slot: int, index: int = 0):
  """The kernel's `where`, a GMEM ref: [parity, ring slot, trace index]."""
  return jax.new_ref(jnp.asarray([parity, slot, index], jnp.int32), memory_space=plgpu.GMEM)


def final_x(acts, g: Geometry, batch: int):
  """The token's output x (batch, d): the sum of the last layer's down halves in `acts` (an
  array or a ref)."""
  last = g.regions()["P"]
  return sum(acts[:batch, last + h * g.kp:last + h * g.kp + g.d] for h in range(g.halves))


def make_token_dense(g: Geometry, programs: int, ring: int = 6, interpret: bool = False,
                     conv_epilogue: bool = False, rows: int = NB, prefetch: bool = False,
                     hoist: bool = False):
  """jit(items, table, prm, x, acc, conv_state, position) -> (x, u, conv_state): the layers of
  `hyena.token_step` for one token (x (B, D) embedded, acc (M, B, D), conv_state
  (M, B, K-1, 3D), red already in prm via set_red), as one kernel. `position` is static
  (its value mod K picks the ring slot). rows (at least the batch), prefetch, hoist:
  token_kernel's."""
  kernel = token_kernel(g, programs, ring, interpret, conv_epilogue, rows, prefetch, hoist)
  r, kp, d, k = g.regions(), g.kp, g.d, g.k

  @functools.partial(jax.jit, static_argnames=("position",))
  def run(items, table, prm, x, acc, conv_state, position):
    b = x.shape[0]
    if b > rows:
      raise ValueError(f"batch {b} exceeds the kernel's {rows} rows")
    slot = position % k
    acts = jnp.zeros((NB, r["COLS"]), jnp.float32)
    acts = acts.at[:b, r["X0"]:r["X0"] + d].set(x.astype(jnp.float32))
    for layer in range(g.layers):
      a0 = r["ACC"] + layer * kp
      acts = acts.at[:b, a0:a0 + d].set(acc[layer].astype(jnp.float32))
      base = r["RING"] + layer * k * 3 * kp
      for j in range(k - 1):  # state entry j (oldest first) -> window entry j
        pos = window_slot(slot, j, k)
        for s in range(3):
          c0 = base + (3 * pos + s) * kp
          acts = acts.at[:b, c0:c0 + d].set(conv_state[layer, :, j, s * d:(s + 1) * d])
    gmem = functools.partial(jax.new_ref, memory_space=plgpu.GMEM)
    acts_ref = gmem(acts)
    kernel(gmem(items), gmem(table), gmem(prm), acts_ref, gmem(jnp.zeros((2,), jnp.int32)),
           token_where(0, slot))
    acts = acts_ref[...]
    x_out = final_x(acts, g, b)
    u = jnp.stack([acts[:b, r["UOUT"] + m * kp:r["UOUT"] + m * kp + d]
                   for m in range(g.layers)])
    states = []
    for layer in range(g.layers):
      base = r["RING"] + layer * k * 3 * kp
      entries = []
      for j in range(k - 1):  # new entry j = window entry j + 1
        pos = window_slot(slot, j + 1, k)
        entries.append(jnp.concatenate(
            [acts[:b, base + (3 * pos + s) * kp:base + (3 * pos + s) * kp + d]
             for s in range(3)], -1))
      states.append(jnp.stack(entries, 1) if entries else conv_state[layer])
    return x_out, u, jnp.stack(states)
  return run


def make_chain(g: Geometry, programs: int, ring: int = 6, tokens: int = 1,
               conv_epilogue: bool = False, interpret: bool = False, rows: int = NB,
               prefetch: bool = False, trace: bool = False, hoist: bool = False):
  """jit(items, table, prm, acts0) -> acts after `tokens` kernels back to back on one buffer
  (positions 0, 1, ...: counter parity and ring slot advance), the kernels alone, for timing:
  the engine's per-token glue (the embedding into X0, acc into ACC, the unembedding) is not
  in it. rows, prefetch, hoist: token_kernel's. trace: returns (acts, stamps), stamps (tokens,
  items, 8) int32 SM cycle counts at each item's mc.TRACE_POINTS (summarise_trace)."""
  kernel = token_kernel(g, programs, ring, interpret, conv_epilogue, rows, prefetch, hoist)
  n_items = g.layers * g.per_layer

  @jax.jit
  def run(items, table, prm, acts0):
    gmem = functools.partial(jax.new_ref, memory_space=plgpu.GMEM)
    refs = gmem(items), gmem(table), gmem(prm), gmem(acts0)
    counters = gmem(jnp.zeros((2,), jnp.int32))
    stamps = gmem(jnp.zeros((tokens, n_items, 8), jnp.int32)) if trace else None
    for t in range(tokens):  # unrolled: JAX 0.11.2's fori_loop loses the refs' memory space
      kernel(*refs, counters, token_where(t % 2, t % g.k, t), stamps)
    return (refs[3][...], stamps[...]) if trace else refs[3][...]
  return run


def make_model_chain(g: Geometry, params, cfg, programs: int, ring: int = 6, tokens: int = 1,
                     conv_epilogue: bool = False, interpret: bool = False, rows: int = NB,
                     prefetch: bool = False, hoist: bool = False, feed: bool = False):
  """The no-mixer model's whole token loop around the kernel (#4's measure): jit(items, table,
  prm, acc, tok) -> (tokens (T, B), logits (T, B, V)): each step embeds the token into X0
  (the buffer stays a GMEM ref across steps: the ring carries the short convolution's state),
  runs the kernel, and takes the final norm and the unembedding of the last layer's output;
  the next token is that step's argmax, or with feed, tok[t + 1] (tok (T, B): teacher forcing,
  for checks). acc (M, B, D) is the long convolutions' constant contribution."""
  kernel = token_kernel(g, programs, ring, interpret, conv_epilogue, rows, prefetch, hoist)
  r, kp, d = g.regions(), g.kp, g.d
  from flash_lcsm_jax.models import hyena  # pylint: disable=g-import-not-at-top

  @jax.jit
  def run(items, table, prm, acc, tok):
    b = tok.shape[-1]
    acts = jnp.zeros((NB, r["COLS"]), jnp.float32)
    for layer in range(g.layers):
      acts = acts.at[:b, r["ACC"] + layer * kp:r["ACC"] + layer * kp + d].set(acc[layer])
    gmem = functools.partial(jax.new_ref, memory_space=plgpu.GMEM)
    refs = gmem(items), gmem(table), gmem(prm)
    acts_ref, counters = gmem(acts), gmem(jnp.zeros((2,), jnp.int32))
    current = tok[0] if feed else tok
    out_tokens, out_logits = [], []
    for t in range(tokens):  # unrolled: JAX 0.11.2's fori_loop loses the refs' memory space
      acts_ref[:b, r["X0"]:r["X0"] + d] = hyena.embed(params, current)
      kernel(*refs, acts_ref, counters, token_where(t % 2, t % g.k))
      x = final_x(acts_ref, g, b)
      logits = hyena.logits_from_hidden(params, cfg, x)
      nxt = jnp.argmax(logits, axis=-1).astype(jnp.int32)
      out_tokens.append(nxt)
      out_logits.append(logits)
      current = tok[min(t + 1, tokens - 1)] if feed else nxt
    return jnp.stack(out_tokens), jnp.stack(out_logits)
  return run


def reference_model_chain(params, cfg, acc, red, tok):
  """hyena.token_step over tok (T, B), teacher-forced, conv state from zeros: (T, B, V)
  float32 logits at HIGHEST (make_model_chain's check with feed)."""
  from flash_lcsm_jax.models import hyena  # pylint: disable=g-import-not-at-top
  M, K, D = cfg.n_layers, cfg.short_filter_order, cfg.d_model
  conv = jnp.zeros((M, tok.shape[1], K - 1, 3 * D), jnp.float32)
  consts = hyena.StepConsts(red)
  out = []
  with jax.default_matmul_precision("highest"):
    for t in range(tok.shape[0]):
      logits, _, conv = hyena.token_step(params, cfg, consts, tok[t], acc, conv)
      out.append(logits)
  return jnp.stack(out)


def summarise_trace(stamps: np.ndarray, table: np.ndarray, programs: int) -> dict:
  """Where a phase's time goes, from make_chain's stamps (tokens after the first; each SM's
  own clock, so only differences within an SM mean anything): per kind the median cycles of
  each step between trace points (waited -> staged: the input loads and staging; -> product;
  -> stored: the epilogue; -> signalled: the release), per phase the slowest item's busy
  cycles (waited -> signalled), and each program's span over a token (its first start to its
  last signal), which against the token's wall time gives the clock. A phase's wall time
  beyond its slowest busy item is the hand-over: the signal reaching the counter and the next
  phase's poll seeing it."""
  s = stamps[1:].astype(np.int64)
  at = lambda name: s[..., mc.TRACE_POINTS.index(name)]
  d = lambda a, b: (at(b) - at(a)) % (1 << 32)
  steps = {"wait": ("start", "waited"), "inputs": ("waited", "staged"),
           "product": ("staged", "product"), "epilogue": ("product", "stored"),
           "signal": ("stored", "signalled"), "busy": ("waited", "signalled")}
  cycles = {k: d(a, b) for k, (a, b) in steps.items()}
  kinds = table[:, C_KIND]
  out = {"per_kind_median_cycles": {
      ("mix", "out", "up", "down")[k]: {n: float(np.median(v[:, kinds == k]))
                                        for n, v in cycles.items()} for k in range(4)}}
  phases = np.unique(table[:, C_WAIT])
  slowest = np.array([[cycles["busy"][t, table[:, C_WAIT] == w].max() for w in phases]
                      for t in range(s.shape[0])])
  out["phase_slowest_busy_cycles_median"] = float(np.median(slowest))
  owner = np.arange(table.shape[0]) % programs
  spans = [(at("signalled")[t, owner == q].max() - at("start")[t, owner == q].min()) % (1 << 32)
           for t in range(s.shape[0]) for q in range(programs)]
  out["program_span_cycles_median"] = float(np.median(spans))
  return out
