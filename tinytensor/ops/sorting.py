"""Sorting along a dim: sort, argsort and topk. Values come with the int64 indices that pick them,
as PyTorch's named tuples (``values``, ``indices``); the values are the input read at the indices
(a gather), so their gradient goes back to where each value came from.

Sorts are stable (equal values keep their order), also where PyTorch's default is not: stable is one
valid answer of an unstable sort. NaN sorts above every number, as in PyTorch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from ..autograd.function import Function
from ..dtypes import int64
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


# ---- positions in sorted sequences, unique values ---------------------------------------------------

class SearchSorted(Function):
    """For each value, the position in the sorted last dim of ``seq`` where it would be inserted: before
    equal entries (side "left") or after them ("right"). A NaN value goes past the end, as PyTorch's."""

    differentiable = False

    def forward(self, seq, values, side, out_dtype):
        xp, n = self.xp, seq.shape[-1]
        if math.prod(values.shape) == 0 or math.prod(seq.shape[:-1]) == 0:
            return self.backend.full(values.shape, 0, out_dtype)  # nothing to search
        if seq.ndim == 1:
            pos = xp.searchsorted(seq, xp.reshape(values, (-1,)), side=side)
        else:  # one row of seq for each row of values (the standard searches 1-d sequences only)
            rows = math.prod(seq.shape[:-1])
            s, v = xp.reshape(seq, (rows, n)), xp.reshape(values, (rows, values.shape[-1]))
            pos = xp.stack([xp.searchsorted(s[i, ...], v[i, ...], side=side) for i in range(rows)])
        pos = self.backend.astype(xp.reshape(pos, values.shape), out_dtype)
        if self.backend.dtype_of(values).is_floating_point:
            pos = xp.where(xp.isnan(values), self.backend.full(pos.shape, n, out_dtype), pos)
        return pos


def searchsorted(sorted_sequence, input, *, out_int32: bool = False, right: bool = False, side=None,
                 sorter=None):
    """Where each value of ``input`` would be inserted into ``sorted_sequence`` (sorted along its last
    dim) to keep it sorted: the first such position, or with ``right=True`` / ``side="right"`` the last
    (``torch.searchsorted``). A 1-d sequence serves every value; an N-d one gives each row of input its
    own row, so their leading dims must match. ``sorter`` holds the indices that sort an unsorted
    sequence (argsort's). int64 positions, int32 with out_int32; no gradient.

    NaN values go past the end, as PyTorch's. A NaN in the sequence is taken to sort above every number
    (where NumPy and sort put it); PyTorch's answer there depends on its binary search's path."""
    from ..dtypes import int32, scalar_dtype
    from ._operands import binary, like

    op = "searchsorted"
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"{op}: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise RuntimeError(f"{op}: side='left' and right=True contradict each other; give one of them")
    side = side or ("right" if right else "left")
    seq = sorted_sequence
    if not hasattr(seq, "array") or seq.ndim == 0:
        raise RuntimeError(f"{op}: sorted_sequence must be a tensor of at least 1 dimension, got "
                           f"{tuple(seq.shape) if hasattr(seq, 'shape') else type(seq).__name__}")
    if not hasattr(input, "array"):  # a number: a 0-d result
        input = like(seq, seq.backend.full((), input, scalar_dtype(seq.dtype, input)))
    if seq.ndim > 1 and tuple(seq.shape[:-1]) != tuple(input.shape[:-1]):
        raise RuntimeError(f"{op}: sorted_sequence must be 1-d, or its leading dims must be input's: got "
                           f"shapes {tuple(seq.shape)} and {tuple(input.shape)} (their dims but the last "
                           f"must match)")
    if sorter is not None:
        if tuple(sorter.shape) != tuple(seq.shape) or sorter.dtype.is_floating_point:
            raise RuntimeError(f"{op}: sorter must be integer indices of sorted_sequence's shape "
                               f"{tuple(seq.shape)}, got {sorter.dtype.name} of shape {tuple(sorter.shape)}")
        seq = seq.gather(-1, sorter)
    seq, input = binary(seq.detach(), input.detach(), op)
    if seq.dtype.name == "bool":
        raise RuntimeError(f"{op}: a bool sequence with bool values is not supported (as PyTorch's); convert "
                           f"one with .long()")
    return SearchSorted.apply(seq, input, side, int32 if out_int32 else int64)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False):
    """The bucket of each value among 1-d sorted ``boundaries``: i with boundaries[i-1] < x <=
    boundaries[i], or with ``right=True`` boundaries[i-1] <= x < boundaries[i] (``torch.bucketize``;
    searchsorted with the arguments swapped)."""
    if not hasattr(boundaries, "array") or boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries must be a 1-d tensor, got "
                           f"{tuple(getattr(boundaries, 'shape', ())) or type(boundaries).__name__}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def unique(input, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """The distinct values of input in ascending order (dim=None: of the flattened input), or its distinct
    slices along ``dim`` in lexicographic order (``torch.unique``). With return_inverse, also where each
    element (slice) of input went; with return_counts, how many of each. NaNs are each distinct, as
    PyTorch's. The result is always sorted (as PyTorch's CPU kernel for sorted=False too); no gradient."""
    from ..creation import arange
    from .elementwise import ne
    from .indexing import nonzero
    from .rearrange import diff
    from .scan import cumsum
    from .shape import cat, movedim, reshape

    x = input.detach()
    if dim is None:
        rows, d = reshape(x, (-1, 1)), None
    else:
        d = normalize_dim(dim, x.ndim, "unique", x.shape)
        if sum(s == 0 for s in x.shape) > 1:
            raise RuntimeError(f"unique: a tensor of shape {tuple(x.shape)} has more than one 0-sized dim, "
                               f"so unique along dim {d} cannot be applied (as PyTorch refuses)")
        if x.array.size == 0 and x.shape[d] != 0:
            raise RuntimeError(f"unique: a tensor of shape {tuple(x.shape)} has 0-sized dims other than dim "
                               f"{d}, so there are no slices along it to compare (as PyTorch refuses)")
        moved = movedim(x, d, 0)
        rows = reshape(moved, (moved.shape[0], math.prod(moved.shape[1:])))
    n = rows.shape[0]
    order = arange(n, device=x.device)
    for col in range(rows.shape[1] - 1, -1, -1):  # lexicographic: stable sorts from the last column on
        order = order[_indices(rows[:, col][order], 0, False)]
    ranked = rows[order]
    first = ne(ranked[1:], ranked[:-1]).any(1)  # (NaN != NaN: each NaN is a value of its own)
    first = cat([x.new_ones(min(n, 1), dtype=first.dtype), first])  # each run of equal rows starts here
    values = ranked[first]
    if d is None:
        values = reshape(values, (-1,))
    else:
        values = movedim(reshape(values, (values.shape[0],) + tuple(moved.shape[1:])), 0, d)
    out = [values]
    if return_inverse:
        group = cumsum(first.long(), 0) - 1  # the run of each ranked row
        inverse = x.new_zeros(n, dtype=int64).scatter(0, order, group)
        out.append(reshape(inverse, tuple(x.shape) if d is None else (n,)))
    if return_counts:
        starts = reshape(nonzero(first), (-1,))
        out.append(diff(starts, append=starts.new_tensor([n])))
    return out[0] if len(out) == 1 else tuple(out)
