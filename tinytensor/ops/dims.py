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

    An empty sequence, ``dim=()``, means every dim too: PyTorch's reading (NumPy's is "none").
    A 0-d tensor reduces over nothing: dim None, 0 or -1 give ``()``.
    """
    if dim is None or isinstance(dim, (tuple, list)) and not dim:
        return tuple(range(ndim))
    dims = distinct_dims(dim, ndim, op, shape)  # checked also for a 0-d tensor
    return tuple(sorted(dims)) if ndim else ()


def distinct_dims(dim, ndim: int, op: str, shape: tuple | None = None) -> list:
    """An int or a sequence of ints as indices in [0, ndim), in the order given; a dim named twice
    (also as -1 and ndim - 1) is an error, in PyTorch's words."""
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    out = [normalize_dim(d, ndim, op, shape) for d in dims]
    for i, d in enumerate(out):
        if d in out[:i]:
            of = "" if shape is None else f" of a tensor of shape {tuple(shape)}"
            raise ValueError(f"{op}: dim {d} appears multiple times in the list of dims "
                             f"(dim={dim} repeats a dimension{of})")
    return out
