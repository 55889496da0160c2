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


SPECS: list[OpSpec] = [
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
