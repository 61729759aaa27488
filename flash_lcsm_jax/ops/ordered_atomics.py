"""An integer atomic add with a chosen memory order, for Pallas' Triton kernels.

Pallas' own `atomic_add` is always acquire-release at GPU scope. On an H100 that is, per
atomic, `MEMBAR.ALL.GPU` (the release half: wait until every memory access the thread has in
flight is performed, loads included), the atomic, then `CCTL.IVALL` (the acquire half:
invalidate L1). A grid barrier needs only half of each: the arrival must release (its stores
before it), the polls must acquire (later loads after them). Acquire-release polls cost more
than an atomic: a program that issues loads which do not depend on the barrier (the next
phase's weight tile) before its first poll waits for all of them to arrive before that poll
can even go out, so the poll's round trip follows the loads' instead of overlapping them
(ptxas for sm_90a; experiments/NOTES.md, session 31).

`atomic_add(ref, idx, value, order)` with order "release" lowers to `red.release.gpu` (a
fire-and-forget reduction behind the fence), "acquire" to `atom.acquire.gpu` (no fence; Triton
makes an acquiring add of 0 an `ld.acquire.gpu`), and "acq_rel" is Pallas' own. Interpret mode runs it as Pallas' atomic add. Built on Pallas'
private Triton lowering helpers (jax._src); where a jax lacks them, `available()` is False and
asking for "release" / "acquire" raises.
"""

from __future__ import annotations

from flash_lcsm_jax.ops.pallas_inplace import _triton_memory_op

ORDERS = ("acq_rel", "release", "acquire")

try:  # jax's private Pallas Triton pieces (present in 0.10.2 and 0.11.x)
  from jax._src import core as _core
  from jax._src import tree_util as _tree_util
  from jax._src.lib.triton import dialect as _tt
  from jax._src.pallas.triton import lowering as _lowering
  from jax._src.pallas.triton import primitives as _triton_primitives
  from jax._src.state import discharge as _discharge
  from jax._src.state import indexing as _indexing
  from jax._src.state import primitives as _state_primitives
  _ADD = _triton_primitives.AtomicOpType.ADD
  _MISSING = None
except (ImportError, AttributeError) as e:  # pragma: no cover - depends on the jax version
  _MISSING = e


def available() -> bool:
  """Whether this jax has the private pieces the "release" / "acquire" orders are built on."""
  return _MISSING is None


if _MISSING is None:
  _SEMANTICS = {"release": _tt.MemSemantic.RELEASE, "acquire": _tt.MemSemantic.ACQUIRE}
  ordered_add_p = _core.Primitive("ordered_atomic_add")

  @ordered_add_p.def_effectful_abstract_eval
  def _abstract_eval(*avals_flat, args_tree, order):
    del order  # the value and effects are those of Pallas' atomic add
    return _triton_primitives._atomic_abstract_eval(  # pylint: disable=protected-access
        *avals_flat, args_tree=args_tree, atomic_type=_ADD)

  @_discharge.register_discharge_rule(ordered_add_p)
  def _discharge_rule(*args, args_tree, order):
    # One program at a time: every order is the plain read-modify-write. The leading arguments
    # (in_avals, out_avals in jax 0.10; a context in later versions) pass through unchanged.
    del order
    return _triton_primitives._atomic_rmw_discharge_rule(  # pylint: disable=protected-access
        *args, args_tree=args_tree, atomic_type=_ADD)

  @_lowering.register_lowering(ordered_add_p)
  def _lowering_rule(ctx, *args_flat, args_tree, order):
    block_info, *_ = ctx.block_infos
    ptr, transforms, value, mask = args_tree.unflatten(args_flat)
    *_, value_aval, _ = args_tree.unflatten(ctx.avals_in)
    if mask is not None or len(transforms) != 1 or not isinstance(transforms[0],
                                                                  _indexing.NDIndexer):
      raise NotImplementedError("ordered atomic_add: a whole ref indexed once, no mask")
    ptr = _lowering._compute_pointers_from_indices(  # pylint: disable=protected-access
        ptr, block_info, transforms[0])
    value = _lowering._ensure_ir_value(value, value_aval)  # pylint: disable=protected-access
    return _lowering._atomic_rmw(  # pylint: disable=protected-access
        _tt.RMWOp.ADD, ptr, value, semantic=_SEMANTICS[order])


def atomic_add(ref, idx: tuple, value, order: str = "acq_rel"):
  """ref[idx] += value (an int32 scalar) as one GPU-scope atomic with memory order `order`
  (ORDERS); returns the value before the add."""
  if order not in ORDERS:
    raise ValueError(f"atomic order must be one of {ORDERS}, got {order!r}")
  if order == "acq_rel":
    return _triton_memory_op("atomic_add")(ref, idx, value)
  if _MISSING is not None:
    raise NotImplementedError(
        f"atomic order {order!r} needs jax's private Pallas Triton lowering helpers, which this "
        f"jax lacks ({_MISSING}); use 'acq_rel'")
  ref, transforms = _state_primitives.get_ref_and_transforms(ref, idx, "atomic_rmw")
  args_flat, args_tree = _tree_util.tree_flatten((ref, transforms, value, None))
  return ordered_add_p.bind(*args_flat, args_tree=args_tree, order=order)
