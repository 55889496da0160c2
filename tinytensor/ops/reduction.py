"""Reductions over ``dim`` (an int, a tuple, or None for all) with ``keepdim``."""
from __future__ import annotations

import builtins
import math

from ..autograd.function import Function
from ._operands import floating, like
from .broadcast import broadcast_to
from .dims import normalize_dims
from .elementwise import exp, select, where


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, x, dims, keepdim):
        self.in_shape, self.dims = x.shape, dims
        return self.xp.sum(x, axis=dims, keepdims=keepdim)

    def backward(self, gy):
        gy = gy.reshape(_kept_shape(self.in_shape, self.dims))
        return broadcast_to(gy, self.in_shape)  # every input element gets gy


class Amax(Function):
    """max over dims; tied maxima split the gradient equally (PyTorch's amax convention)."""

    reduce = "max"

    def forward(self, x, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim
        y = getattr(self.xp, self.reduce)(x, axis=dims, keepdims=keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        y = y.reshape(_kept_shape(x.shape, self.dims))
        hit = x == y.detach()
        count = hit.sum(dim=self.dims, keepdim=True).to(dtype=gy.dtype)
        return select(hit, gy.reshape(y.shape) / count)


class Amin(Amax):
    reduce = "min"


class MaxAlong(Function):
    """values of max/min along one dim, given the chosen indices; the gradient goes to that index."""

    def forward(self, x, indices, dim, keepdim):
        self.dim, self.keepdim, self.shape = dim, keepdim, x.shape
        idx = self.xp.expand_dims(indices, axis=dim) if not keepdim else indices
        self.save_for_backward(idx)
        y = self.xp.take_along_axis(x, idx, axis=dim)
        return y if keepdim else self.xp.squeeze(y, axis=dim)

    def backward(self, gy):
        (idx,) = self.saved_tensors
        n = self.shape[self.dim]
        along = tuple(n if i == self.dim else 1 for i in range(len(self.shape)))
        pos = like(gy, gy.backend.xp.reshape(gy.backend.arange(n), along))
        if not self.keepdim:
            gy = gy.unsqueeze(self.dim)
        return select(pos == idx, gy), None, None, None  # the gradient goes to the chosen index


class Argmax(Function):
    differentiable = False
    reduce = "argmax"

    def forward(self, x, dim, keepdim):
        xp = self.xp
        if dim is None:
            out = getattr(xp, self.reduce)(xp.reshape(x, (-1,)), axis=0)
            return xp.reshape(out, (1,) * x.ndim) if keepdim else out
        return getattr(xp, self.reduce)(x, axis=dim, keepdims=keepdim)


class Argmin(Argmax):
    reduce = "argmin"


class LogSumExp(Function):
    def forward(self, x, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim
        if any(x.shape[d] == 0 for d in dims):  # log Σ over nothing = log 0
            shape = _kept_shape(x.shape, dims) if keepdim else tuple(
                n for i, n in enumerate(x.shape) if i not in dims)
            y = self.backend.full(shape, -math.inf, self.backend.dtype_of(x))
        else:
            y = self.backend.logsumexp(x, dims, keepdims=keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        y = y.reshape(_kept_shape(x.shape, self.dims))
        return gy.reshape(y.shape) * exp(x - y)  # d/dx log Σ e^x = softmax(x)


def sum(x, dim=None, keepdim: bool = False):
    """Σ over dim."""
    dims = normalize_dims(dim, x.ndim, "sum", x.shape)
    if not x.dtype.is_floating_point and x.dtype.name != "int64":
        from ..dtypes import int64
        x = x.to(dtype=int64)  # integer sums accumulate in int64, as PyTorch
    return Sum.apply(x, dims, keepdim)


def mean(x, dim=None, keepdim: bool = False):
    """Arithmetic mean over dim."""
    x = floating(x)
    dims = normalize_dims(dim, x.ndim, "mean", x.shape)
    n = math.prod(x.shape[d] for d in dims)
    return Sum.apply(x, dims, keepdim) * (1.0 / n) if n else Sum.apply(x, dims, keepdim) * float("nan")


def var(x, dim=None, correction: int = 1, keepdim: bool = False):
    """Σ (x - mean)² / (n - correction)."""
    x = floating(x)
    dims = normalize_dims(dim, x.ndim, "var", x.shape)
    n = math.prod(x.shape[d] for d in dims)
    d = x - mean(x, dims, keepdim=True)
    denom = builtins.max(n - correction, 0)
    s = sum(d * d, dims, keepdim)
    return s / float(denom)  # no degrees of freedom: inf, or nan for 0/0 (as PyTorch)


def std(x, dim=None, correction: int = 1, keepdim: bool = False):
    """√var"""
    return SqrtOfVar.apply(var(x, dim, correction=correction, keepdim=keepdim))


class SqrtOfVar(Function):
    """√v for std: where v = 0 the gradient is 0 (as PyTorch), not 1/0 · 0 = nan."""

    def forward(self, v):
        y = self.xp.sqrt(v)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        zero = y == 0
        return where(zero, 0.0, gy / (2.0 * where(zero, 1.0, y)))  # d/dv √v = 1/(2√v)


def amax(x, dim=None, keepdim: bool = False):
    """Maximum over dim; ties split the gradient equally."""
    dims = normalize_dims(dim, x.ndim, "amax", x.shape)
    _nonempty(x, dims, dim, "amax")
    return Amax.apply(x, dims, keepdim)


def amin(x, dim=None, keepdim: bool = False):
    """Minimum over dim; ties split the gradient equally."""
    dims = normalize_dims(dim, x.ndim, "amin", x.shape)
    _nonempty(x, dims, dim, "amin")
    return Amin.apply(x, dims, keepdim)


def max(x, dim=None, keepdim: bool = False):
    """Without dim: the maximum (as amax). With dim: (values, indices); the gradient goes to indices."""
    if dim is None:
        return amax(x)
    _nonempty(x, normalize_dims(dim, x.ndim, "max", x.shape), dim, "max")
    if not normalize_dims(dim, x.ndim, "max", x.shape):  # 0-d: its own maximum, at index 0
        values, idx = max(x.reshape(1), 0)
        return values, idx
    (d,) = normalize_dims(dim, x.ndim, "max", x.shape)
    idx = argmax(x, d, keepdim=keepdim)
    return MaxAlong.apply(x, idx.data, d, keepdim), idx


def min(x, dim=None, keepdim: bool = False):
    """Without dim: the minimum (as amin). With dim: (values, indices)."""
    if dim is None:
        return amin(x)
    _nonempty(x, normalize_dims(dim, x.ndim, "min", x.shape), dim, "min")
    if not normalize_dims(dim, x.ndim, "min", x.shape):  # 0-d: its own minimum, at index 0
        values, idx = min(x.reshape(1), 0)
        return values, idx
    (d,) = normalize_dims(dim, x.ndim, "min", x.shape)
    idx = argmin(x, d, keepdim=keepdim)
    return MaxAlong.apply(x, idx.data, d, keepdim), idx


def argmax(x, dim=None, keepdim: bool = False):
    """Index of the first maximum (over the flattened tensor when dim is None)."""
    dims = () if dim is None else normalize_dims(dim, x.ndim, "argmax", x.shape)
    _nonempty(x, dims, dim, "argmax")
    d = dims[0] if dims else None  # None: over the flattened tensor (also for a 0-d tensor)
    return Argmax.apply(x, d, keepdim)


def argmin(x, dim=None, keepdim: bool = False):
    """Index of the first minimum."""
    dims = () if dim is None else normalize_dims(dim, x.ndim, "argmin", x.shape)
    _nonempty(x, dims, dim, "argmin")
    d = dims[0] if dims else None
    return Argmin.apply(x, d, keepdim)


def logsumexp(x, dim=None, keepdim: bool = False):
    """log Σ e^x, computed stably (shifted by the max)."""
    x = floating(x)
    return LogSumExp.apply(x, normalize_dims(dim, x.ndim, "logsumexp", x.shape), keepdim)


def prod(x, dim=None, keepdim: bool = False):
    """Π over dim; the gradient is exact also where inputs are zero."""
    return Prod.apply(x, normalize_dims(dim, x.ndim, "prod", x.shape), keepdim)


class Prod(Function):
    def forward(self, x, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim
        y = self.xp.prod(x, axis=dims, keepdims=keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        # d/dx_i Π x = Π_{j≠i} x_j: y/x_i if no zero; with one zero only that position gets the
        # product of the others; with two or more zeros every gradient is 0. The zero values are
        # written as expressions of the zero inputs (z = Σ zero entries = 0) so that their
        # derivatives, hence second derivatives of prod, are exact too.
        x, y = self.saved_tensors
        y = y.reshape(_kept_shape(x.shape, self.dims))
        zero = x == 0
        nz = zero.to(dtype=x.dtype).sum(dim=self.dims, keepdim=True)
        safe_x = where(zero, 1.0, x)
        others = safe_x.prod(dim=self.dims, keepdim=True)  # Π of the nonzero entries
        z = where(zero, x, 0.0).sum(dim=self.dims, keepdim=True)
        at_zero = where(nz == 1, others, where(nz == 2, (z - x) * others, 0.0))
        at_nonzero = where(nz == 0, y / safe_x, where(nz == 1, z * others / safe_x, 0.0))
        return gy.reshape(y.shape) * where(zero, at_zero, at_nonzero)


def _nonempty(x, dims: tuple, dim, op: str) -> None:
    """A max/min-like reduction needs an element in every slice it reduces (PyTorch's rule)."""
    if dim is None and x.data.size == 0:
        raise RuntimeError(f"{op}: a tensor of shape {x.shape} has no elements; give the reduction dim")
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(f"{op}: reduction dim {d} of a tensor of shape {x.shape} has size 0")
