"""Shape ops: reshape/view/flatten, transposes and permutations, (un)squeeze, expand and
broadcasting, joining and splitting, triangles, padding."""
from __future__ import annotations

import math

import numpy as np

import tinytensor as tt

from ..draw import Draw, prime_factors
from .base import OpSpec, Sample, functional, unary_sample

# ---- reshape, view, flatten -------------------------------------------------------------------


def _reshape_sample(d: Draw) -> Sample:
    shape = d.shape()
    n = math.prod(shape)
    k = d.integers(1, 3) if n > 1 else d.integers(0, 2)
    dims = [1] * k
    for f in prime_factors(n):
        dims[d.integers(0, k - 1)] *= f
    if k and d.boolean():
        dims[d.integers(0, k - 1)] = -1
    return Sample((d.array(shape),), dict(shape=tuple(dims)))


def _np_reshape(x, shape):
    return np.reshape(x, shape)


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


# ---- transposes, permutations, (un)squeeze ----------------------------------------------------

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


# ---- expand and broadcasting ------------------------------------------------------------------

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


def _expand_sample(d: Draw) -> Sample:
    shape = d.shape()
    return Sample((d.array(shape),), dict(sizes=_expand_target(d, shape, allow_minus_one=True)))


def _broadcast_to_sample(d: Draw) -> Sample:
    shape = d.shape()
    return Sample((d.array(shape),), dict(shape=_expand_target(d, shape, allow_minus_one=False)))


def _broadcast_shapes_sample(d: Draw) -> Sample:
    return Sample(tuple(d.array(s) for s in d.broadcast_shapes(d.integers(1, 3))))


def _broadcast_shapes(*xs):
    """broadcast_shapes works on shapes, not tensors: its result as an int64 tensor on the device."""
    return tt.tensor(list(tt.broadcast_shapes(*(x.shape for x in xs))), dtype=tt.int64, device=xs[0].device)


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


def _unbind_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    return Sample((d.array(shape),), dict(dim=d.integers(-len(shape), len(shape) - 1)))


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



# ---- narrow, movedim, unflatten, meshgrid, tile, repeat_interleave ------------------------------

def _narrow_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    dim = d.integers(-len(shape), len(shape) - 1)
    n = shape[dim]
    start = d.integers(-n, n - 1)
    return Sample((d.array(shape),), dict(dim=dim, start=start, length=d.integers(0, n - start % n)))


def _np_narrow(x, dim, start, length):
    start %= x.shape[dim]
    return x[(slice(None),) * (dim % x.ndim) + (slice(start, start + length),)]


def _movedim_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    k = d.integers(1, len(shape))
    src, dst = d.permutation(len(shape))[:k], d.permutation(len(shape))[:k]
    one = k == 1 and d.boolean()  # an int, or a tuple of them
    return Sample((d.array(shape),), dict(source=src[0] if one else src, destination=dst[0] if one else dst))


def _unflatten_sample(d: Draw) -> Sample:
    shape = list(d.shape(min_dims=1))
    dim = d.integers(-len(shape), len(shape) - 1)
    shape[dim] = d.choice((1, 4, 6))
    factors = prime_factors(shape[dim]) or [1]
    sizes = [math.prod(factors[: len(factors) // 2]), math.prod(factors[len(factors) // 2:])]
    if d.boolean():
        sizes[d.integers(0, 1)] = -1
    return Sample((d.array(tuple(shape)),), dict(dim=dim, sizes=tuple(sizes)))


def _np_unflatten(x, dim, sizes):
    dim %= x.ndim
    known = math.prod(s for s in sizes if s != -1)
    sizes = tuple(x.shape[dim] // known if s == -1 else s for s in sizes)
    return x.reshape(x.shape[:dim] + sizes + x.shape[dim + 1:])


def _meshgrid_sample(d: Draw) -> Sample:
    n = d.integers(1, 3)
    vectors = tuple(d.array((d.integers(1, 3),)) for _ in range(n))
    return Sample(vectors, dict(indexing=d.choice(("ij", "xy"))))


def _tile_sample(d: Draw) -> Sample:
    shape = d.shape()
    return Sample((d.array(shape),), dict(dims=tuple(d.integers(1, 2) for _ in range(d.integers(0, 3)))))


def _repeat_interleave_sample(d: Draw) -> Sample:
    shape = d.shape()
    dim = None if not shape or d.boolean() else d.integers(-len(shape), len(shape) - 1)
    n = math.prod(shape) if dim is None else shape[dim]
    if d.boolean():
        return Sample((d.array(shape),), dict(repeats=d.integers(0, 2), dim=dim))
    counts = np.asarray([d.integers(0, 2) for _ in range(n)], dtype=np.int64)
    return Sample((d.array(shape), counts), dict(dim=dim))


def _repeat_interleave(x, counts=None, *, dim, repeats=None):
    return tt.repeat_interleave(x, counts if repeats is None else repeats, dim=dim)


def _np_repeat_interleave(x, counts=None, *, dim, repeats=None):
    return np.repeat(x, counts if repeats is None else repeats, axis=dim)


def _torch_repeat_interleave(torch, x, counts=None, *, dim, repeats=None):
    return torch.repeat_interleave(x, counts if repeats is None else repeats, dim=dim)


# ---- NumPy-style joining and splitting, diagonals, broadcast_tensors -------------------------------

def _atleast_sample(d: Draw) -> Sample:
    return Sample(tuple(d.array(d.shape(max_dims=4)) for _ in range(d.integers(1, 3))))


def _np_atleast(f):
    return lambda *xs: f(*xs) if len(xs) == 1 else tuple(f(*xs))


def _joining_sample(axis_of):
    """One to three arrays of one shape, but for the joined axis (``axis_of(ndim)``; None: none varies)."""

    def sample(d: Draw) -> Sample:
        shape = d.shape(max_dims=4)
        axis = axis_of(len(shape))
        shapes = [list(shape) for _ in range(d.integers(1, 3))]
        for s in shapes if axis is not None else ():
            s[axis] = d.integers(0, 3)
        return Sample(tuple(d.array(s) for s in shapes))

    return sample


def _joining(name: str, axis_of, np_name: str = "") -> OpSpec:
    return OpSpec(name, lambda *xs: getattr(tt, name)(xs), lambda *xs: getattr(np, np_name or name)(xs),
                  _joining_sample(axis_of), lambda torch, *xs: getattr(torch, name)(xs))


def _tensor_split_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1, min_side=0)
    dim = d.integers(-len(shape), len(shape) - 1)
    n = shape[dim]
    cuts = d.integers(1, 4) if d.boolean() else [d.integers(-n - 1, n + 1) for _ in range(d.integers(0, 3))]
    return Sample((d.array(shape),), dict(cuts=cuts, dim=dim))


def _np_tensor_split(x, cuts, dim):
    return tuple(np.array_split(x, cuts, axis=dim))


def _along_sample(axis_of, min_dims: int):
    """An array for hsplit, vsplit or dsplit, and sections that divide the axis, or indices."""

    def sample(d: Draw) -> Sample:
        shape = d.shape(min_dims=min_dims, max_dims=4)
        n = shape[axis_of(len(shape))]
        if d.boolean():
            return Sample((d.array(shape),), dict(cuts=d.choice([k for k in range(1, n + 1) if n % k == 0])))
        cuts = sorted(d.integers(0, n + 1) for _ in range(d.integers(0, 3)))
        return Sample((d.array(shape),), dict(cuts=cuts))

    return sample


def _along(name: str, axis_of, min_dims: int) -> OpSpec:
    return OpSpec(name, lambda x, cuts: getattr(x, name)(cuts),
                  lambda x, cuts: tuple(getattr(np, name)(x, cuts)), _along_sample(axis_of, min_dims),
                  lambda torch, x, cuts: getattr(torch, name)(x, cuts))


def _diagonal_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=2, max_dims=4, min_side=0)
    nd = len(shape)
    dim1, dim2 = d.permutation(nd)[:2]
    return Sample((d.array(shape),), dict(offset=d.integers(-4, 4), dim1=dim1 - nd * d.boolean(), dim2=dim2))


def _diag_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(min_dims=1, max_dims=2, min_side=0)),), dict(diagonal=d.integers(-3, 3)))


def _diag_embed_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1, min_side=0)
    nd = len(shape) + 1
    dim1, dim2 = d.permutation(nd)[:2]
    return Sample((d.array(shape),), dict(offset=d.integers(-3, 3), dim1=dim1, dim2=dim2 - nd * d.boolean()))


def _np_diag_embed(x, offset, dim1, dim2):
    n = x.shape[-1]
    m = n + abs(offset)
    out = np.zeros(x.shape[:-1] + (m, m), x.dtype)
    i = np.arange(n)
    out[..., i + max(-offset, 0), i + max(offset, 0)] = x
    return np.moveaxis(out, (-2, -1), (dim1, dim2))


def _trace_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(min_dims=2, max_dims=2, min_side=0)),))


def _broadcast_tensors_sample(d: Draw) -> Sample:
    return Sample(tuple(d.array(s) for s in d.broadcast_shapes(d.integers(1, 3))))


SPECS: list[OpSpec] = [
    OpSpec("atleast_1d", tt.atleast_1d, _np_atleast(np.atleast_1d), _atleast_sample,
           lambda torch, *xs: torch.atleast_1d(*xs)),
    OpSpec("atleast_2d", tt.atleast_2d, _np_atleast(np.atleast_2d), _atleast_sample,
           lambda torch, *xs: torch.atleast_2d(*xs)),
    OpSpec("atleast_3d", tt.atleast_3d, _np_atleast(np.atleast_3d), _atleast_sample,
           lambda torch, *xs: torch.atleast_3d(*xs)),
    _joining("hstack", lambda nd: None if nd == 0 else 0 if nd == 1 else 1),
    _joining("vstack", lambda nd: 0 if nd >= 2 else None),
    _joining("row_stack", lambda nd: 0 if nd >= 2 else None, "vstack"),
    _joining("dstack", lambda nd: 2 if nd >= 3 else None),
    _joining("column_stack", lambda nd: 1 if nd >= 2 else None),
    OpSpec("tensor_split", lambda x, cuts, dim: x.tensor_split(cuts, dim), _np_tensor_split,
           _tensor_split_sample, lambda torch, x, cuts, dim: torch.tensor_split(x, cuts, dim)),
    _along("hsplit", lambda nd: 1 if nd > 1 else 0, 1),
    _along("vsplit", lambda nd: 0, 2),
    _along("dsplit", lambda nd: 2, 3),
    OpSpec("ravel", lambda x: x.ravel(), np.ravel, unary_sample(), lambda torch, x: torch.ravel(x)),
    OpSpec("swapdims", lambda x, dim0, dim1: x.swapdims(dim0, dim1),
           lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1), _two_dims_sample,
           lambda torch, x, dim0, dim1: torch.swapdims(x, dim0, dim1)),
    OpSpec("diagonal", lambda x, offset, dim1, dim2: tt.diagonal(x, offset, dim1, dim2),
           lambda x, offset, dim1, dim2: np.diagonal(x, offset, dim1, dim2).copy(), _diagonal_sample,
           lambda torch, x, offset, dim1, dim2: torch.diagonal(x, offset, dim1, dim2)),
    OpSpec("diag", lambda x, diagonal: x.diag(diagonal), lambda x, diagonal: np.diag(x, diagonal).copy(),
           _diag_sample, lambda torch, x, diagonal: torch.diag(x, diagonal)),
    OpSpec("diag_embed", lambda x, offset, dim1, dim2: x.diag_embed(offset, dim1, dim2), _np_diag_embed,
           _diag_embed_sample, lambda torch, x, offset, dim1, dim2: torch.diag_embed(x, offset, dim1, dim2)),
    OpSpec("trace", lambda x: x.trace(), lambda x: np.asarray(np.trace(x)),
           _trace_sample, lambda torch, x: torch.trace(x)),
    OpSpec("broadcast_tensors", tt.broadcast_tensors,
           lambda *xs: tuple(a.copy() for a in np.broadcast_arrays(*xs)), _broadcast_tensors_sample,
           lambda torch, *xs: torch.broadcast_tensors(*xs)),
    OpSpec("narrow", lambda x, dim, start, length: x.narrow(dim, start, length), _np_narrow, _narrow_sample,
           lambda torch, x, dim, start, length: torch.narrow(x, dim, start, length)),
    OpSpec("movedim", lambda x, source, destination: tt.movedim(x, source, destination),
           lambda x, source, destination: np.moveaxis(x, source, destination), _movedim_sample,
           lambda torch, x, source, destination: torch.movedim(x, source, destination)),
    OpSpec("moveaxis", lambda x, source, destination: x.moveaxis(source, destination),
           lambda x, source, destination: np.moveaxis(x, source, destination), _movedim_sample,
           lambda torch, x, source, destination: torch.moveaxis(x, source, destination)),
    OpSpec("unflatten", lambda x, dim, sizes: x.unflatten(dim, sizes), _np_unflatten, _unflatten_sample,
           lambda torch, x, dim, sizes: torch.unflatten(x, dim, sizes)),
    OpSpec("meshgrid", lambda *xs, indexing: tt.meshgrid(*xs, indexing=indexing),
           lambda *xs, indexing: tuple(np.meshgrid(*xs, indexing=indexing)), _meshgrid_sample,
           lambda torch, *xs, indexing: torch.meshgrid(*xs, indexing=indexing)),
    OpSpec("tile", lambda x, dims: tt.tile(x, dims), lambda x, dims: np.tile(x, dims), _tile_sample,
           lambda torch, x, dims: torch.tile(x, dims)),
    OpSpec("repeat_interleave", _repeat_interleave, _np_repeat_interleave, _repeat_interleave_sample,
           _torch_repeat_interleave),
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
    OpSpec("T", lambda x: x.T, lambda x: x.T, unary_sample(),
           lambda torch, x: x.permute(tuple(range(x.ndim))[::-1]), op="Tensor.T"),
    OpSpec("mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), unary_sample(min_dims=2),
           lambda torch, x: x.mT, op="Tensor.mT"),
    OpSpec("unsqueeze", lambda x, dim: x.unsqueeze(dim), lambda x, dim: np.expand_dims(x, dim),
           _unsqueeze_sample, lambda torch, x, dim: x.unsqueeze(dim)),
    OpSpec("squeeze", lambda x, dim: tt.squeeze(x, dim), _np_squeeze, _squeeze_sample,
           lambda torch, x, dim: x.squeeze() if dim is None else x.squeeze(dim)),
    OpSpec("expand", lambda x, sizes: x.expand(*sizes) if sizes else x.expand(()),  # expand() names no shape
           lambda x, sizes: np.broadcast_to(x, _resolve_expand(x.shape, sizes)), _expand_sample,
           lambda torch, x, sizes: x.expand(sizes)),
    OpSpec("broadcast_to", lambda x, shape: tt.broadcast_to(x, shape),
           lambda x, shape: np.broadcast_to(x, shape), _broadcast_to_sample,
           lambda torch, x, shape: torch.broadcast_to(x, shape)),
    OpSpec("broadcast_shapes", _broadcast_shapes,
           lambda *xs: np.array(np.broadcast_shapes(*(x.shape for x in xs)), dtype=np.int64),
           _broadcast_shapes_sample,
           lambda torch, *xs: torch.tensor(list(torch.broadcast_shapes(*(x.shape for x in xs))),
                                           dtype=torch.int64),
           differentiable=False, second_order=False),
    OpSpec("cat", lambda *xs, dim: tt.cat(xs, dim), lambda *xs, dim: np.concatenate(xs, axis=dim),
           _cat_sample, lambda torch, *xs, dim: torch.cat(xs, dim)),
    OpSpec("stack", lambda *xs, dim: tt.stack(xs, dim), lambda *xs, dim: np.stack(xs, axis=dim),
           _stack_sample, lambda torch, *xs, dim: torch.stack(xs, dim)),
    OpSpec("split", lambda x, size, dim: tuple(tt.split(x, size, dim)), _np_split, _split_sample,
           lambda torch, x, size, dim: torch.split(x, size, dim)),
    OpSpec("unbind", lambda x, dim: x.unbind(dim), lambda x, dim: tuple(np.moveaxis(x, dim, 0)),
           _unbind_sample, lambda torch, x, dim: torch.unbind(x, dim)),
    OpSpec("chunk", lambda x, chunks, dim: tuple(x.chunk(chunks, dim)), _np_chunk, _chunk_sample,
           lambda torch, x, chunks, dim: torch.chunk(x, chunks, dim)),
    OpSpec("tril", lambda x, diagonal: tt.tril(x, diagonal), lambda x, diagonal: np.tril(x, diagonal),
           _tri_sample, lambda torch, x, diagonal: torch.tril(x, diagonal)),
    OpSpec("triu", lambda x, diagonal: x.triu(diagonal), lambda x, diagonal: np.triu(x, diagonal),
           _tri_sample, lambda torch, x, diagonal: torch.triu(x, diagonal)),
    OpSpec("pad", lambda x, pad, value: tt.pad(x, pad, value=value), _np_pad, _pad_sample,
           lambda torch, x, pad, value: functional(torch).pad(x, pad, value=value)),
]
