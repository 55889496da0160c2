"""Sorting along a dim: sort, argsort and topk. Values come with the int64 indices that pick them,
as PyTorch's named tuples (``values``, ``indices``); the values are the input read at the indices
(a gather), so their gradient goes back to where each value came from.

Sorts are stable (equal values keep their order), also where PyTorch's default is not: stable is one
valid answer of an unstable sort. NaN sorts above every number, as in PyTorch.
"""
from __future__ import annotations

from typing import NamedTuple

from ..autograd.function import Function
from .dims import normalize_dim
from .indexing import Gather


class SortResult(NamedTuple):
    """What sort returns (PyTorch's torch.return_types.sort)."""

    values: object
    indices: object


class TopkResult(NamedTuple):
    """What topk returns (PyTorch's torch.return_types.topk)."""

    values: object
    indices: object


class Argsort(Function):
    """The int64 indices that sort x along dim, stably; descending by sorting x reversed (so that
    equal values still keep their order): i ↦ n-1-i of the ascending indices of flip(x)."""

    differentiable = False

    def forward(self, x, dim, descending):
        xp = self.xp
        if self.backend.dtype_of(x).name == "bool":  # the standard sorts numbers only
            x = xp.astype(x, xp.uint8)
        if not descending:
            return xp.astype(xp.argsort(x, axis=dim, stable=True), xp.int64)
        order = xp.argsort(xp.flip(x, axis=dim), axis=dim, stable=True)
        return xp.astype((x.shape[dim] - 1) - xp.flip(order, axis=dim), xp.int64)


def _indices(x, d: int, descending: bool):
    return Argsort.apply(x, d, descending)


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False) -> SortResult:
    """(values, indices): input sorted along dim, and where each value came from."""
    d = normalize_dim(dim, input.ndim, "sort", input.shape)
    if input.ndim == 0:
        values, indices = sort(input.reshape(1), 0, descending)
        return SortResult(values.reshape(()), indices.reshape(()))
    indices = _indices(input, d, descending)
    return SortResult(Gather.apply(input, indices, d), indices)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """The int64 indices that sort input along dim (equal values keep their order)."""
    d = normalize_dim(dim, input.ndim, "argsort", input.shape)
    if input.ndim == 0:
        return _indices(input.reshape(1), 0, descending).reshape(())
    return _indices(input, d, descending)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> TopkResult:
    """(values, indices) of the k largest (largest=False: smallest) elements along dim, largest first
    (always sorted; of equal values the first ones)."""
    d = normalize_dim(dim, input.ndim, "topk", input.shape)
    if input.dtype.name == "bool":
        raise RuntimeError("topk: bool tensors are not supported (as PyTorch's); convert with .long() or "
                           ".float()")
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: selected index k out of range: k = {k} for dimension {d} of size {n} "
                           f"(shape {tuple(input.shape)})")
    if input.ndim == 0:  # PyTorch returns the element itself, also for k = 0
        values, indices = topk(input.reshape(1), 1, 0, largest)
        return TopkResult(values.reshape(()), indices.reshape(()))
    indices = _indices(input, d, largest)[(slice(None),) * d + (slice(0, k),)]
    return TopkResult(Gather.apply(input, indices, d), indices)
