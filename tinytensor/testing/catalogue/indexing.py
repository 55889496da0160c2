"""Indexing ``x[key]``: basic keys (ints, slices with any step, None, Ellipsis), one integer array,
bool masks, and two broadcasting integer arrays (index arrays are sample inputs; the key holds a
``Slot`` where each goes); and indexing along a dim with index tensors: gather, scatter, scatter_add,
index_select, index_add, index_fill, masked_select, nonzero."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample, same


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


# ---- gather and scatter -----------------------------------------------------------------------
# Index shapes follow PyTorch's rule: as many dims as the input (a 0-d tensor counts as 1-d), and no
# larger than the input apart from dim.

def _index_shape(d: Draw, shape: tuple, dim: int) -> tuple:
    return tuple(d.integers(1, 3) if k == dim else d.integers(1, n) for k, n in enumerate(shape))


def _gather_sample(d: Draw) -> Sample:
    shape = d.shape()
    x = d.array(shape)
    if not shape:  # a 0-d input takes a 0-d or 1-d index (of zeros)
        idx = np.zeros(d.choice(((), (d.integers(1, 3),))), np.int64)
        return Sample((x, idx), dict(dim=d.choice((0, -1))))
    dim = d.integers(-len(shape), len(shape) - 1)
    idx = d.indices(_index_shape(d, shape, dim % len(shape)), shape[dim])
    return Sample((x, idx), dict(dim=dim))


def _take_sample(d: Draw) -> Sample:
    x = d.array(d.shape(min_side=0))
    shape = d.shape(max_dims=2) if x.size else d.choice(((0,), (2, 0)))
    return Sample((x, d.indices(shape, x.size, negative=True)))


def _take_along_dim_sample(d: Draw) -> Sample:
    """Indices of x's dims, each dim of size 1 (broadcast either way) or x's, and any length along dim;
    counting from the back too (without dim: from the front, of the flattened x)."""
    shape = d.shape(min_dims=1)
    if d.integers(0, 3) == 0:
        x = d.array(shape)
        return Sample((x, d.indices(d.shape(max_dims=2), x.size)), dict(dim=None))
    dim = d.integers(-len(shape), len(shape) - 1)
    ishape = [1 if d.integers(0, 3) == 0 else n for n in shape]
    ishape[dim] = d.integers(0, 3)
    xshape = tuple(1 if n > 1 and d.integers(0, 4) == 0 else n for n in shape)  # broadcast up to the index
    return Sample((d.array(xshape), d.indices(ishape, xshape[dim], negative=True)), dict(dim=dim))


def _np_gather(x, idx, dim):
    if x.ndim == 0:
        return x.reshape(1)[idx]
    block = x[tuple(slice(None) if k == dim % x.ndim else slice(0, n) for k, n in enumerate(idx.shape))]
    return np.take_along_axis(block, idx, axis=dim)


def _distinct_indices(d: Draw, shape: tuple, dim: int, n: int) -> np.ndarray:
    """Indices of ``shape`` into a dim of size n with no repeat along dim (a scatter writes each
    place once: which of two writes wins is unspecified)."""
    full = tuple(n if k == dim else s for k, s in enumerate(shape))
    order = np.argsort(d.rng.random(full), axis=dim)
    return np.take(order, np.arange(shape[dim]), axis=dim).astype(np.int64)


def _scatter_sample(kind: str, src_larger: bool = False):
    """kind "src": a src tensor, written once per place; "value": a number; "add": src, repeats added."""

    def sample(d: Draw) -> Sample:
        shape = d.shape(min_dims=1)
        nd = len(shape)
        dim = d.integers(-nd, nd - 1)
        k = dim % nd
        ishape = tuple(d.integers(1, shape[k]) if j == k else d.integers(1, n) for j, n in enumerate(shape))
        idx = (d.indices(ishape, shape[k]) if kind == "add" else _distinct_indices(d, ishape, k, shape[k]))
        x = d.array(shape)
        if kind == "value":
            return Sample((x, idx), dict(dim=dim, value=d.choice((0.0, -1.5, 2))))
        sshape = tuple(n + d.integers(0, 1) for n in ishape) if src_larger else ishape
        return Sample((x, idx, d.array(sshape)), dict(dim=dim))

    return sample


def _np_scatter(x, idx, src=None, *, dim, value=None, reduce=None):
    out = x.copy()
    k = dim % x.ndim
    for pos in np.ndindex(*idx.shape):
        at = pos[:k] + (idx[pos],) + pos[k + 1:]
        v = value if src is None else src[pos]
        out[at] = out[at] + v if reduce == "add" else out[at] * v if reduce == "multiply" else v
    return out


def _block(src, idx):
    return src[tuple(slice(0, n) for n in idx.shape)]


def _np_scatter_add(x, idx, src, dim):
    return _np_scatter(x, idx, src, dim=dim, reduce="add")


def _scatter_reduce_sample(d: Draw) -> Sample:
    s = _scatter_sample(d.choice(("add", "value")))(d)
    if len(s.inputs) == 2:
        s.params["value"] = float(s.params["value"])
    return Sample(s.inputs, dict(s.params, reduce=d.choice(("add", "multiply"))),
                  diff=(False,) * len(s.inputs))  # PyTorch has no derivative for it: no gradient asked


def _scatter_reduce(x, idx, *src, dim, reduce, value=None):
    return tt.scatter(x, dim, idx, src[0] if src else value, reduce=reduce)


def _torch_scatter_reduce(torch, x, idx, *src, dim, reduce, value=None):
    import warnings

    with warnings.catch_warnings():  # PyTorch deprecates reduce= for a src tensor
        warnings.simplefilter("ignore")
        return torch.scatter(x, dim, idx, src[0] if src else value, reduce=reduce)


def _np_scatter_reduce(x, idx, *src, dim, reduce, value=None):
    return _np_scatter(x, idx, src[0] if src else None, dim=dim, value=value, reduce=reduce)


# ---- index_select, index_add, index_fill -------------------------------------------------------

def _along_sample(d: Draw, negative: bool = False):
    """An input, a dim and a vector (or 0-d) index into that dim, repeats likely."""
    shape = d.shape()
    nd = len(shape)
    dim = d.integers(-max(nd, 1), max(nd, 1) - 1)
    n = shape[dim] if nd else 1
    ishape = d.choice(((), (d.integers(1, 3),))) if nd else (1,)
    return d.array(shape), dim, d.indices(ishape, n, negative=negative)


def _index_select_sample(d: Draw) -> Sample:
    x, dim, idx = _along_sample(d)
    return Sample((x, idx), dict(dim=dim))


def _np_index_select(x, idx, dim):
    if x.ndim == 0:
        return x.copy()
    return np.take(x, idx.reshape(-1), axis=dim)


def _index_add_sample(d: Draw) -> Sample:
    x, dim, idx = _along_sample(d)
    idx = idx.reshape(-1) if x.ndim else idx
    sshape = tuple(idx.size if k == dim % max(x.ndim, 1) else n for k, n in enumerate(x.shape))
    return Sample((x, idx, d.array(sshape)), dict(dim=dim, alpha=d.choice((1, 2.5, -1))))


def _np_index_add(x, idx, src, dim, alpha):
    if x.ndim == 0:
        return x + alpha * src
    out = np.moveaxis(x.copy(), dim, 0)
    np.add.at(out, idx, alpha * np.moveaxis(src, dim, 0))
    return np.moveaxis(out, 0, dim)


def _index_fill_sample(tensor_value: bool):
    """Indices count from the back too; not for a tensor value, whose gradient PyTorch reads with
    index_select, which refuses them."""

    def sample(d: Draw) -> Sample:
        x, dim, idx = _along_sample(d, negative=not tensor_value)
        if tensor_value:
            return Sample((x, idx, d.array(())), dict(dim=dim))
        return Sample((x, idx), dict(dim=dim, value=d.choice((0.0, -1.5, 3))))

    return sample


def _np_index_fill(x, idx, *value, dim, **kw):
    v = value[0] if value else kw["value"]
    out = x.copy()
    if x.ndim == 0:
        return np.full_like(out, v)
    out[(slice(None),) * (dim % x.ndim) + (idx.reshape(-1),)] = v
    return out


def _index_fill(x, idx, *value, dim, **kw):
    return tt.index_fill(x, dim, idx, value[0] if value else kw["value"])


def _torch_index_fill(torch, x, idx, *value, dim, **kw):
    return torch.index_fill(x, dim, idx, value[0] if value else kw["value"])


# ---- masks --------------------------------------------------------------------------------------

def _masked_select_sample(d: Draw) -> Sample:
    a, b = d.broadcast_shapes(2)
    return Sample((d.array(a), d.mask(b)))


def _np_masked_select(x, mask):
    xb, mb = np.broadcast_arrays(x, mask)
    return xb[mb] if xb.ndim else xb.reshape(1)[mb.reshape(1)]


def _nonzero_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(), "ties"),), dict(as_tuple=d.boolean()))


def _np_nonzero(x, as_tuple):
    if as_tuple:
        return tuple(np.nonzero(np.atleast_1d(x)))
    return np.argwhere(x)


_GETITEM = "Tensor.__getitem__"

SPECS: list[OpSpec] = [
    # negative slice steps: NumPy has them, PyTorch does not (so no torch_ref)
    OpSpec("getitem", _index, _index, _getitem_sample(negative_steps=True), None, op=_GETITEM),
    OpSpec("getitem_torch", _index, _index, _getitem_sample(negative_steps=False), same(_index),
           op=_GETITEM),
    OpSpec("getitem_arrays", _index, _index, _getitem_arrays_sample, same(_index), optional=True,
           op=_GETITEM),
    OpSpec("take", lambda x, idx: x.take(idx), lambda x, idx: x.reshape(-1)[idx], _take_sample,
           lambda torch, x, idx: torch.take(x, idx)),
    OpSpec("take_along_dim", lambda x, idx, dim: tt.take_along_dim(x, idx, dim),
           lambda x, idx, dim: np.take_along_axis(x, idx.reshape(-1) if dim is None else idx, axis=dim),
           _take_along_dim_sample, lambda torch, x, idx, dim: torch.take_along_dim(x, idx, dim)),
    OpSpec("gather", lambda x, idx, dim: tt.gather(x, dim, idx), _np_gather, _gather_sample,
           lambda torch, x, idx, dim: torch.gather(x, dim, idx)),
    OpSpec("scatter", lambda x, idx, src, dim: x.scatter(dim, idx, src),
           lambda x, idx, src, dim: _np_scatter(x, idx, src, dim=dim), _scatter_sample("src"),
           lambda torch, x, idx, src, dim: torch.scatter(x, dim, idx, src)),
    OpSpec("scatter_value", lambda x, idx, dim, value: tt.scatter(x, dim, idx, value=value),
           lambda x, idx, dim, value: _np_scatter(x, idx, dim=dim, value=value), _scatter_sample("value"),
           lambda torch, x, idx, dim, value: torch.scatter(x, dim, idx, value=value), op="scatter"),
    # a src larger than the index: only its leading block is used (PyTorch's backward refuses such a
    # src, so its side is given the block)
    OpSpec("scatter_larger_src", lambda x, idx, src, dim: tt.scatter(x, dim, idx, src),
           lambda x, idx, src, dim: _np_scatter(x, idx, src, dim=dim), _scatter_sample("src", True),
           lambda torch, x, idx, src, dim: torch.scatter(x, dim, idx, _block(src, idx)), op="scatter"),
    OpSpec("scatter_reduce", _scatter_reduce, _np_scatter_reduce, _scatter_reduce_sample,
           _torch_scatter_reduce, differentiable=False, op="scatter"),
    OpSpec("scatter_add", lambda x, idx, src, dim: tt.scatter_add(x, dim, idx, src), _np_scatter_add,
           _scatter_sample("add"), lambda torch, x, idx, src, dim: torch.scatter_add(x, dim, idx, src)),
    OpSpec("scatter_add_larger_src", lambda x, idx, src, dim: x.scatter_add(dim, idx, src), _np_scatter_add,
           _scatter_sample("add", True),
           lambda torch, x, idx, src, dim: torch.scatter_add(x, dim, idx, _block(src, idx)),
           op="scatter_add"),
    OpSpec("index_select", lambda x, idx, dim: tt.index_select(x, dim, idx), _np_index_select,
           _index_select_sample, lambda torch, x, idx, dim: torch.index_select(x, dim, idx)),
    OpSpec("index_add", lambda x, idx, src, dim, alpha: x.index_add(dim, idx, src, alpha=alpha),
           _np_index_add, _index_add_sample,
           lambda torch, x, idx, src, dim, alpha: torch.index_add(x, dim, idx, src, alpha=alpha)),
    OpSpec("index_fill", _index_fill, _np_index_fill, _index_fill_sample(False), _torch_index_fill),
    OpSpec("index_fill_tensor", _index_fill, _np_index_fill, _index_fill_sample(True), _torch_index_fill,
           op="index_fill"),
    OpSpec("masked_select", tt.masked_select, _np_masked_select, _masked_select_sample,
           lambda torch, x, mask: torch.masked_select(x, mask)),
    OpSpec("nonzero", lambda x, as_tuple: tt.nonzero(x, as_tuple=as_tuple), _np_nonzero, _nonzero_sample,
           lambda torch, x, as_tuple: torch.nonzero(x, as_tuple=as_tuple), differentiable=False),
]
