"""The op catalogue: one ``OpSpec`` per op, the contract every backend is checked against.

An entry names the op, gives the tinytensor callable, a NumPy reference (computed in float64 on the
same inputs), a PyTorch equivalent for the parity tests, and a sample generator that draws inputs
from the right domains (positive for log, distinct values where the op has kinks or ties, ...).

    spec.fn(*tensors, **sample.params)        # tinytensor
    spec.ref(*arrays, **sample.params)        # NumPy, float64
    spec.torch_ref(torch, *tensors, **params) # PyTorch (optional)

Float inputs of a sample are float64 arrays; the checker casts them to each dtype under test.
Integer and bool inputs (indices, masks) keep their dtype and never need gradients.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import tinytensor as tt

from .draw import Draw


@dataclass
class Sample:
    """One set of inputs: arrays (tensors-to-be) and keyword options shared by all callables."""

    inputs: tuple
    params: dict = field(default_factory=dict)
    diff: tuple | None = None  # which inputs need gradients; default: every float input

    def differentiable(self) -> tuple:
        if self.diff is not None:
            return tuple(self.diff)
        return tuple(a.dtype.kind == "f" for a in self.inputs)

    def describe(self) -> str:
        ins = ", ".join(f"{a.dtype.name}{list(a.shape)}" for a in self.inputs)
        return f"inputs=({ins}) params={self.params}"


@dataclass(frozen=True)
class OpSpec:
    """What one op must do, on every backend."""

    name: str
    fn: Callable  # (*tensors, **params) -> Tensor | tuple of Tensors
    ref: Callable  # (*numpy arrays, **params) -> ndarray | tuple of ndarrays
    sample: Callable[[Draw], Sample]
    torch_ref: Callable | None = None  # (torch, *torch tensors, **params)
    differentiable: bool = True  # False: forward only (argmax, one_hot)
    second_order: bool = True  # the op claims a correct double backward
    dtypes: tuple = ("float32", "float64")
    optional: bool = False  # a backend may declare it unsupported by raising NotImplementedError
    rtol: float = 1e-5  # float32 forward tolerances (float64 is always checked to ~1e-10)
    atol: float = 1e-6
    parity_rtol: float = 1e-5  # float32 tolerances against PyTorch
    parity_atol: float = 1e-6

    def __repr__(self) -> str:
        return f"OpSpec({self.name!r})"


def _same(f):
    """A torch_ref for expressions that read the same on torch tensors (operators, indexing)."""
    return lambda torch, *xs, **kw: f(*xs, **kw)


# ---- NumPy references not in NumPy ------------------------------------------------------------

def _np_erf(x):
    try:
        from scipy.special import erf
    except ImportError:
        return np.vectorize(math.erf, otypes=[np.float64])(x)
    return erf(x)


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_softmax(x, dim):
    x = np.asarray(x)
    if x.ndim == 0:
        return np.ones_like(x)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _np_logsumexp(x, axis, keepdims):
    x = np.asarray(x)
    if x.ndim == 0:
        return x.copy()
    m = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _ax(dim, ndim):
    """NumPy axis for a tinytensor/PyTorch dim: 0-d tensors accept dim 0 / -1 as 'all'."""
    return None if ndim == 0 else dim


def _tdims(dim, ndim):
    """PyTorch dim argument for reductions that need an explicit dim list."""
    if ndim == 0:
        return 0 if dim is None or isinstance(dim, int) else ()
    return tuple(range(ndim)) if dim is None else dim


# ---- sample generators ------------------------------------------------------------------------

def _unary_sample(domain="real", min_dims=0):
    def sample(d: Draw) -> Sample:
        return Sample((d.array(d.shape(min_dims), domain),))

    return sample


def _binary_sample(dom_a, dom_b, scalars):
    def sample(d: Draw) -> Sample:
        form = d.choice(("tensors", "tensors", "scalar_right", "scalar_left"))
        how = d.choice(("op", "fn"))
        s = d.choice(scalars)
        if form == "tensors":
            sa, sb = d.broadcast_shapes(2)
            return Sample((d.array(sa, dom_a), d.array(sb, dom_b)), dict(form=form, s=s, how=how))
        dom = dom_a if form == "scalar_right" else dom_b
        return Sample((d.array(d.shape(), dom),), dict(form=form, s=s, how=how))

    return sample


def _binary_operands(xs, form, s):
    if form == "tensors":
        return xs
    return (xs[0], s) if form == "scalar_right" else (s, xs[0])


def _binary(name, op, tt_fn, dom_a="real", dom_b="real", scalars=(2, 1.5, -0.75), torch_fn=None,
            method=None, **kw):
    """how="op" uses the operator (or ``a.method(b)``), how="fn" the function ``tt_fn``."""

    def fn(*xs, form, s, how):
        a, b = _binary_operands(xs, form, s)
        if how == "fn" or (method is not None and not isinstance(a, tt.Tensor)):
            return tt_fn(a, b)
        return getattr(a, method)(b) if method is not None else op(a, b)

    def ref(*xs, form, s, how):
        return op(*_binary_operands(xs, form, s))

    def torch_ref(torch, *xs, form, s, how):
        a, b = _binary_operands(xs, form, s)
        if torch_fn is None:
            return op(a, b)
        like = xs[0]
        a = a if torch.is_tensor(a) else torch.as_tensor(a, dtype=like.dtype)
        b = b if torch.is_tensor(b) else torch.as_tensor(b, dtype=like.dtype)
        return torch_fn(torch)(a, b)

    return OpSpec(name, fn, ref, _binary_sample(dom_a, dom_b, scalars), torch_ref, **kw)


def _dims_choice(d: Draw, ndim: int, allow_tuple: bool):
    """dim for a reduction: None, an int (possibly negative), or a tuple of distinct dims."""
    if ndim == 0:
        return d.choice((None, 0, -1))
    kinds = ("none", "int", "tuple") if allow_tuple else ("none", "int")
    kind = d.choice(kinds)
    if kind == "none":
        return None
    if kind == "int":
        return d.integers(-ndim, ndim - 1)
    k = d.integers(1, ndim)
    perm = d.permutation(ndim)
    return tuple(p - ndim if d.boolean() else p for p in perm[:k])


def _reduction_sample(domain="real", allow_tuple=True, keepdim_with_none=True):
    def sample(d: Draw) -> Sample:
        shape = d.shape()
        dim = _dims_choice(d, len(shape), allow_tuple)
        keepdim = d.boolean() if (dim is not None or keepdim_with_none) else False
        return Sample((d.array(shape, domain),), dict(dim=dim, keepdim=keepdim))

    return sample


def _var_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    dim = _dims_choice(d, len(shape), True)
    dims = range(len(shape)) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    n = math.prod(shape[k] for k in dims)
    correction = d.integers(0, min(2, n - 1)) if n > 1 else 0
    if n == 1:  # a single element has no spread; var of it with correction 0 is 0 (gradient 0)
        correction = 0
    return Sample((d.array(shape),), dict(dim=dim, correction=correction, keepdim=d.boolean()))


def _prime_factors(n: int) -> list:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def _reshape_sample(d: Draw) -> Sample:
    shape = d.shape()
    n = math.prod(shape)
    k = d.integers(1, 3) if n > 1 else d.integers(0, 2)
    dims = [1] * k
    for f in _prime_factors(n):
        dims[d.integers(0, k - 1)] *= f
    if k and d.boolean():
        dims[d.integers(0, k - 1)] = -1
    return Sample((d.array(shape),), dict(shape=tuple(dims)))


def _np_reshape(x, shape):
    return np.reshape(x, shape)


def _expand_target(d: Draw, shape, allow_minus_one: bool) -> tuple:
    lead = tuple(d.integers(1, 3) for _ in range(d.integers(0, 1)))
    body = []
    for s in shape:
        if s == 1 and d.boolean():
            body.append(d.integers(1, 3))
        elif allow_minus_one and d.boolean():
            body.append(-1)
        else:
            body.append(s)
    return lead + tuple(body)


def _resolve_expand(shape, sizes):
    lead = len(sizes) - len(shape)
    return tuple(shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))


def _flatten_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    if nd == 0:
        return Sample((d.array(shape),), dict(start=0, end=-1))
    s = d.integers(0, nd - 1)
    e = d.integers(s, nd - 1)
    s = s - nd if d.boolean() else s
    e = e - nd if d.boolean() else e
    return Sample((d.array(shape),), dict(start=s, end=e))


def _np_flatten(x, start, end):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start % x.ndim, end % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1 :]) if x.size else x.reshape(
        x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def _two_dims_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    nd = len(shape)
    return Sample((d.array(shape),), dict(dim0=d.integers(-nd, nd - 1), dim1=d.integers(-nd, nd - 1)))


def _permute_sample(d: Draw) -> Sample:
    shape = d.shape()
    perm = d.permutation(len(shape))
    perm = tuple(p - len(shape) if d.boolean() else p for p in perm)
    return Sample((d.array(shape),), dict(dims=perm))


def _unsqueeze_sample(d: Draw) -> Sample:
    shape = d.shape()
    return Sample((d.array(shape),), dict(dim=d.integers(-len(shape) - 1, len(shape))))


def _squeeze_sample(d: Draw) -> Sample:
    shape = tuple(1 if d.boolean() else s for s in d.shape())
    nd = len(shape)
    kind = d.choice(("none", "int", "tuple")) if nd else "none"
    if kind == "none":
        dim = None
    elif kind == "int":
        dim = d.integers(-nd, nd - 1)
    else:
        dim = tuple(d.permutation(nd)[: d.integers(1, nd)])
    return Sample((d.array(shape),), dict(dim=dim))


def _np_squeeze(x, dim):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    return np.squeeze(x, axis=tuple(a for a in dims if x.shape[a] == 1))


def _expand_sample(d: Draw) -> Sample:
    shape = d.shape()
    return Sample((d.array(shape),), dict(sizes=_expand_target(d, shape, allow_minus_one=True)))


def _broadcast_to_sample(d: Draw) -> Sample:
    shape = d.shape()
    return Sample((d.array(shape),), dict(shape=_expand_target(d, shape, allow_minus_one=False)))


# ---- indexing ----------------------------------------------------------------------------------

class Slot:
    """A placeholder in an index key for the sample's k-th index array (an int or bool tensor)."""

    def __init__(self, k: int):
        self.k = k

    def __repr__(self) -> str:
        return f"<index input {self.k}>"


def _fill(key, idx):
    return tuple(idx[it.k - 1] if isinstance(it, Slot) else it for it in key)


def _index(x, *idx, key):
    return x[_fill(key, idx)]


def _basic_key(d: Draw, shape, negative_steps: bool) -> tuple:
    items = []
    for n in shape:
        kind = d.choice(("int", "slice", "full"))
        if kind == "int":
            items.append(d.integers(-n, n - 1))
        elif kind == "full":
            items.append(slice(None))
        else:
            step = d.choice((1, 2, -1, -2) if negative_steps else (1, 2))
            start = d.choice((None, d.integers(-n, n)))
            stop = d.choice((None, d.integers(-n, n)))
            items.append(slice(start, stop, step))
    how = d.choice(("all", "truncate", "ellipsis"))
    if how == "truncate":  # trailing dims left out, maybe spelled as a trailing Ellipsis
        items = items[: d.integers(0, len(items))] + ([Ellipsis] if d.boolean() else [])
    elif how == "ellipsis":  # a run of dims (possibly none) covered by Ellipsis
        i = d.integers(0, len(items))
        items[i : d.integers(i, len(items))] = [Ellipsis]
    if d.boolean():  # None consumes no dim: anywhere
        items.insert(d.integers(0, len(items)), None)
    return tuple(items)


def _getitem_sample(negative_steps: bool):
    def sample(d: Draw) -> Sample:
        shape = d.shape(min_dims=1)
        x = d.array(shape)
        kind = d.choice(("basic", "basic", "array", "mask", "full_mask"))
        if kind == "basic":
            return Sample((x,), dict(key=_basic_key(d, shape, negative_steps)))
        if kind == "array":  # one integer array (repeats, negatives) among full slices
            k = d.integers(0, len(shape) - 1)
            idx = d.indices(d.shape(0, 2), shape[k], negative=d.boolean())
            key = (slice(None),) * k + (Slot(1),)
            if d.boolean():
                key = key + (Ellipsis,)
            return Sample((x, idx), dict(key=key))
        m = len(shape) if kind == "full_mask" else d.integers(1, len(shape))
        return Sample((x, d.mask(shape[:m])), dict(key=(Slot(1),)))

    return sample


def _getitem_arrays_sample(d: Draw) -> Sample:
    """Two integer arrays that broadcast together (NumPy's advanced indexing)."""
    shape = d.shape(min_dims=2)
    x = d.array(shape)
    sa, sb = d.broadcast_shapes(2, max_dims=2)
    i = d.indices(sa, shape[0], negative=True)
    j = d.indices(sb, shape[1])
    return Sample((x, i, j), dict(key=(Slot(1), Slot(2))))


# ---- joining, splitting, triangles, padding ---------------------------------------------------

def _cat_sample(d: Draw) -> Sample:
    base = d.shape(min_dims=1)
    nd = len(base)
    dim = d.integers(-nd, nd - 1)
    xs = []
    for _ in range(d.integers(1, 3)):
        s = list(base)
        s[dim] = d.integers(1, 3)
        xs.append(d.array(s))
    return Sample(tuple(xs), dict(dim=dim))


def _stack_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    xs = tuple(d.array(shape) for _ in range(d.integers(1, 3)))
    return Sample(xs, dict(dim=d.integers(-nd - 1, nd)))


def _split_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    nd = len(shape)
    dim = d.integers(-nd, nd - 1)
    n = shape[dim]
    if d.boolean():
        size = d.integers(1, n + 1)
    else:
        size, left = [], n
        while left:
            s = d.integers(1, left)
            size.append(s)
            left -= s
    return Sample((d.array(shape),), dict(size=size, dim=dim))


def _np_split(x, size, dim):
    n = x.shape[dim]
    sizes = [min(size, n - s) for s in range(0, n, size)] if isinstance(size, int) else size
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=dim))


def _chunk_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    nd = len(shape)
    return Sample((d.array(shape),), dict(chunks=d.integers(1, 4), dim=d.integers(-nd, nd - 1)))


def _np_chunk(x, chunks, dim):
    n = x.shape[dim]
    return _np_split(x, max(1, -(-n // chunks)), dim)


def _tri_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(min_dims=2)),), dict(diagonal=d.integers(-2, 2)))


def _pad_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    k = d.integers(1, len(shape))
    pad = tuple(d.integers(0, 2) for _ in range(2 * k))
    return Sample((d.array(shape),), dict(pad=pad, value=d.choice((0.0, 1.5))))


def _np_pad(x, pad, value):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return np.pad(x, widths, constant_values=value)


# ---- matmul, selection, nn --------------------------------------------------------------------

def _matmul_sample(d: Draw) -> Sample:
    n, k, m, b = (d.integers(1, 3) for _ in range(4))
    kind = d.choice(("mm", "bmm", "bcast", "bcast_rhs", "vv", "vm", "mv"))
    shapes = {
        "mm": ((n, k), (k, m)),
        "bmm": ((b, n, k), (b, k, m)),
        "bcast": (d.choice(((1, n, k), (2, 1, n, k))), (b, k, m)),
        "bcast_rhs": ((b, n, k), (k, m)),
        "vv": ((k,), (k,)),
        "vm": ((k,), d.choice(((k, m), (b, k, m)))),
        "mv": (d.choice(((n, k), (b, n, k))), (k,)),
    }[kind]
    return Sample(tuple(d.array(s) for s in shapes), dict(how=d.choice(("op", "fn"))))


def _where_sample(d: Draw) -> Sample:
    form = d.choice(("tensors", "tensors", "scalar_other", "scalar_input"))
    sc, sa, sb = d.broadcast_shapes(3)
    cond = d.mask(sc)
    if form == "tensors":
        return Sample((cond, d.array(sa), d.array(sb)), dict(form=form))
    return Sample((cond, d.array(sa)), dict(form=form))


def _where_args(xs, form):
    if form == "tensors":
        return xs
    cond, a = xs
    return (cond, a, -1.5) if form == "scalar_other" else (cond, 2.5, a)


def _masked_fill_sample(d: Draw) -> Sample:
    shape = d.shape()
    lead = d.integers(0, len(shape))
    mshape = tuple(1 if d.integers(0, 2) == 0 else s for s in shape[lead:])
    return Sample((d.array(shape), d.mask(mshape)), dict(value=d.choice((0.0, -1e4, 2.5))))


def _clamp_sample(d: Draw) -> Sample:
    lo, hi = d.choice(((-0.6, 0.6), (None, 0.6), (-0.6, None), (-0.6, -0.6)))
    return Sample((d.array(d.shape(), "distinct"),), dict(min=lo, max=hi))


def _softmax_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    return Sample((d.array(shape),), dict(dim=d.integers(-max(nd, 1), max(nd, 1) - 1)))


def _dropout_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape()),), dict(
        p=d.choice((0.0, 0.25, 0.5, 1.0)), training=d.choice((True, True, False)),
        seed=d.integers(0, 1000)))


def _dropout(x, p, training, seed):
    state = tt.get_rng_state()
    tt.manual_seed(seed)  # the same mask on every call, so gradients can be checked numerically
    try:
        return tt.dropout(x, p, training)
    finally:
        tt.set_rng_state(state)


def _np_dropout(x, p, training, seed):
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = np.random.default_rng(seed).random(x.shape) >= p
    return x * keep / (1.0 - p)


def _one_hot_sample(d: Draw) -> Sample:
    n = d.integers(1, 4)
    idx = d.indices(d.shape(0, 2), n)
    return Sample((idx,), dict(num_classes=d.choice((-1, n, n + 2))))


def _np_one_hot(idx, num_classes):
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    return (idx[..., None] == np.arange(n)).astype(np.int64)


def _embedding_sample(d: Draw) -> Sample:
    n, dim = d.integers(1, 4), d.integers(1, 3)
    return Sample((d.indices(d.shape(0, 2), n), d.array((n, dim))))


_EINSUMS = (
    "ij,jk->ik", "bij,bjk->bik", "ij->ji", "ij,ij->", "i,j->ij", "ij->i", "ijk->kj",
    "bhqd,bhkd->bhqk", "ij,jk->i", "i,i->i",
)


def _einsum_sample(d: Draw) -> Sample:
    spec = d.choice(_EINSUMS)
    sizes = {c: d.integers(1, 3) for c in sorted(set(spec) - set(",->"))}
    terms = spec.split("->")[0].split(",")
    return Sample(tuple(d.array(tuple(sizes[c] for c in t)) for t in terms), dict(spec=spec))


def _torch_prod(torch, x, dim, keepdim):
    if dim is None:
        out = torch.prod(x)
        return out.reshape((1,) * x.ndim) if keepdim else out
    dims = (dim,) if isinstance(dim, int) else dim
    if x.ndim == 0:
        return x.clone()
    for k in sorted((k % x.ndim for k in dims), reverse=True):
        x = torch.prod(x, dim=k, keepdim=True)
    if not keepdim:
        x = x.squeeze(tuple(k % len(x.shape) for k in dims))
    return x


def _np_max_dim(reduce, arg):
    def ref(x, dim, keepdim):
        if dim is None:
            return reduce(x)
        ax = _ax(dim, x.ndim)
        return reduce(x, axis=ax, keepdims=keepdim), arg(x, axis=ax, keepdims=keepdim)

    return ref


def _max_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    dim = d.choice((None, 0, -1)) if nd == 0 else d.choice((None, d.integers(-nd, nd - 1)))
    keepdim = d.boolean() if dim is not None else False
    return Sample((d.array(shape, "distinct"),), dict(dim=dim, keepdim=keepdim))


def _torch_max(name):
    def f(torch, x, dim, keepdim):
        if dim is None:
            return getattr(torch, name)(x)
        out = getattr(torch, name)(x, dim=dim, keepdim=keepdim)
        return out.values, out.indices

    return f


def _gelu(x, approximate):
    return tt.gelu(x, approximate=approximate)


def _np_gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _np_erf(x / math.sqrt(2.0)))


def _F(torch):
    return torch.nn.functional


_LOOSE = dict(rtol=1e-4, atol=1e-5, parity_rtol=1e-4, parity_atol=1e-5)  # f32 long sums, products

OPS: list[OpSpec] = [
    # ---- arithmetic (operators and functions; tensor-tensor with broadcasting, and scalars) -----
    _binary("add", operator.add, tt.add),
    _binary("sub", operator.sub, tt.sub),
    _binary("mul", operator.mul, tt.mul),
    _binary("div", operator.truediv, tt.div, dom_b="nonzero"),
    _binary("pow", operator.pow, tt.pow, dom_a="positive", scalars=(2, 3, 1.5, 0.5)),
    _binary("maximum", np.maximum, tt.maximum, "distinct", "distinct_shifted",
            scalars=(0.0, 0.25), torch_fn=lambda torch: torch.maximum, method="maximum"),
    _binary("minimum", np.minimum, tt.minimum, "distinct", "distinct_shifted",
            scalars=(0.0, 0.25), torch_fn=lambda torch: torch.minimum, method="minimum"),
    OpSpec("matmul", lambda a, b, how: a @ b if how == "op" else tt.matmul(a, b),
           lambda a, b, how: np.matmul(a, b), _matmul_sample,
           lambda torch, a, b, how: torch.matmul(a, b), **_LOOSE),
    # ---- unary math -------------------------------------------------------------------------
    OpSpec("neg", lambda x: -x, lambda x: -x, _unary_sample(), _same(lambda x: -x)),
    OpSpec("exp", tt.exp, np.exp, _unary_sample(), lambda torch, x: torch.exp(x)),
    OpSpec("log", tt.log, np.log, _unary_sample("positive"), lambda torch, x: torch.log(x)),
    OpSpec("sqrt", tt.sqrt, np.sqrt, _unary_sample("positive"), lambda torch, x: torch.sqrt(x)),
    OpSpec("rsqrt", tt.rsqrt, lambda x: 1.0 / np.sqrt(x), _unary_sample("positive"),
           lambda torch, x: torch.rsqrt(x)),
    OpSpec("sin", tt.sin, np.sin, _unary_sample(), lambda torch, x: torch.sin(x)),
    OpSpec("cos", tt.cos, np.cos, _unary_sample(), lambda torch, x: torch.cos(x)),
    OpSpec("tanh", tt.tanh, np.tanh, _unary_sample(), lambda torch, x: torch.tanh(x)),
    OpSpec("sigmoid", tt.sigmoid, _np_sigmoid, _unary_sample(), lambda torch, x: torch.sigmoid(x)),
    OpSpec("relu", tt.relu, lambda x: np.maximum(x, 0.0), _unary_sample("distinct"),
           lambda torch, x: torch.relu(x)),
    OpSpec("gelu", lambda x: _gelu(x, "none"), lambda x: _np_gelu(x, "none"), _unary_sample(),
           lambda torch, x: _F(torch).gelu(x)),
    OpSpec("gelu_tanh", lambda x: _gelu(x, "tanh"), lambda x: _np_gelu(x, "tanh"), _unary_sample(),
           lambda torch, x: _F(torch).gelu(x, approximate="tanh")),
    OpSpec("silu", tt.silu, lambda x: x * _np_sigmoid(x), _unary_sample(),
           lambda torch, x: _F(torch).silu(x)),
    OpSpec("erf", tt.erf, _np_erf, _unary_sample(), lambda torch, x: torch.erf(x)),
    OpSpec("abs", tt.abs, np.abs, _unary_sample("distinct"), lambda torch, x: torch.abs(x)),
    OpSpec("clamp", lambda x, min, max: tt.clamp(x, min, max), lambda x, min, max: np.clip(x, min, max),
           _clamp_sample, lambda torch, x, min, max: torch.clamp(x, min, max)),
    OpSpec("where", lambda *xs, form: tt.where(*_where_args(xs, form)),
           lambda *xs, form: np.where(*_where_args(xs, form)), _where_sample,
           lambda torch, *xs, form: torch.where(*_where_args(xs, form))),
    OpSpec("masked_fill", lambda x, m, value: x.masked_fill(m, value),
           lambda x, m, value: np.where(m, value, x), _masked_fill_sample,
           lambda torch, x, m, value: x.masked_fill(m, value)),
    # ---- reductions -------------------------------------------------------------------------
    OpSpec("sum", lambda x, dim, keepdim: tt.sum(x, dim, keepdim),
           lambda x, dim, keepdim: np.sum(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           _reduction_sample(), lambda torch, x, dim, keepdim: torch.sum(x, dim=dim, keepdim=keepdim),
           **_LOOSE),
    OpSpec("mean", lambda x, dim, keepdim: x.mean(dim, keepdim),
           lambda x, dim, keepdim: np.mean(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           _reduction_sample(), lambda torch, x, dim, keepdim: torch.mean(x, dim=dim, keepdim=keepdim),
           **_LOOSE),
    OpSpec("var", lambda x, dim, correction, keepdim: tt.var(x, dim, correction=correction, keepdim=keepdim),
           lambda x, dim, correction, keepdim: np.var(x, axis=dim, ddof=correction, keepdims=keepdim),
           _var_sample,
           lambda torch, x, dim, correction, keepdim: torch.var(x, dim=dim, correction=correction,
                                                                keepdim=keepdim), **_LOOSE),
    OpSpec("std", lambda x, dim, correction, keepdim: x.std(dim, correction=correction, keepdim=keepdim),
           lambda x, dim, correction, keepdim: np.std(x, axis=dim, ddof=correction, keepdims=keepdim),
           lambda d: _std_sample(d),
           lambda torch, x, dim, correction, keepdim: torch.std(x, dim=dim, correction=correction,
                                                                keepdim=keepdim), **_LOOSE),
    OpSpec("max", lambda x, dim, keepdim: tt.max(x, dim, keepdim), _np_max_dim(np.max, np.argmax),
           _max_sample, _torch_max("max")),
    OpSpec("min", lambda x, dim, keepdim: x.min(dim, keepdim), _np_max_dim(np.min, np.argmin),
           _max_sample, _torch_max("min")),
    OpSpec("amax", lambda x, dim, keepdim: tt.amax(x, dim, keepdim),
           lambda x, dim, keepdim: np.max(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           _reduction_sample("distinct"),
           lambda torch, x, dim, keepdim: torch.amax(x, dim=() if dim is None else dim, keepdim=keepdim)),
    OpSpec("amin", lambda x, dim, keepdim: x.amin(dim, keepdim),
           lambda x, dim, keepdim: np.min(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           _reduction_sample("distinct"),
           lambda torch, x, dim, keepdim: torch.amin(x, dim=() if dim is None else dim, keepdim=keepdim)),
    OpSpec("logsumexp", lambda x, dim, keepdim: tt.logsumexp(x, dim, keepdim),
           lambda x, dim, keepdim: _np_logsumexp(x, _ax(dim, x.ndim), keepdim), _reduction_sample(),
           lambda torch, x, dim, keepdim: torch.logsumexp(x, dim=_tdims(dim, x.ndim), keepdim=keepdim),
           **_LOOSE),
    OpSpec("prod", lambda x, dim, keepdim: tt.prod(x, dim, keepdim),
           lambda x, dim, keepdim: np.prod(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           lambda d: _prod_sample(d), _torch_prod, **_LOOSE),
    OpSpec("argmax", lambda x, dim, keepdim: tt.argmax(x, dim, keepdim),
           lambda x, dim, keepdim: np.argmax(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           lambda d: _arg_sample(d), lambda torch, x, dim, keepdim: torch.argmax(x, dim=dim, keepdim=keepdim),
           differentiable=False),
    OpSpec("argmin", lambda x, dim, keepdim: x.argmin(dim, keepdim),
           lambda x, dim, keepdim: np.argmin(x, axis=_ax(dim, x.ndim), keepdims=keepdim),
           lambda d: _arg_sample(d), lambda torch, x, dim, keepdim: torch.argmin(x, dim=dim, keepdim=keepdim),
           differentiable=False),
    # ---- shape ------------------------------------------------------------------------------
    OpSpec("reshape", lambda x, shape: tt.reshape(x, shape), _np_reshape, _reshape_sample,
           lambda torch, x, shape: x.reshape(shape)),
    OpSpec("view", lambda x, shape: x.view(*shape), _np_reshape, _reshape_sample,
           lambda torch, x, shape: x.view(shape)),
    OpSpec("flatten", lambda x, start, end: tt.flatten(x, start, end), _np_flatten, _flatten_sample,
           lambda torch, x, start, end: torch.flatten(x, start, end)),
    OpSpec("transpose", lambda x, dim0, dim1: x.transpose(dim0, dim1),
           lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1), _two_dims_sample,
           lambda torch, x, dim0, dim1: x.transpose(dim0, dim1)),
    OpSpec("swapaxes", lambda x, dim0, dim1: tt.swapaxes(x, dim0, dim1),
           lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1), _two_dims_sample,
           lambda torch, x, dim0, dim1: torch.swapaxes(x, dim0, dim1)),
    OpSpec("permute", lambda x, dims: x.permute(*dims), lambda x, dims: np.transpose(x, dims),
           _permute_sample, lambda torch, x, dims: x.permute(dims)),
    OpSpec("T", lambda x: x.T, lambda x: x.T, _unary_sample(),
           lambda torch, x: x.permute(tuple(range(x.ndim))[::-1])),
    OpSpec("mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), _unary_sample(min_dims=2),
           lambda torch, x: x.mT),
    OpSpec("unsqueeze", lambda x, dim: x.unsqueeze(dim), lambda x, dim: np.expand_dims(x, dim),
           _unsqueeze_sample, lambda torch, x, dim: x.unsqueeze(dim)),
    OpSpec("squeeze", lambda x, dim: tt.squeeze(x, dim), _np_squeeze, _squeeze_sample,
           lambda torch, x, dim: x.squeeze() if dim is None else x.squeeze(dim)),
    OpSpec("expand", lambda x, sizes: x.expand(*sizes),
           lambda x, sizes: np.broadcast_to(x, _resolve_expand(x.shape, sizes)), _expand_sample,
           lambda torch, x, sizes: x.expand(sizes)),
    OpSpec("broadcast_to", lambda x, shape: tt.broadcast_to(x, shape),
           lambda x, shape: np.broadcast_to(x, shape), _broadcast_to_sample,
           lambda torch, x, shape: torch.broadcast_to(x, shape)),
    OpSpec("getitem", _index, _index, _getitem_sample(negative_steps=True), None),
    OpSpec("getitem_torch", _index, _index, _getitem_sample(negative_steps=False), _same(_index)),
    OpSpec("getitem_arrays", _index, _index, _getitem_arrays_sample, _same(_index), optional=True),
    OpSpec("cat", lambda *xs, dim: tt.cat(xs, dim), lambda *xs, dim: np.concatenate(xs, axis=dim),
           _cat_sample, lambda torch, *xs, dim: torch.cat(xs, dim)),
    OpSpec("stack", lambda *xs, dim: tt.stack(xs, dim), lambda *xs, dim: np.stack(xs, axis=dim),
           _stack_sample, lambda torch, *xs, dim: torch.stack(xs, dim)),
    OpSpec("split", lambda x, size, dim: tuple(tt.split(x, size, dim)), _np_split, _split_sample,
           lambda torch, x, size, dim: torch.split(x, size, dim)),
    OpSpec("chunk", lambda x, chunks, dim: tuple(x.chunk(chunks, dim)), _np_chunk, _chunk_sample,
           lambda torch, x, chunks, dim: torch.chunk(x, chunks, dim)),
    OpSpec("tril", lambda x, diagonal: tt.tril(x, diagonal), lambda x, diagonal: np.tril(x, diagonal),
           _tri_sample, lambda torch, x, diagonal: torch.tril(x, diagonal)),
    OpSpec("triu", lambda x, diagonal: x.triu(diagonal), lambda x, diagonal: np.triu(x, diagonal),
           _tri_sample, lambda torch, x, diagonal: torch.triu(x, diagonal)),
    OpSpec("pad", lambda x, pad, value: tt.pad(x, pad, value=value), _np_pad, _pad_sample,
           lambda torch, x, pad, value: _F(torch).pad(x, pad, value=value)),
    # ---- nn -------------------------------------------------------------------------------
    OpSpec("softmax", lambda x, dim: tt.softmax(x, dim), _np_softmax, _softmax_sample,
           lambda torch, x, dim: torch.softmax(x, dim)),
    OpSpec("log_softmax", lambda x, dim: x.log_softmax(dim),
           lambda x, dim: x - _np_logsumexp(x, _ax(dim, x.ndim), True), _softmax_sample,
           lambda torch, x, dim: torch.log_softmax(x, dim)),
    OpSpec("dropout", _dropout, _np_dropout, _dropout_sample, None),
    OpSpec("one_hot", lambda idx, num_classes: tt.one_hot(idx, num_classes), _np_one_hot,
           _one_hot_sample, lambda torch, idx, num_classes: _F(torch).one_hot(idx, num_classes),
           differentiable=False),
    OpSpec("embedding", tt.embedding, lambda idx, w: w[idx], _embedding_sample,
           lambda torch, idx, w: _F(torch).embedding(idx, w)),
    OpSpec("einsum", lambda *xs, spec: tt.einsum(spec, *xs), lambda *xs, spec: np.einsum(spec, *xs),
           _einsum_sample, lambda torch, *xs, spec: torch.einsum(spec, *xs), optional=True, **_LOOSE),
]


def _std_sample(d: Draw) -> Sample:
    """As var, but over at least two elements: √ has no derivative where the spread is 0."""
    shape = d.shape(min_dims=1)
    shape = (max(shape[0], 2),) + shape[1:]
    nd = len(shape)
    dim = d.choice((None, 0 - nd * d.integers(0, 1), tuple(sorted({0, d.integers(0, nd - 1)}))))
    dims = range(nd) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    n = math.prod(shape[k] for k in dims)
    correction = d.integers(0, min(2, n - 1))
    return Sample((d.array(shape),), dict(dim=dim, correction=correction, keepdim=d.boolean()))


def _prod_sample(d: Draw) -> Sample:
    return _reduction_sample(d.choice(("nonzero", "with_zeros")))(d)


def _arg_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    dim = d.choice((None, 0, -1)) if nd == 0 else d.choice((None, d.integers(-nd, nd - 1)))
    return Sample((d.array(shape, "distinct"),), dict(dim=dim, keepdim=d.boolean()))


def ops_by_name() -> dict:
    return {s.name: s for s in OPS}

