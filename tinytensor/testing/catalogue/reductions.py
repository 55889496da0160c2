"""Reductions over ``dim`` (None, an int, or a tuple) with ``keepdim``: sum, mean, var, std, max/min
(values and indices), amax/amin, logsumexp, prod, and the forward-only argmax/argmin."""
from __future__ import annotations

import math

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import LOOSE, OpSpec, Sample, np_axis, np_logsumexp


def _tdims(dim, ndim):
    """PyTorch dim argument for reductions that need an explicit dim list."""
    if ndim == 0:
        return 0 if dim is None or isinstance(dim, int) else ()
    return tuple(range(ndim)) if dim is None else dim


def dims_choice(d: Draw, ndim: int, allow_tuple: bool):
    """dim for a reduction: None, an int (possibly negative), or a tuple of distinct dims."""
    if ndim == 0:
        return d.choice((None, 0, -1))
    kinds = ("none", "int", "tuple") if allow_tuple else ("none", "int")
    kind = d.choice(kinds)
    if kind == "none":
        return None
    if kind == "int":
        return d.integers(-ndim, ndim - 1)
    k = d.integers(1, ndim)
    perm = d.permutation(ndim)
    return tuple(p - ndim if d.boolean() else p for p in perm[:k])


def reduction_sample(domain="real", allow_tuple=True, keepdim_with_none=True):
    def sample(d: Draw) -> Sample:
        shape = d.shape()
        dim = dims_choice(d, len(shape), allow_tuple)
        keepdim = d.boolean() if (dim is not None or keepdim_with_none) else False
        return Sample((d.array(shape, domain),), dict(dim=dim, keepdim=keepdim))

    return sample


def _norm_sample(d: Draw) -> Sample:
    """p in 2, 1, 3, 0.5, inf over some dims; values distinct and away from 0 (|x| has a kink there)."""
    shape = d.shape(min_dims=1)
    dim = dims_choice(d, len(shape), True)
    p = d.choice((2, 2, 1, 3, 0.5, math.inf))  # (p = 0 counts nonzeros: no gradient flows)
    x = d.array(shape, "distinct")  # (a zero vector's gradient: tests/test_shape_reduction_rules.py)
    return Sample((x,), dict(p=p, dim=dim, keepdim=d.boolean() if dim is not None else False))


def _np_norm(x, p, dim, keepdim):
    a = np.abs(x)
    if p == math.inf:
        return np.max(a, axis=dim, keepdims=keepdim)
    if p == 0:
        return np.sum(x != 0, axis=dim, keepdims=keepdim).astype(x.dtype)
    return np.sum(a ** p, axis=dim, keepdims=keepdim) ** (1.0 / p)


def _var_sample(d: Draw) -> Sample:
    shape = d.shape(min_dims=1)
    dim = dims_choice(d, len(shape), True)
    dims = range(len(shape)) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    n = math.prod(shape[k] for k in dims)
    correction = d.integers(0, min(2, n - 1)) if n > 1 else 0
    if n == 1:  # a single element has no spread; var of it with correction 0 is 0 (gradient 0)
        correction = 0
    return Sample((d.array(shape),), dict(dim=dim, correction=correction, keepdim=d.boolean()))


def _with_nan_sample(full_only: bool):
    """nansum, nanmean: an array with some NaNs (their gradient is 0: a central difference there moves
    nothing). nanmean's NaNs are drawn only for a reduction over every dim, which keeps one number."""
    def sample(d: Draw) -> Sample:
        shape = d.shape()
        dim = dims_choice(d, len(shape), True)
        x = d.array(shape)
        if x.size > 1 and (dim is None or not full_only):
            x.reshape(-1)[d.integers(0, x.size - 2)] = np.nan
        return Sample((x,), dict(dim=dim, keepdim=d.boolean() if dim is not None else False))

    return sample


def _np_nanmean(x, dim, keepdim):
    return np.nanmean(x, axis=np_axis(dim, x.ndim), keepdims=keepdim) if x.size else np.mean(x, axis=dim)


def _aminmax_sample(d: Draw) -> Sample:
    shape = d.shape()
    dim = None if d.boolean() or not shape else d.integers(-len(shape), len(shape) - 1)
    return Sample((d.array(shape, "distinct"),), dict(dim=dim, keepdim=d.boolean()))


def _std_sample(d: Draw) -> Sample:
    """As var, but over at least two elements: √ has no derivative where the spread is 0."""
    shape = d.shape(min_dims=1)
    shape = (max(shape[0], 2),) + shape[1:]
    nd = len(shape)
    dim = d.choice((None, 0 - nd * d.integers(0, 1), tuple(sorted({0, d.integers(0, nd - 1)}))))
    dims = range(nd) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    n = math.prod(shape[k] for k in dims)
    correction = d.integers(0, min(2, n - 1))
    return Sample((d.array(shape),), dict(dim=dim, correction=correction, keepdim=d.boolean()))


def _prod_sample(d: Draw) -> Sample:
    return reduction_sample(d.choice(("nonzero", "with_zeros")))(d)


def _torch_prod(torch, x, dim, keepdim):
    if dim is None:
        out = torch.prod(x)
        return out.reshape((1,) * x.ndim) if keepdim else out
    dims = (dim,) if isinstance(dim, int) else dim
    if x.ndim == 0:
        return x.clone()
    for k in sorted((k % x.ndim for k in dims), reverse=True):
        x = torch.prod(x, dim=k, keepdim=True)
    if not keepdim:
        x = x.squeeze(tuple(k % len(x.shape) for k in dims))
    return x


def _max_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    dim = d.choice((None, 0, -1)) if nd == 0 else d.choice((None, d.integers(-nd, nd - 1)))
    keepdim = d.boolean() if dim is not None else False
    return Sample((d.array(shape, "distinct"),), dict(dim=dim, keepdim=keepdim))


def _np_max_dim(reduce, arg):
    def ref(x, dim, keepdim):
        if dim is None:
            return reduce(x)
        ax = np_axis(dim, x.ndim)
        return reduce(x, axis=ax, keepdims=keepdim), arg(x, axis=ax, keepdims=keepdim)

    return ref


def _torch_max(name):
    def f(torch, x, dim, keepdim):
        if dim is None:
            return getattr(torch, name)(x)
        out = getattr(torch, name)(x, dim=dim, keepdim=keepdim)
        return out.values, out.indices

    return f


def _arg_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    dim = d.choice((None, 0, -1)) if nd == 0 else d.choice((None, d.integers(-nd, nd - 1)))
    return Sample((d.array(shape, "distinct"),), dict(dim=dim, keepdim=d.boolean()))


SPECS: list[OpSpec] = [
    OpSpec("sum", lambda x, dim, keepdim: tt.sum(x, dim, keepdim),
           lambda x, dim, keepdim: np.sum(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           reduction_sample(), lambda torch, x, dim, keepdim: torch.sum(x, dim=dim, keepdim=keepdim),
           **LOOSE),
    OpSpec("mean", lambda x, dim, keepdim: x.mean(dim, keepdim),
           lambda x, dim, keepdim: np.mean(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           reduction_sample(), lambda torch, x, dim, keepdim: torch.mean(x, dim=dim, keepdim=keepdim),
           **LOOSE),
    OpSpec("var", lambda x, dim, correction, keepdim: tt.var(x, dim, correction=correction, keepdim=keepdim),
           lambda x, dim, correction, keepdim: np.var(x, axis=dim, ddof=correction, keepdims=keepdim),
           _var_sample,
           lambda torch, x, dim, correction, keepdim: torch.var(x, dim=dim, correction=correction,
                                                                keepdim=keepdim), **LOOSE),
    OpSpec("std", lambda x, dim, correction, keepdim: x.std(dim, correction=correction, keepdim=keepdim),
           lambda x, dim, correction, keepdim: np.std(x, axis=dim, ddof=correction, keepdims=keepdim),
           _std_sample,
           lambda torch, x, dim, correction, keepdim: torch.std(x, dim=dim, correction=correction,
                                                                keepdim=keepdim), **LOOSE),
    OpSpec("var_mean", lambda x, dim, correction, keepdim: tt.var_mean(x, dim, correction, keepdim),
           lambda x, dim, correction, keepdim: (np.var(x, axis=dim, ddof=correction, keepdims=keepdim),
                                                np.mean(x, axis=dim, keepdims=keepdim)),
           _var_sample,
           lambda torch, x, dim, correction, keepdim: torch.var_mean(x, dim=dim, correction=correction,
                                                                     keepdim=keepdim), **LOOSE),
    OpSpec("std_mean", lambda x, dim, correction, keepdim: tt.std_mean(x, dim, correction, keepdim),
           lambda x, dim, correction, keepdim: (np.std(x, axis=dim, ddof=correction, keepdims=keepdim),
                                                np.mean(x, axis=dim, keepdims=keepdim)),
           _std_sample,
           lambda torch, x, dim, correction, keepdim: torch.std_mean(x, dim=dim, correction=correction,
                                                                     keepdim=keepdim), **LOOSE),
    OpSpec("nansum", lambda x, dim, keepdim: tt.nansum(x, dim, keepdim),
           lambda x, dim, keepdim: np.nansum(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           _with_nan_sample(False),
           lambda torch, x, dim, keepdim: torch.nansum(x, dim=_tdims(dim, x.ndim), keepdim=keepdim)),
    OpSpec("nanmean", lambda x, dim, keepdim: x.nanmean(dim, keepdim), _np_nanmean, _with_nan_sample(True),
           lambda torch, x, dim, keepdim: torch.nanmean(x, dim=dim, keepdim=keepdim)),
    OpSpec("aminmax", lambda x, dim, keepdim: tt.aminmax(x, dim=dim, keepdim=keepdim),
           lambda x, dim, keepdim: (np.min(x, axis=dim, keepdims=keepdim),
                                    np.max(x, axis=dim, keepdims=keepdim)),
           _aminmax_sample, lambda torch, x, dim, keepdim: tuple(torch.aminmax(x, dim=dim, keepdim=keepdim))),
    OpSpec("count_nonzero", lambda x, dim: tt.count_nonzero(x, dim),
           lambda x, dim: np.asarray(np.count_nonzero(x, axis=np_axis(dim, x.ndim))).astype(np.int64),
           lambda d: (lambda s: Sample((d.array(s, "with_zeros"),), dict(dim=dims_choice(d, len(s), True))))(
               d.shape()),
           lambda torch, x, dim: torch.count_nonzero(x, dim=dim), differentiable=False, second_order=False),
    OpSpec("norm", lambda x, p, dim, keepdim: x.norm(p, dim, keepdim) if dim is not None or keepdim
           else tt.norm(x, p), _np_norm, _norm_sample,
           lambda torch, x, p, dim, keepdim: torch.norm(x, p, dim, keepdim) if dim is not None or keepdim
           else torch.norm(x, p), **LOOSE),
    OpSpec("max", lambda x, dim, keepdim: tt.max(x, dim, keepdim), _np_max_dim(np.max, np.argmax),
           _max_sample, _torch_max("max")),
    OpSpec("min", lambda x, dim, keepdim: x.min(dim, keepdim), _np_max_dim(np.min, np.argmin),
           _max_sample, _torch_max("min")),
    OpSpec("amax", lambda x, dim, keepdim: tt.amax(x, dim, keepdim),
           lambda x, dim, keepdim: np.max(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           reduction_sample("distinct"),
           lambda torch, x, dim, keepdim: torch.amax(x, dim=() if dim is None else dim, keepdim=keepdim)),
    OpSpec("amin", lambda x, dim, keepdim: x.amin(dim, keepdim),
           lambda x, dim, keepdim: np.min(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           reduction_sample("distinct"),
           lambda torch, x, dim, keepdim: torch.amin(x, dim=() if dim is None else dim, keepdim=keepdim)),
    OpSpec("logsumexp", lambda x, dim, keepdim: tt.logsumexp(x, dim, keepdim),
           lambda x, dim, keepdim: np_logsumexp(x, np_axis(dim, x.ndim), keepdim), reduction_sample(),
           lambda torch, x, dim, keepdim: torch.logsumexp(x, dim=_tdims(dim, x.ndim), keepdim=keepdim),
           **LOOSE),
    OpSpec("prod", lambda x, dim, keepdim: tt.prod(x, dim, keepdim),
           lambda x, dim, keepdim: np.prod(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           _prod_sample, _torch_prod, **LOOSE),
    OpSpec("argmax", lambda x, dim, keepdim: tt.argmax(x, dim, keepdim),
           lambda x, dim, keepdim: np.argmax(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           _arg_sample, lambda torch, x, dim, keepdim: torch.argmax(x, dim=dim, keepdim=keepdim),
           differentiable=False),
    OpSpec("argmin", lambda x, dim, keepdim: x.argmin(dim, keepdim),
           lambda x, dim, keepdim: np.argmin(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
           _arg_sample, lambda torch, x, dim, keepdim: torch.argmin(x, dim=dim, keepdim=keepdim),
           differentiable=False),
]
