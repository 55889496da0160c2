"""The one rule for ``dim`` arguments, used by every op that takes one.

A dim counts from the front (0, 1, ...) or from the back (-1, -2, ...); anything outside
[-ndim, ndim) is an IndexError in PyTorch's words, never wrapped around. A 0-d tensor accepts
0 and -1, as PyTorch's scalars do.
"""
from __future__ import annotations

import operator


def normalize_dim(dim, ndim: int, op: str, shape: tuple | None = None) -> int:
    """``dim`` as an index in [0, ndim) (0 for a 0-d tensor); IndexError when out of range.

    ``shape``, when given, is the tensor's shape, for the message.
    """
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    n = ndim if ndim > 0 else 1
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
            + ("" if shape is None else f" for a tensor of shape {tuple(shape)}")
        )
    return dim + n if dim < 0 else dim


def normalize_dims(dim, ndim: int, op: str, shape: tuple | None = None) -> tuple:
    """A reduction's ``dim`` (None: all, an int, or a sequence of distinct ints) as sorted indices.

    A 0-d tensor reduces over nothing: dim None, 0 or -1 give ``()``.
    """
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    out = [normalize_dim(d, ndim, op, shape) for d in dims]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()
