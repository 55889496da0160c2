"""How tangents travel with values (forward-mode AD): the part ``Function.apply`` calls.

A tensor carries its tangents in ``tensor._fw``, a dict ``{dual level: tangent tensor}``. After an op
has computed its outputs, ``propagate`` asks the op's ``jvp`` for the tangent of each output, once per
open dual level at which some input has a tangent. ``jvp`` is written with Tensor ops, like
``backward``, so a tangent is itself a tensor in the graph: it can be differentiated in reverse mode,
or carry the tangent of another (outer) level.

While the rule of level L runs, level L is switched off: the ops inside the rule carry the tangents
of every other level but not L's own (else the tangent would pick up a tangent of itself, the
"perturbation confusion" of nested forward mode). The public API is ``autograd.forward_ad``.
"""
from __future__ import annotations

from contextvars import ContextVar

# the dual levels open now, oldest first, and those whose tangents ops carry right now (the open ones,
# less the level whose rule is running)
open_levels: ContextVar[tuple] = ContextVar("tinytensor_dual_levels", default=())
propagating: ContextVar[tuple] = ContextVar("tinytensor_dual_propagating", default=())


def propagate(fn, args: tuple, results) -> None:
    """Give each floating-point output of the op ``fn`` (called on ``args``) its tangents."""
    levels = propagating.get()
    outs = results if type(results) is tuple else (results,)
    for level in levels:
        tangents, found = [], fn.creates_tangent
        for a in args:
            fw = getattr(a, "_fw", None)
            t = fw.get(level) if fw else None
            tangents.append(t)
            found = found or t is not None
        if not found:
            continue  # no input has a tangent at this level
        # the rule runs with its own level off; with one level open (the common case) none is left
        token = propagating.set(() if len(levels) == 1 else tuple(lv for lv in levels if lv != level))
        fn.primals, fn.result, fn.level = args, results, level
        try:
            out = fn.jvp(*tangents)
        finally:
            propagating.reset(token)
            del fn.primals, fn.result, fn.level
        out = out if type(out) is tuple else (out,)
        if len(out) != len(outs):
            raise RuntimeError(f"{fn.name()}.jvp returned {len(out)} tangents for {len(outs)} outputs")
        for r, t in zip(outs, out):
            if t is None:
                continue
            dtype = r.dtype
            if not dtype.is_floating_point:
                continue
            if t.shape != r.shape:
                raise RuntimeError(f"{fn.name()}.jvp returned a tangent of shape {tuple(t.shape)} for an "
                                   f"output of shape {tuple(r.shape)}")
            if t.dtype is not dtype:
                t = t.to(dtype=dtype)
            r._fw = {**r._fw, level: t} if r._fw else {level: t}
    # (``_saved`` is set only on a recorded node: the needs_input_grad test skips a failing getattr)
    if True in fn.needs_input_grad and getattr(fn, "_saved", None) and any(r._fw for r in outs):
        # backward rebuilds the outputs it saved: with their tangents (for forward-over-reverse)
        fn._out_fw = [r._fw for r in outs]


def add(*terms):
    """The sum of the tangent terms that are not None (None: no tangent, a zero); None if all are."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total
