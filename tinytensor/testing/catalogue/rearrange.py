"""Rearranging elements: t, flip, roll, Tensor.repeat (tiling) and Tensor.contiguous."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample


def _t_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(max_dims=2)),))


def _flip_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    dims = tuple(d.permutation(nd)[: d.integers(0, nd)]) if nd else d.choice(((), (0,)))
    dims = tuple(k - nd if nd and d.boolean() else k for k in dims)
    return Sample((d.array(shape),), dict(dims=dims))


def _np_flip(x, dims):
    return np.flip(x, axis=dims).copy() if x.ndim and dims else x.copy()


def _roll_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    if not nd or d.integers(0, 3) == 0:  # over the flattened tensor
        return Sample((d.array(shape),), dict(shifts=d.integers(-4, 4), dims=None))
    k = d.integers(1, 3)  # a dim may come twice: it rolls by the sum
    dims = tuple(d.integers(-nd, nd - 1) for _ in range(k))
    return Sample((d.array(shape),), dict(shifts=tuple(d.integers(-4, 4) for _ in range(k)), dims=dims))


def _repeat_sample(d: Draw) -> Sample:
    shape = d.shape()
    n = len(shape) + d.integers(0, 2)  # more sizes than dims add leading dims
    sizes = tuple(d.integers(0 if d.integers(0, 5) == 0 else 1, 3) for _ in range(n))
    return Sample((d.array(shape),), dict(sizes=sizes))


def _contiguous_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(min_dims=2)),), dict(view=d.choice(("none", "mT", "slice"))))


def _view(x, view):
    return x if view == "none" else x.mT if view == "mT" else x[..., ::2]


def _np_view(x, view):
    return x if view == "none" else np.swapaxes(x, -1, -2) if view == "mT" else x[..., ::2]


def _diff_sample(d: Draw) -> Sample:
    """n = 0..3 differences along a dim, with an optional prepend and append (of the input's dims, any
    length along dim); bool inputs (logical xor) forward only."""
    shape = d.shape(1)
    dim = d.integers(-len(shape), len(shape) - 1)
    extras = {}
    for name in ("prepend", "append"):
        if d.integers(0, 2):
            extra = list(shape)
            extra[dim] = d.integers(1, 2)
            extras[name] = tuple(extra)
    kind = d.choice(("float", "float", "bool"))
    arrays = [d.array(shape)] + [d.array(s) for s in extras.values()]
    if kind == "bool":
        arrays = [a > 0 for a in arrays]
    n = d.integers(0, 3)
    unused = (True,) + (False,) * len(extras) if n == 0 and kind == "float" else None  # n = 0 leaves them out
    return Sample(tuple(arrays), dict(n=n, dim=dim, extras=tuple(extras)), diff=unused)


def _with_extras(xs, extras):
    return xs[0], dict(zip(extras, xs[1:]))


def _diff(*xs, n, dim, extras):
    x, kw = _with_extras(xs, extras)
    return tt.diff(x, n, dim, **kw) if n % 2 else x.diff(n, dim, **kw)


def _np_diff(*xs, n, dim, extras):
    x, kw = _with_extras(xs, extras)
    return np.diff(x, n, axis=dim, **kw)


def _cartesian_sample(d: Draw) -> Sample:
    return Sample(tuple(d.array((d.integers(0, 3),)) for _ in range(d.integers(1, 3))))


def _np_cartesian(*xs):
    if len(xs) == 1:
        return xs[0].copy()
    return np.stack([g.reshape(-1) for g in np.meshgrid(*xs, indexing="ij")], axis=1)


def _rot90_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=2, max_dims=4)
    nd = len(shape)
    dim0, dim1 = d.permutation(nd)[:2]
    return Sample((d.array(shape),), dict(k=d.integers(-5, 5), dims=(dim0 - nd * d.boolean(), dim1)))


SPECS: list[OpSpec] = [
    OpSpec("fliplr", lambda x: x.fliplr(), lambda x: np.fliplr(x).copy(),
           lambda d: Sample((d.array(d.shape(2)),)), lambda torch, x: torch.fliplr(x)),
    OpSpec("flipud", lambda x: tt.flipud(x), lambda x: np.flipud(x).copy(),
           lambda d: Sample((d.array(d.shape(1)),)), lambda torch, x: torch.flipud(x)),
    OpSpec("rot90", lambda x, k, dims: x.rot90(k, dims), lambda x, k, dims: np.rot90(x, k, dims).copy(),
           _rot90_sample, lambda torch, x, k, dims: torch.rot90(x, k, dims)),
    OpSpec("diff", _diff, _np_diff, _diff_sample,
           lambda torch, *xs, n, dim, extras: torch.diff(xs[0], n, dim, **_with_extras(xs, extras)[1])),
    OpSpec("cartesian_prod", tt.cartesian_prod, _np_cartesian, _cartesian_sample,
           lambda torch, *xs: torch.cartesian_prod(*xs)),
    OpSpec("t", tt.t, lambda x: x.T if x.ndim == 2 else x, _t_sample, lambda torch, x: torch.t(x)),
    OpSpec("t_method", lambda x: x.t(), lambda x: x.T if x.ndim == 2 else x, _t_sample,
           lambda torch, x: x.t(), op="t"),
    OpSpec("flip", lambda x, dims: tt.flip(x, dims), _np_flip, _flip_sample,
           lambda torch, x, dims: torch.flip(x, dims)),
    OpSpec("roll", lambda x, shifts, dims: x.roll(shifts, dims),
           lambda x, shifts, dims: np.roll(x, shifts, dims), _roll_sample,
           lambda torch, x, shifts, dims: torch.roll(x, shifts, dims)),
    OpSpec("repeat", lambda x, sizes: x.repeat(*sizes) if sizes else x.repeat(()),
           lambda x, sizes: np.tile(x, sizes) if sizes else x.copy(), _repeat_sample,
           lambda torch, x, sizes: x.repeat(sizes), op="Tensor.repeat"),
    OpSpec("contiguous", lambda x, view: _view(x, view).contiguous(),
           lambda x, view: _np_view(x, view), _contiguous_sample,
           lambda torch, x, view: _view(x, view).contiguous(), op="Tensor.contiguous"),
]
