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


SPECS: list[OpSpec] = [
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
