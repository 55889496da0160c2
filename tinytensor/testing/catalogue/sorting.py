"""Sorting along a dim: sort (values and indices), argsort and topk. Gradients are checked on
distinct values (a tie has no derivative); ties are checked forward only, where the sort keeps the
order of equal values (stable), as PyTorch's stable=True does."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample


def _dim(d: Draw, nd: int) -> int:
    return d.integers(-max(nd, 1), max(nd, 1) - 1)


def _sort_sample(domain: str, diff: bool = True):
    def sample(d: Draw) -> Sample:
        shape = d.shape()
        return Sample((d.array(shape, domain),), dict(dim=_dim(d, len(shape)), descending=d.boolean()),
                      diff=None if diff else (False,))

    return sample


def _np_argsort(x, dim, descending):
    """Stable ascending, or stable descending (equal values keep their order)."""
    if x.ndim == 0:
        return np.zeros((), np.int64)
    return np.argsort(-x if descending else x, axis=dim, kind="stable")


def _np_sort(x, dim, descending):
    idx = _np_argsort(x, dim, descending)
    return (x.copy() if x.ndim == 0 else np.take_along_axis(x, idx, axis=dim)), idx


def _torch_sort(torch, x, dim, descending):
    out = torch.sort(x, dim=dim, descending=descending, stable=True)
    return out.values, out.indices


def _sort(x, dim, descending):
    out = tt.sort(x, dim, descending) if x.ndim % 2 else x.sort(dim=dim, descending=descending)
    assert out.values is out[0] and out.indices is out[1]  # a named tuple, as PyTorch's
    return out


def _topk_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    dim = _dim(d, nd)
    n = shape[dim] if nd else 1
    return Sample((d.array(shape, "distinct"),), dict(k=d.integers(0, n), dim=dim, largest=d.boolean()))


def _np_topk(x, k, dim, largest):
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    idx = np.take(_np_argsort(x, dim, largest), np.arange(k), axis=dim)
    return np.take_along_axis(x, idx, axis=dim), idx


def _topk(x, k, dim, largest):
    out = tt.topk(x, k, dim, largest) if x.ndim % 2 else x.topk(k, dim=dim, largest=largest)
    assert out.values is out[0] and out.indices is out[1]
    return out


def _torch_topk(torch, x, k, dim, largest):
    out = torch.topk(x, k, dim=dim, largest=largest)
    return out.values, out.indices


def _searchsorted_sample(d: Draw) -> Sample:
    """A sequence sorted along its last dim (1-d, or with values' leading dims), values that tie with
    its entries, left or right."""
    values = d.array(d.shape(1), "ties")
    lead = values.shape[:-1] if d.boolean() else ()
    seq = np.sort(d.array(lead + (d.integers(1, 4),), "ties"), axis=-1)
    return Sample((seq, values), dict(right=d.boolean()))


def _np_searchsorted(seq, values, right):
    side = "right" if right else "left"
    if seq.ndim == 1:
        return np.searchsorted(seq, values, side=side).astype(np.int64)
    rows = [np.searchsorted(s, v, side=side) for s, v in zip(seq.reshape(-1, seq.shape[-1]),
                                                              values.reshape(-1, values.shape[-1]))]
    return np.stack(rows).reshape(values.shape).astype(np.int64)


def _bucketize_sample(d: Draw) -> Sample:
    boundaries = np.sort(d.array((d.integers(1, 4),), "ties"))
    return Sample((d.array(d.shape(), "ties"), boundaries), dict(right=d.boolean()))


def _unique_sample(d: Draw) -> Sample:
    """Repeated values (whole numbers), a dim or none, the optional outputs; bool inputs too."""
    shape = d.shape()
    x = d.array(shape, "ties")
    x = np.asarray(x > 0) if d.integers(0, 4) == 0 else x
    dim = d.integers(-len(shape), len(shape) - 1) if shape and d.boolean() else None
    return Sample((x,), dict(dim=dim, inverse=d.boolean(), counts=d.boolean()))


def _np_unique(x, dim, inverse, counts):
    values, inv, cnt = np.unique(x, return_inverse=True, return_counts=True, axis=dim)
    inv = inv.reshape(x.shape if dim is None else (-1,)).astype(np.int64)
    return (values,) + ((inv,) if inverse else ()) + ((cnt.astype(np.int64),) if counts else ())


def _unique(x, dim, inverse, counts):
    out = x.unique(return_inverse=inverse, return_counts=counts, dim=dim)
    return out if isinstance(out, tuple) else (out,)


def _torch_unique(torch, x, dim, inverse, counts):
    out = torch.unique(x, return_inverse=inverse, return_counts=counts, dim=dim)
    return out if isinstance(out, tuple) else (out,)


SPECS: list[OpSpec] = [
    OpSpec("searchsorted", lambda seq, v, right: tt.searchsorted(seq, v, right=right), _np_searchsorted,
           _searchsorted_sample, lambda torch, seq, v, right: torch.searchsorted(seq, v, right=right),
           differentiable=False),
    OpSpec("bucketize", lambda x, b, right: tt.bucketize(x, b, right=right),
           lambda x, b, right: np.searchsorted(b, x, side="right" if right else "left").astype(np.int64),
           _bucketize_sample, lambda torch, x, b, right: torch.bucketize(x, b, right=right),
           differentiable=False),
    OpSpec("unique", _unique, _np_unique, _unique_sample, _torch_unique, differentiable=False),
    OpSpec("sort", _sort, _np_sort, _sort_sample("distinct"), _torch_sort),
    # ties: stable on both sides; forward only (the derivative at a tie does not exist)
    OpSpec("sort_ties", _sort, _np_sort, _sort_sample("ties", diff=False), _torch_sort, differentiable=False,
           op="sort"),
    OpSpec("argsort", lambda x, dim, descending: tt.argsort(x, dim, descending), _np_argsort,
           _sort_sample("ties"),
           lambda torch, x, dim, descending: torch.argsort(x, dim=dim, descending=descending, stable=True),
           differentiable=False),
    OpSpec("topk", _topk, _np_topk, _topk_sample, _torch_topk),
]
