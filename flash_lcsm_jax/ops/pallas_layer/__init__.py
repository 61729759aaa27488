"""The per-token dense path of a Hyena layer as four fused Pallas kernels (exact, float32 math).

`hyena._token_layer` (one layer at one position, B = 1..16 rows) runs as ~18 XLA kernels per
layer on a GPU (measured: 333 launches per token for 18 layers, 0.70 ms/token at B = 1 on an
H200 against a 0.18 ms weight-bandwidth floor): it is launch-bound. Here a layer is FOUR launches,
each a matrix-vector product that streams one weight matrix with a prologue and an epilogue:

  K1 "mix"   layer_norm1(x) (every program recomputes the row mean / variance of x: D floats) ->
             the in_proj product restricted to the program's channel block [j0, j0 + bc) for all
             three of x0 / x1 / v (columns j, D + j, 2D + j of in_proj, channel-aligned, which is
             what makes this one kernel) -> short causal conv with the conv state of those
             channels -> u = x1 * v -> z = acc + red * u -> y = x0 * z.
             Writes y (B, D), u into the (M, B, D) u buffer at layer m, and the new conv window
             into the (M, B, K-1, 3D) conv state at layer m (both in place: aliased in -> out).
  K2 "out"   x1 = x + y @ out_proj + bias.
  K3 "up"    h = gelu_tanh(layer_norm2(x1) @ fc1 + bias)   (layer norm recomputed per program).
  K4 "down"  x2 = x1 + h @ fc2 + bias.

Launch layout. Every kernel's grid is (output-row blocks, batch blocks). A program owns `rows`
output features (K1: `rows` channels = 3 * rows weight rows) and the full reduction over K: there
is no split-K, so the nonlinear epilogues (gelu, gating, the residual add) run in the same
program, and nothing is left to sum afterwards. Paper shape (D = 864, I = 1728): 4 rows (216
programs) for mix / out / down, 8 rows (216 programs) for up: >= 1.5 programs per SM on a 132-SM
GPU, each streaming 14-41 KB of float32 weights; one batch block up to B = 8.

The weights are prepared ONCE per model (`prepare_layer_weights`): transposed to (N, K) so a
program streams `rows` contiguous rows; in_proj^T regrouped so a K1 program's x0 / x1 / v rows
are one contiguous (3, bc, K) block; K padded with zeros to a multiple of 16 (D = 864 and
I = 1728 need none; it keeps rows 64-byte aligned); output rows padded to the row block; biases,
norms and conv taps padded and laid out channel-major. Nothing is padded per call: the
activations (x, y, h) stay exact (B, D) / (B, I) arrays, loads and stores that cross their end
are masked (none at the paper shape except the last weight chunk, see below).

Inside a program. The reduction over K runs as a static loop over equal power-of-two column
chunks (`chunk`, default one warp-wide vector load per row: 128 float32 / 256 bfloat16 columns;
the last chunk is a masked load when K is not a multiple, e.g. 864 = 6 x 128 + 96), so every
block has the power-of-two shape Triton needs. Per batch row b, the (rows, chunk) weight tile
times the activation chunk is accumulated ELEMENTWISE over the chunks and reduced over the
columns once at the end (one in-warp shuffle reduction per row and group, not one per chunk). The
activation chunk is loaded as a (rows, chunk) tile whose every row reads the same memory (a
gather with integer index vectors): it arrives in the weight tile's register layout, where a
(1, chunk) load broadcast to (rows, chunk) would cost a shared-memory layout conversion and two
barriers per chunk. The layer-norm statistics (two passes, as hyena.layer_norm) are computed the
same way and reduced within a warp. Batch rows are processed one after the other, each with its
epilogue and stores right after its sums (`order="batch"`; `order="chunk"` is the alternative),
which keeps the register count below 200 at B = 8 without spills (checked by compiling the
Triton IR for sm_90a with ptxas). `order="tile"` (for batches; the persistent loop's default
at B = 4 and 8 in float32, TILE_BATCHES) loads all batch rows of a program as (rows_b, 1, chunk)
tiles, once, and the weights as (1, rows, chunk) tiles, and forms the products as
(rows_b, rows, chunk) broadcasts: the activation bytes read per program no longer scale with the
weight rows. Both are loaded in those shapes by integer-vector indices (broadcasting 2-D tiles
costs shared-memory layout conversions: 0.72 ms/token at B = 8 on an H200 that way, 0.51 with
the 3-D loads and no prefetch, XLA 0.62). Float32
accumulation throughout; bfloat16 weights are upcast in registers, and the activation is rounded
to the weight dtype first, exactly as `hyena.dense` does (x.astype(w.dtype)).

Every kernel takes the whole stacked (M, ...) weights / state and the layer index m as a (1,)
int32 operand (the Triton backend has no scalar prefetch), so neither the unrolled layer loop nor
`lax.fori_loop` over layers ever slices (copies) per-layer weights, acc or conv state; u and the
conv state are written in place. `token_step_fused` runs embed (XLA gather), the 4 kernels per
layer, and the final norm + unembedding in XLA (one product already near bandwidth). The layer
loop is unrolled by default (`layer_loop="unroll"`: 4 launches per layer and no while loop whose
per-iteration condition / counter kernels and host round trip would add to a ~15 us layer);
`layer_loop="scan"` (a fori_loop over layers) compiles the layer once, and both share one
jitted per-layer function, so the unrolled loop also lowers (and Triton-compiles) each kernel
once. Per token: 4 M + ~5 launches (embed, u buffer init, conv-state copy when not donated, final
norm, unembedding) = ~77 at M = 18 vs 333 today.

One launch per token (`layer_loop="persistent"`, weights prepared with `persistent_config`): the
same four bodies for every layer inside ONE pallas_call whose programs each own one block per
phase (108 programs at the paper shape: 8 / 8 / 16 / 8 rows), with a grid-wide barrier between
phases (`_grid_barrier`: an atomic arrival counter, acquire-release at GPU scope, or
releasing arrivals and acquiring polls with `LayerConfig.barrier_order`) and each
program's weight tile for the next phase loaded before it waits (the weights do not depend on the
activations). Needs every program resident at once (grid <= SMs, checked; nothing else on the
GPU). In interpret mode the grid is one program that walks every block (programs run one after
another there). H100, B = 1: 0.40 / 0.35 ms per token in float32 / bfloat16 against 0.49 / 0.39
for four launches per layer; what is left is each phase's chain of dependent memory round trips
(experiments/NOTES.md, session 6). `LayerConfig.sync="data"` drops the barriers: every phase
writes a buffer of its own, filled with PENDING (a NaN payload arithmetic never produces)
beforehand, and a program polls the values it reads with volatile loads, so the data is its own
readiness flag (no fence, arrival or separate poll per phase); "data_l1" polls one compact tile,
then reads the rows through L1. On an H100 (session 12) "data" is 1.5-3x slower (its volatile
reads of replicated tiles), "data_l1" wins at B = 2 (DATA_SYNC_BATCHES, the engine's default
there) and is within a few percent of the barrier elsewhere.

Expected floor. Weights per token at the paper shape: 4 D^2 + 2 D I = 5.97 M per layer x 18 =
107.5 M (430 MB float32, 215 MB bfloat16) + the 43.4 M tied unembedding (174 / 87 MB):
604 MB -> 0.18 ms at 3.4 TB/s (0.09 ms bfloat16). Per layer 23.9 MB -> 7.0 us of streaming
(in_proj 2.6, out 0.9, fc1 1.8, fc2 1.8 us) against ~4 x 2 us of launch latency, so ~0.3 ms /
token (~1.7x the floor) is the expectation for float32 at B = 1; B = 8 adds work per program
(8 rows through each weight tile, re-read from L1), not HBM bytes.

Three implementations, as every kernel of the package (version helpers from pallas_direct):
  "pallas"    the compiled Triton kernels (GPU only);
  "interpret" the same kernel bodies run as XLA ops (any backend; tests);
  "xla"       `hyena.token_step` (the reference and the fallback).
`token_step_fused(..., implementation=None)` picks pallas on GPU after a one-time compile probe
of the four kernels (xla if Triton rejects them, or for B > MAX_BATCH), interpret on CPU; it logs
its choice once and records it in pallas_direct.CHOSEN / REASONS under "layer D=.. I=.. B=..".

Triton-backend notes (jax 0.10.2 / 0.11): no scalar prefetch (m is a (1,) array read in the
kernel); masked accesses are pallas.triton.load / store on `ref.at[...]` (pallas_inplace's
helpers), whose interpret-mode discharge takes either slices with scalar indices or integer
index arrays alone (hence the gathers above use index arrays for every axis) and rejects plain
Python-int indices (`_at` makes them int32 scalars); a static slice that crosses the array's end
is rejected even under a mask (`_traced` makes its start a traced value); every load is a
ref-level index (Triton cannot lower lax.slice of loaded values); all operands are whole-array
BlockSpecs indexed by program id (BlockSpec memory spaces are ignored by Triton); the backend is
named through pallas_direct.triton_compiler_params (the default GPU lowering is Mosaic GPU).

Shape letters: M layers, B batch, D model width, I MLP width, K short-conv taps; bc channels per
mix program; Dk / Ik = D / I padded to 16 (the reduction axis), Dm / Do / Iu / Dd = D / D / I / D
padded to the row block of mix / out / up / down.
"""

# Modules, each importing only those before it: config (block shapes, measured defaults) ->
# weights (prepared once per model) -> pieces (loads, stores, products) -> layer (the four
# kernels) -> persistent (every layer in one launch) -> step (one token, dispatch, reference).
from flash_lcsm_jax.ops.pallas_layer.config import (
    BARRIER_ORDERS, BATCH_CHUNKS, DATA_SYNC_BATCHES, GPU_BACKENDS, IMPLEMENTATIONS, K_ALIGN,
    LAYER_LOOPS, MAX_BATCH, MAX_PERSISTENT_ROWS, ORDERS, PAIRED_BATCHES, PENDING_BITS, SYNCS,
    TARGET_PROGRAMS, TILE_BATCHES, KernelBlocks, LayerConfig, LayerSpec, batch_block,
    default_config, device_persistent_config, gpu_core_count, is_tile_batch, persistent_config,
    persistent_grid, programs_per_sm_for)
from flash_lcsm_jax.ops.pallas_layer.weights import (LayerWeights, PreparedLayers,
                                                     prepare_layer_weights)
from flash_lcsm_jax.ops.pallas_layer.pieces import pending_fill
from flash_lcsm_jax.ops.pallas_layer.layer import fused_layer, layer_index, reference_layer
from flash_lcsm_jax.ops.pallas_layer.step import (layer_avals, reference, resolve_implementation,
                                                  token_step_fused, weight_bytes_per_token)

__all__ = ["KernelBlocks", "LayerConfig", "LayerSpec", "LayerWeights", "PreparedLayers",
           "default_config", "prepare_layer_weights", "fused_layer", "token_step_fused",
           "reference", "reference_layer", "resolve_implementation", "weight_bytes_per_token",
           "layer_avals", "layer_index", "IMPLEMENTATIONS", "LAYER_LOOPS", "MAX_BATCH"]
