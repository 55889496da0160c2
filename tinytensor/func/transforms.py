"""Function transforms on top of the engine: grad, vjp (reverse mode), jvp (forward mode), and the
Jacobians and Hessians built from them. They compose: each one's inputs can be another's.

Reverse mode marks each input with an ``Identity`` node (recorded when the input already
belongs to an outer graph) and asks ``autograd.grad`` for the gradient there, with ``create_graph``
whenever an outer transform may differentiate the result again. Inside vmap, every input is first
expanded to the whole batch, so the gradient is taken per sample.
"""
from __future__ import annotations

import functools
import math
from contextvars import ContextVar

from .. import creation, ops
from ..autograd import dual, forward_ad
from ..autograd.function import Identity
from ..autograd.functional import grad as autograd_grad
from ..autograd.grad_mode import enable_grad
from ..autograd.tensor_core import TensorCore
from . import _pytree, batching
from .batched import BatchedTensor, active, align
from .vmap import vmap

_depth: ContextVar[int] = ContextVar("tinytensor_func_depth", default=0)


batching.RULES[Identity] = batching.elementwise  # the identity: any shape


class _nested:
    """The block of one transform: transforms started inside it know they are nested."""

    def __enter__(self):
        self.token = _depth.set(_depth.get() + 1)

    def __exit__(self, *exc):
        _depth.reset(self.token)


def _levels() -> tuple:
    return tuple(lv.id for lv in reversed(active.get()))  # newest first, as batched tensors hold them


def _track(x, levels: tuple, who: str, what: str):
    """(entry, what the function sees): x as a fresh input whose gradient this transform takes."""
    if not isinstance(x, TensorCore):
        raise TypeError(f"{who}: {what} must be a Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{who}: {what} is {x.dtype.name} (shape {tuple(x.shape)}); only floating-point "
                        f"tensors have gradients, convert it with .float() or leave it out of argnums")
    value = align(x, levels, expand=True) if levels else x
    entry = Identity.apply(value)
    if not entry.requires_grad:
        entry._requires_grad = True  # a new leaf (the tangents it may carry stay on it)
    return entry, (BatchedTensor(entry, levels) if levels else entry)


def _lower(t, levels: tuple):
    """``t`` with the batch dims of ``levels`` (vmaps running when the graph was recorded) turned into
    leading ordinary dims, expanded: a gradient for that graph; newer levels stay batched."""
    if not levels:
        return t
    newer = tuple(lv for lv in (t.levels if type(t) is BatchedTensor else ()) if lv not in levels)
    value = align(t, newer + levels, expand=True)
    return BatchedTensor(value, newer) if newer else value


def _raise(t, levels: tuple):
    """The inverse of _lower: leading dims of a gradient as the batch dims of ``levels``."""
    if not levels or t is None:
        return t
    if type(t) is BatchedTensor:
        return BatchedTensor(t.value, t.levels + levels)
    return BatchedTensor(t, levels)


def _argnums(argnums, n: int, who: str) -> tuple:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(i, int) for i in nums):
        raise TypeError(f"{who}: argnums must be an int or a tuple of ints, got {argnums!r}")
    for i in nums:
        if not -n <= i < n:
            raise ValueError(f"{who}: argnums={argnums!r} asks for argument {i}, but the function was given "
                             f"{n} positional argument{'s' * (n != 1)}")
    return tuple(i % n for i in nums)


def _create_graph(entries, grads) -> bool:
    """Keep the backward pass differentiable when something outside may differentiate it again (an
    outer transform, a dual level, an input already in a graph), or when its gradients are batched
    by a newer vmap than the graph (their sums must go through the ops' batching rules)."""
    return bool(_depth.get() > 1 or dual.open_levels.get() or any(e.grad_fn is not None for e in entries)
                or any(type(g) is BatchedTensor for g in grads))


def _finish(tree, inputs):
    """Results of an outermost transform, cut from the graph recorded for them, unless something
    outside may still differentiate them (an enclosing transform, or inputs that require grad)."""
    if not _outermost(_pytree.flatten(inputs)[0]):
        return tree
    leaves, spec = _pytree.flatten(tree)
    return _pytree.unflatten(_cut(leaves), spec)


def _outermost(input_leaves) -> bool:
    """Whether nothing outside may differentiate the results: no enclosing transform, dual level or
    vmap, and no input that requires grad."""
    if _depth.get() or dual.open_levels.get() or active.get():
        return False
    return not any(isinstance(x, TensorCore) and x.requires_grad for x in input_leaves)


def _cut(leaves: list) -> list:
    """The leaves cut from the graph recorded for them (detached)."""
    return [t.detach() if isinstance(t, TensorCore) and t.grad_fn is not None else t for t in leaves]


def _zeros(t):
    return creation.zeros_like(t)


def _vjp_core(func, args, kwargs, argnums, has_aux, who):
    """Run func with the args in argnums tracked: (output, aux, the entries and tree structure of each
    tracked arg, the argnums, the vmap levels running now)."""
    levels = _levels()
    nums = _argnums(argnums, len(args), who)
    args = list(args)
    entries, specs = [], []
    for i in nums:
        leaves, spec = _pytree.flatten(args[i])
        pairs = [_track(x, levels, who, f"argument {i}") for x in leaves]
        entries.append([e for e, _ in pairs])
        specs.append(spec)
        args[i] = _pytree.unflatten([seen for _, seen in pairs], spec)
    with enable_grad():
        out = func(*args, **kwargs)
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"{who}: with has_aux=True the function must return a pair (output, aux), got "
                            f"{type(out).__name__}")
        out, aux = out
    return out, aux, entries, specs, nums, levels


def _backward(outs, cotangents, entries, levels, retain: bool = False):
    """Σ cotangent · ∂out/∂entry for every entry (zeros where unused), as the caller sees them."""
    roots, grads = [], []
    for o, c in zip(outs, cotangents):
        o = _lower(o, levels)
        if o.requires_grad:
            roots.append(o)
            grads.append(_lower(c, levels))
    flat = [e for group in entries for e in group]
    if roots:
        create = _create_graph(flat, grads)
        found = autograd_grad(roots, flat, grads, retain_graph=retain or create, create_graph=create,
                              allow_unused=True)
    else:
        found = [None] * len(flat)
    result, k = [], 0
    for group in entries:
        gs = []
        for e in group:
            g = found[k]
            k += 1
            g = _zeros(e) if g is None else g
            gs.append(_raise(g, levels))
        result.append(gs)
    return result


def vjp(func, *primals, has_aux: bool = False):
    """(func(*primals), vjp_fn[, aux]): vjp_fn(v) = vᵀ J, the cotangent pulled back to every primal."""
    with _nested():
        out, aux, entries, specs, _, levels = _vjp_core(func, primals, {}, tuple(range(len(primals))),
                                                        has_aux, "vjp")
    out_leaves, out_spec = _pytree.flatten(out)
    for k, o in enumerate(out_leaves):
        if not isinstance(o, TensorCore):
            raise TypeError(f"vjp: the function returned a {type(o).__name__} (output {k}); it must return "
                            f"tensors")

    def vjp_fn(cotangents):
        """vᵀ J for cotangents v of the output's structure: one tuple entry per primal."""
        leaves, spec = _pytree.flatten(cotangents)
        if len(leaves) != len(out_leaves):
            raise ValueError(f"vjp_fn: expected {len(out_leaves)} cotangent(s), one per output, got "
                             f"{len(leaves)}")
        for k, (c, o) in enumerate(zip(leaves, out_leaves)):
            if not isinstance(c, TensorCore):
                raise TypeError(f"vjp_fn: cotangent {k} must be a Tensor, got {type(c).__name__}")
            if tuple(c.shape) != tuple(o.shape):
                raise ValueError(f"vjp_fn: cotangent {k} has shape {tuple(c.shape)}, but output {k} has "
                                 f"shape {tuple(o.shape)}; they must match")
            if c.dtype is not o.dtype:
                raise TypeError(f"vjp_fn: cotangent {k} is {c.dtype.name}, but output {k} is {o.dtype.name}")
            if c.device != o.device:
                raise RuntimeError(f"vjp_fn: cotangent {k} is on {c.device}, but output {k} is on {o.device}")
        with _nested():
            grads = _backward(out_leaves, leaves, entries, levels, retain=True)  # vjp_fn: callable again
        return _finish(tuple(_pytree.unflatten(g, s) for g, s in zip(grads, specs)), (primals, cotangents))

    out, aux = _finish((out, aux), primals)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """A function returning (∂func/∂args[argnums], func(*args)); func must return a one-element tensor."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _nested():
            out, aux, entries, specs, nums, levels = _vjp_core(func, args, kwargs, argnums, has_aux, "grad")
            if not isinstance(out, TensorCore):
                raise TypeError(f"grad: the function must return a Tensor, got {type(out).__name__}")
            if math.prod(out.shape) != 1:
                raise RuntimeError(f"grad: the function must return a tensor with one element (a loss), got "
                                   f"shape {tuple(out.shape)}; use func.vjp or func.jacrev for other outputs")
            ones = creation.ones_like(out)
            grads = _backward([out], [ones], entries, levels)
        g = tuple(_pytree.unflatten(gs, s) for gs, s in zip(grads, specs))
        g = g[0] if isinstance(argnums, int) else g
        return _finish((g, (out, aux)) if has_aux else (g, out), args)

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """∂func/∂args[argnums] as a function (func returns a one-element tensor); grad(grad(f)) nests."""
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def jvp(func, primals, tangents, *, has_aux: bool = False):
    """(func(*primals), J·tangents) in one forward pass: every op carries its tangent (forward mode)."""
    for name, v in (("primals", primals), ("tangents", tangents)):
        if not isinstance(v, (tuple, list)):
            raise TypeError(f"jvp: {name} must be a tuple (one entry per argument of the function), got "
                            f"{type(v).__name__}")
    p_leaves, p_spec = _pytree.flatten(tuple(primals))
    t_leaves, t_spec = _pytree.flatten(tuple(tangents))
    if len(p_leaves) != len(t_leaves) or p_spec != t_spec:
        raise ValueError(f"jvp: tangents must have the structure of primals ({len(p_leaves)} tensors), got "
                         f"{len(t_leaves)}")
    for k, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        if not isinstance(p, TensorCore) or not isinstance(t, TensorCore):
            raise TypeError(f"jvp: primal and tangent {k} must be Tensors, got {type(p).__name__} and "
                            f"{type(t).__name__}")
        forward_ad.check_tangent("jvp", p, t, f"primal {k}", f"tangent {k}")
        if not p.dtype.is_floating_point:
            raise TypeError(f"jvp: primal {k} is {p.dtype.name}; only floating-point tensors have tangents")
    with _nested(), forward_ad.dual_level() as level:
        # checked above, and the level is new: make_dual's and unpack_dual's checks would only repeat
        duals = [forward_ad.MakeDual.apply(p, t, level) for p, t in zip(p_leaves, t_leaves)]
        out = func(*_pytree.unflatten(duals, p_spec))
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("jvp: with has_aux=True the function must return a pair (output, aux)")
            out, aux = out
        o_leaves, o_spec = _pytree.flatten(out)
        values, jvps = [], []
        for k, o in enumerate(o_leaves):
            if not isinstance(o, TensorCore):
                raise TypeError(f"jvp: the function returned a {type(o).__name__} (output {k}); it must "
                                f"return tensors")
            tangent = forward_ad.tangent_of(o, level)
            if tangent is None:
                values.append(o)
                jvps.append(_zeros(o))
            else:
                values.append(forward_ad.DropTangent.apply(o, level))
                jvps.append(tangent)
    if _outermost(p_leaves + t_leaves):
        values, jvps = _cut(values), _cut(jvps)
    result = (_pytree.unflatten(values, o_spec), _pytree.unflatten(jvps, o_spec))
    return result + (aux,) if has_aux else result


def linearize(func, *primals):
    """(func(*primals), jvp_fn) with jvp_fn(*tangents) = J·tangents at the primals. (Here jvp_fn runs
    func again in forward mode each call: PyTorch's traces it once.)"""
    out = func(*primals)

    def jvp_fn(*tangents):
        return jvp(func, primals, tangents)[1]

    return out, jvp_fn


def _basis(t):
    """The standard basis for t's elements: shape (n, *t.shape), row k the k-th unit tensor."""
    n = math.prod(t.shape)
    eye = ops.reshape(_eye(n, t), (n, *t.shape))
    return eye


def _eye(n, like):
    return creation.eye(n, dtype=like.dtype, device=like.device)


def jacrev(func, argnums=0, *, has_aux: bool = False, chunk_size=None):
    """The Jacobian ∂func/∂args[argnums] by reverse mode: one backward pass per output element,
    batched with vmap. Shape: output shape + input shape."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacrev")

        def f(*diff):
            full = list(args)
            for i, d in zip(nums, diff):
                full[i] = d
            return func(*full, **kwargs)

        res = vjp(f, *[args[i] for i in nums], has_aux=has_aux)
        out, vjp_fn = res[0], res[1]
        o_leaves, o_spec = _pytree.flatten(out)
        jac = []
        for k, o in enumerate(o_leaves):
            def pull(v, k=k):
                cts = [v if j == k else _zeros(oo) for j, oo in enumerate(o_leaves)]
                return vjp_fn(_pytree.unflatten(cts, o_spec))

            rows = vmap(pull, chunk_size=chunk_size)(_basis(o))  # per argnum: (n_out, *arg)
            per_arg = []
            for r in rows:
                r_leaves, r_spec = _pytree.flatten(r)
                r_leaves = [x.reshape(*o.shape, *x.shape[1:]) for x in r_leaves]  # (*out, *arg)
                per_arg.append(_pytree.unflatten(r_leaves, r_spec))
            jac.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        result = _finish(_pytree.unflatten(jac, o_spec), args)
        return (result, res[2]) if has_aux else result

    return wrapper


def jacfwd(func, argnums=0, *, has_aux: bool = False, randomness: str = "error"):
    """The Jacobian ∂func/∂args[argnums] by forward mode: one forward pass per input element, batched
    with vmap. Shape: output shape + input shape."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacfwd")
        per_arg, aux = [], None
        for i in nums:
            x = args[i]
            if not isinstance(x, TensorCore):
                raise TypeError(f"jacfwd: argument {i} must be a Tensor, got {type(x).__name__}")

            def push(t, i=i, x=x):
                def f(xi):
                    full = list(args)
                    full[i] = xi
                    return func(*full, **kwargs)

                res = jvp(f, (x,), (t,), has_aux=has_aux)
                return (res[1], res[2]) if has_aux else res[1]

            cols = vmap(push, randomness=randomness)(_basis(x))  # (n_in, *out)
            if has_aux:
                cols, aux = cols
                aux = _pytree.unflatten([a[0] for a in _pytree.flatten(aux)[0]], _pytree.flatten(aux)[1])
            c_leaves, c_spec = _pytree.flatten(cols)
            moved = []
            for c in c_leaves:
                out_nd = c.ndim - 1
                c = c.permute(*range(1, c.ndim), 0) if out_nd else c
                moved.append(c.reshape(*c.shape[:out_nd], *x.shape))
            per_arg.append(_pytree.unflatten(moved, c_spec))
        result = _finish(per_arg[0] if isinstance(argnums, int) else _transpose_args(per_arg), args)
        return (result, aux) if has_aux else result

    return wrapper


def _transpose_args(per_arg):
    """Jacobians per argnum (each an output tree) as one output tree of tuples (PyTorch's layout)."""
    leaves = [_pytree.flatten(p) for p in per_arg]
    spec = leaves[0][1]
    return _pytree.unflatten([tuple(ls[0][k] for ls in leaves) for k in range(len(leaves[0][0]))], spec)


def hessian(func, argnums=0):
    """The Hessian of a scalar func: jacfwd(jacrev(func)), forward mode over reverse mode."""
    return jacfwd(jacrev(func, argnums), argnums)
