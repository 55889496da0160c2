"""Reductions over ``dim`` (an int, a tuple, or None for all) with ``keepdim``."""
from __future__ import annotations

import math
from typing import NamedTuple

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor_core import TensorCore
from ..dtypes import int64
from ._operands import floating, like
from .broadcast import broadcast_to
from .dims import normalize_dim, normalize_dims
from .elementwise import Nonzero, exp, isnan, maximum, minimum, select, where


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, x, dims, keepdim):
        self.in_shape, self.dims = x.shape, dims
        return self.xp.sum(x, axis=dims, keepdims=keepdim)

    def backward(self, gy):
        gy = gy.reshape(_kept_shape(self.in_shape, self.dims))
        return broadcast_to(gy, self.in_shape)  # every input element gets gy

    def jvp(self, tx, _dims, _keepdim):
        return Sum.apply(tx, *self.primals[1:])


class Amax(Function):
    """max over dims; tied maxima split the gradient equally (PyTorch's amax convention)."""

    reduce, reduce_bool = "max", "any"  # the Array API has no max of bools: any (all for min)

    def forward(self, x, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim
        reduce = self.reduce_bool if self.backend.dtype_of(x).name == "bool" else self.reduce
        y = getattr(self.xp, reduce)(x, axis=dims, keepdims=keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        # PyTorch's formula, a multiply: gy / count · (x == y). Where y is NaN no x equals it, so
        # the gradient is NaN (gy/0 · 0), as PyTorch's; so is an inf gy at a non-maximum (inf · 0).
        x, y = self.saved_tensors
        y = y.reshape(_kept_shape(x.shape, self.dims)).detach()
        hit = (x.detach() == y).to(dtype=gy.dtype)
        count = hit.sum(dim=self.dims, keepdim=True)
        return gy.reshape(y.shape) / count * hit

    def jvp(self, tx, _dims, _keepdim):
        x, y = self.primals[0].detach(), self.result.detach()  # tied maxima share: the mean of their tangents
        hit = (x == y.reshape(_kept_shape(x.shape, self.dims))).to(dtype=tx.dtype)
        t = (tx * hit).sum(dim=self.dims, keepdim=True) / hit.sum(dim=self.dims, keepdim=True)
        return t.reshape(self.result.shape)


class Amin(Amax):
    reduce, reduce_bool = "min", "all"


class MaxAll(Amax):
    """max(x) without a dim: the gradient goes to the maxima, split equally; a NaN maximum is the
    NaN entries' (PyTorch's evenly_distribute_backward, which selects)."""

    def backward(self, gy):
        x, y = self.saved_tensors
        x, y = x.detach(), y.reshape(_kept_shape(x.shape, self.dims)).detach()
        hit = (x == y) | (isnan(x) & isnan(y))
        count = hit.to(dtype=gy.dtype).sum(dim=self.dims, keepdim=True)
        return select(hit, gy.reshape(y.shape) / count)

    def jvp(self, tx, _dims, _keepdim):
        x = self.primals[0].detach()
        y = self.result.detach().reshape(_kept_shape(x.shape, self.dims))
        hit = (x == y) | (isnan(x) & isnan(y))
        count = hit.to(dtype=tx.dtype).sum(dim=self.dims, keepdim=True)
        t = select(hit, tx).sum(dim=self.dims, keepdim=True) / count
        return t.reshape(self.result.shape)


class MinAll(MaxAll):
    reduce, reduce_bool = "min", "all"


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

    def jvp(self, tx, *_):
        return MaxAlong.apply(tx, *self.primals[1:])  # the tangent at the chosen index


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

    def jvp(self, tx, _dims, _keepdim):
        x = self.primals[0]  # d log Σ e^x = Σ softmax(x) dx
        y = self.result.reshape(_kept_shape(x.shape, self.dims))
        return (tx * exp(x - y)).sum(dim=self.dims, keepdim=self.keepdim)


def sum(x, dim=None, keepdim: bool = False):
    """Σ over dim."""
    dims = normalize_dims(dim, x.ndim, "sum", x.shape)
    if not x.dtype.is_floating_point and x.dtype.name != "int64":
        x = x.to(dtype=int64)  # integer sums accumulate in int64, as PyTorch
    return Sum.apply(x, dims, keepdim)


class Mean(Function):
    """Σ x / n over dims (NaN over no element); every input element gets gy / n (PyTorch's formulas)."""

    def forward(self, x, dims, keepdim):
        self.in_shape, self.dims = x.shape, dims
        self.n = n = math.prod(x.shape[d] for d in dims)
        s = self.xp.sum(x, axis=dims, keepdims=keepdim)
        return s / n if n else s * math.nan

    def backward(self, gy):
        gy = gy.reshape(_kept_shape(self.in_shape, self.dims))
        return broadcast_to(gy / self.n if self.n else gy * math.nan, self.in_shape)

    def jvp(self, tx, _dims, _keepdim):
        return Mean.apply(tx, *self.primals[1:])


def mean(x, dim=None, keepdim: bool = False):
    """Arithmetic mean over dim."""
    x = floating(x)
    return Mean.apply(x, normalize_dims(dim, x.ndim, "mean", x.shape), keepdim)


class Var(Function):
    """Σ (x - mean)² / (n - correction), fused: d/dx = 2 (x - mean) / (n - correction), times g.

    Fused (not composed of mean, square and sum) so that an inf upstream gradient gives ±inf as
    PyTorch's does, not inf - inf = NaN in the mean's branch. Over every element (``full``) with no
    degree of freedom left, PyTorch's gradient is NaN where x = mean and inf elsewhere; over
    listed dims it is 2/(n - correction) as it comes (inf at n = correction, negative below).
    """

    def forward(self, x, dims, correction, keepdim, full):
        self.dims, self.correction, self.full = dims, correction, full
        xp = self.xp
        self.n = n = math.prod(x.shape[d] for d in dims)
        d = x - xp.sum(x, axis=dims, keepdims=True) / n if n else x
        s = xp.sum(d * d, axis=dims, keepdims=keepdim)
        self.save_for_backward(x)
        if n - correction > 0:
            return s / float(n - correction)
        # no degree of freedom: s/0, inf where s > 0 and NaN at 0 (or NaN), as PyTorch (s ≥ 0)
        return xp.where(s > 0, xp.full_like(s, math.inf), xp.full_like(s, math.nan))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return self._grad(x, gy)

    def _grad(self, x, gy):
        """The gradient for x of a gradient gy of var."""
        n, dof = self.n, self.n - self.correction
        if self.unobserved() and not (self.full and dof <= 0):  # the same formula on the arrays
            xp, a = self.xp, x.array
            g = xp.reshape(gy.array, _kept_shape(x.shape, self.dims))
            centred = a - xp.sum(a, axis=self.dims, keepdims=True) * (1.0 / n) if n else a
            return gy._wrap(g * (2.0 / dof if dof else math.inf) * centred)
        gy = gy.reshape(_kept_shape(x.shape, self.dims))
        centred = x - Sum.apply(x, self.dims, True) * (1.0 / n) if n else x
        if self.full and dof <= 0:
            return gy * where(centred == 0, math.nan, math.inf).to(dtype=gy.dtype)
        return gy * (2.0 / dof if dof else math.inf) * centred

    def jvp(self, tx, *_):
        x = self.primals[0]  # d var = 2/(n - correction) Σ (x - mean) dx
        n, dof = self.n, self.n - self.correction
        centred = x - Sum.apply(x, self.dims, True) * (1.0 / n) if n else x
        keepdim = self.primals[3]
        return (centred * tx).sum(dim=self.dims, keepdim=keepdim) * (2.0 / dof if dof > 0 else math.inf)


class Std(Var):
    """√var in one node: d√v/dv = 1/(2√v), and 0 where √v = 0 (as PyTorch), not 1/0 · 0 = NaN; then
    var's gradient."""

    def forward(self, x, dims, correction, keepdim, full):
        y = self.xp.sqrt(super().forward(x, dims, correction, keepdim, full))
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        return self._grad(x, self._sqrt_grad(y, gy))

    def jvp(self, tx, *rest):
        return self._sqrt_grad(self.result, super().jvp(tx, *rest))

    def _sqrt_grad(self, y, g):
        """g / (2y), 0 where y = 0."""
        if self.unobserved():  # the same formula on the arrays (std's gradients are mostly small arrays)
            w, a = self.backend.where, y.array
            zero = a == 0
            return g._wrap(w(zero, 0.0, g.array / (2.0 * w(zero, 1.0, a))))
        zero = y == 0
        return where(zero, 0.0, g / (2.0 * where(zero, 1.0, y)))


def var(x, dim=None, correction: int = 1, keepdim: bool = False, *, unbiased: bool | None = None):
    """Σ (x - mean)² / (n - correction); PyTorch's older ``unbiased=False`` is correction 0."""
    x, dims, full = _var_args(x, dim, "var")
    return Var.apply(x, dims, _correction(correction, unbiased), keepdim, full)


def std(x, dim=None, correction: int = 1, keepdim: bool = False, *, unbiased: bool | None = None):
    """√var"""
    x, dims, full = _var_args(x, dim, "std")
    return Std.apply(x, dims, _correction(correction, unbiased), keepdim, full)


def _correction(correction, unbiased) -> int:
    if unbiased is None:
        return int(correction)
    if type(unbiased) is not bool:
        raise TypeError(f"var/std: unbiased must be True or False, got {unbiased!r}")
    return 1 if unbiased else 0


def norm(x, p=2, dim=None, keepdim: bool = False):
    """The vector p-norm over dim (all elements by default): (Σ |x|^p)^(1/p); p = inf is max |x|, p = 0
    the count of nonzeros, p = "fro" the 2-norm. Where the norm is 0 its gradient is 0, as PyTorch's
    (not 0/0); ``torch.norm`` / ``Tensor.norm``."""
    if p == "fro":
        p = 2
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        raise ValueError(f"norm: p must be a number, inf or 'fro', got {p!r}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"norm: expected a floating-point tensor, got {x.dtype} of shape {tuple(x.shape)} "
                        f"(as PyTorch); convert it first, e.g. x.float()")
    a = x.abs()
    if p == math.inf:
        return amax(a, dim, keepdim)
    if p == -math.inf:
        return amin(a, dim, keepdim)
    if p == 0:  # a count: its gradient is 0 (a result that requires grad, as PyTorch's)
        return sum(Nonzero.apply(x), dim, keepdim)
    if p == 1:
        return sum(a, dim, keepdim)
    if p == 2:
        s = sum(a * a, dim, keepdim)  # Σ |x|^p
    else:  # an element at 0 gets gradient 0 (PyTorch's mask), not |x|^(p-1) = inf for p < 1
        at_zero = a == 0
        s = sum(where(at_zero, 0.0, where(at_zero, 1.0, a) ** p), dim, keepdim)
    zero = s == 0  # where the gradient of s^(1/p) would be inf·0
    safe = where(zero, 1.0, s)
    return where(zero, 0.0, safe.sqrt() if p == 2 else safe ** (1.0 / p))


def _var_args(x, dim, op: str):
    x = floating(x)
    dims = normalize_dims(dim, x.ndim, op, x.shape)
    full = x.ndim == 0 or dim is None or isinstance(dim, (tuple, list)) and not dim  # every element
    return x, dims, full


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


class MaxResult(NamedTuple):
    """What max and min return along a dim (PyTorch's torch.return_types.max): ``values, indices``."""

    values: object
    indices: object


def max(x, dim=None, keepdim: bool = False):
    """Without dim: the maximum (ties split the gradient). With dim: (values, indices), a named tuple;
    the gradient goes to indices. With a tensor for dim, PyTorch's max(a, b): the elementwise maximum."""
    if isinstance(dim, TensorCore):
        return maximum(x, dim)
    return _max_or_min(x, dim, keepdim, "max")


def min(x, dim=None, keepdim: bool = False):
    """Without dim: the minimum. With dim: (values, indices). With a tensor, the elementwise minimum."""
    if isinstance(dim, TensorCore):
        return minimum(x, dim)
    return _max_or_min(x, dim, keepdim, "min")


def _max_or_min(x, dim, keepdim, op):
    if dim is None:
        _nonempty(x, (), None, "a" + op)  # amax/amin: what max()/min() without a dim computes
        return (MaxAll if op == "max" else MinAll).apply(x, tuple(range(x.ndim)), False)
    d = normalize_dim(dim, x.ndim, op, x.shape)  # one int, as PyTorch's
    if x.ndim == 0:  # its own maximum, at index 0
        values, idx = _max_or_min(x.reshape(1), 0, False, op)
        return MaxResult(values.reshape(()), idx.reshape(()))
    _nonempty(x, (d,), dim, op)
    ranked = x.to(dtype=int64) if x.dtype.name == "bool" else x  # the Array API ranks no bools
    idx = (argmax if op == "max" else argmin)(ranked, d, keepdim=keepdim)
    return MaxResult(MaxAlong.apply(x, idx.array, d, keepdim), idx)


def argmax(x, dim=None, keepdim: bool = False):
    """Index of the first maximum (over the flattened tensor when dim is None)."""
    return Argmax.apply(x, _arg_dim(x, dim, "argmax"), keepdim)


def argmin(x, dim=None, keepdim: bool = False):
    """Index of the first minimum."""
    return Argmin.apply(x, _arg_dim(x, dim, "argmin"), keepdim)


def _arg_dim(x, dim, op):
    """argmax's one int dim, or None: over the flattened tensor (also for a 0-d tensor)."""
    d = None if dim is None else normalize_dim(dim, x.ndim, op, x.shape)
    if x.ndim == 0:
        return None
    _nonempty(x, () if d is None else (d,), dim, op)
    return d


def logsumexp(x, dim=None, keepdim: bool = False):
    """log Σ e^x, computed stably (shifted by the max)."""
    x = floating(x)
    dims = normalize_dims(dim, x.ndim, "logsumexp", x.shape)
    if isinstance(dim, (tuple, list)) and not dim and not keepdim and x.ndim and x.array.size:
        # PyTorch reads dim=() as every dim but then fails to write the 0-d result; refused as there
        raise RuntimeError(
            f"logsumexp: dim=() with keepdim=False is refused for a tensor of shape {x.shape} (as "
            f"PyTorch does); pass dim=None or the dims to reduce"
        )
    return LogSumExp.apply(x, dims, keepdim)


def prod(x, dim=None, keepdim: bool = False):
    """Π over dim; the gradient is exact also where inputs are zero."""
    if not x.dtype.is_floating_point and x.dtype.name != "int64":
        x = x.to(dtype=int64)  # integer and bool products in int64, as PyTorch (and as sum)
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
        gx = gy.reshape(y.shape) * _prod_partials(x, y, self.dims)  # ∂L/∂x_i = gy ∂y/∂x_i
        if len(self.dims) == x.ndim and x.ndim and not is_grad_enabled():
            # a full product with two zeros: 0 selected, not gy · 0, so an inf or NaN gy gives 0 there, as
            # PyTorch's (with create_graph those zeros must keep their derivatives: PyTorch's too)
            gx = where((x == 0).sum() >= 2, 0.0, gx)
        return gx

    def jvp(self, tx, _dims, _keepdim):
        x, y = self.primals[0], self.result.reshape(_kept_shape(self.primals[0].shape, self.dims))
        return (tx * _prod_partials(x, y, self.dims)).sum(dim=self.dims, keepdim=self.keepdim)


def _prod_partials(x, y, dims: tuple):
    """∂y/∂x_i for y = Π x over dims (y with the kept dims), PyTorch's way: y / x_i when x holds no zero
    at all; else the product of the other entries of x_i's slice, as the exclusive products from the
    left times those from the right (no division, so a zero next to an inf gives 0, not inf / inf), whose
    cumprods' exact gradients make the second derivatives exact too."""
    from .rearrange import flip
    from .scan import cumprod
    from .shape import cat, permute, reshape

    if x.ndim == 0 or not dims:
        return like(x, x.backend.full(x.shape, 1, x.dtype))
    if not bool(x.backend.xp.any(x.array == 0)):  # (PyTorch reads the same count to choose)
        return y / x
    kept = [d for d in range(x.ndim) if d not in dims]
    order = kept + list(dims)
    lead = tuple(x.shape[d] for d in kept)
    n = math.prod(x.shape[d] for d in dims)
    if n == 0:
        return x
    rows = reshape(permute(x, order), lead + (n,))
    one = like(x, x.backend.full(lead + (1,), 1, x.dtype))
    left = cat([one, cumprod(rows[..., :-1], -1)], -1)  # x_0 · … · x_{i-1}
    right = flip(cat([one, cumprod(flip(rows, -1)[..., :-1], -1)], -1), -1)  # x_{i+1} · … · x_{n-1}
    back = [0] * x.ndim
    for i, d in enumerate(order):
        back[d] = i
    return permute(reshape(left * right, tuple(x.shape[d] for d in order)), back)


def _nonempty(x, dims: tuple, dim, op: str) -> None:
    """A max/min-like reduction needs an element in every slice it reduces (PyTorch's rule)."""
    if (dim is None or isinstance(dim, (tuple, list)) and not dim) and x.array.size == 0:
        raise RuntimeError(f"{op}: a tensor of shape {x.shape} has no elements; give the reduction dim")
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(f"{op}: reduction dim {d} of a tensor of shape {x.shape} has size 0")


# ---- PyTorch's other reductions, composed of the ones above ------------------------------------

class AminmaxResult(NamedTuple):
    """What aminmax returns (PyTorch's torch.return_types.aminmax): ``min, max``."""

    min: object
    max: object


def aminmax(x, *, dim=None, keepdim: bool = False):
    """(amin, amax) over dim (one int, or every dim); ``torch.aminmax``. Ties split each gradient."""
    if dim is not None:
        dim = normalize_dim(dim, x.ndim, "aminmax", x.shape)  # one int, as PyTorch's
    if (x.array.size == 0) if dim is None else (x.ndim and x.shape[dim] == 0):
        raise RuntimeError(f"aminmax: cannot compute aminmax over an empty dimension (shape "
                           f"{tuple(x.shape)}, dim {dim}), as the operation has no identity")
    return AminmaxResult(amin(x, dim, keepdim), amax(x, dim, keepdim))


def var_mean(x, dim=None, correction: int = 1, keepdim: bool = False, *, unbiased: bool | None = None):
    """(var, mean) over dim, one call; ``torch.var_mean``."""
    return var(x, dim, correction, keepdim, unbiased=unbiased), mean(x, dim, keepdim)


def std_mean(x, dim=None, correction: int = 1, keepdim: bool = False, *, unbiased: bool | None = None):
    """(std, mean) over dim, one call; ``torch.std_mean``."""
    return std(x, dim, correction, keepdim, unbiased=unbiased), mean(x, dim, keepdim)


def nansum(x, dim=None, keepdim: bool = False):
    """Σ over dim with NaNs counted as 0 (their gradient is 0); ``torch.nansum``."""
    return sum(where(isnan(x), 0, x) if x.dtype.is_floating_point else x, dim, keepdim)


def nanmean(x, dim=None, keepdim: bool = False):
    """The mean over dim of the values that are not NaN; ``torch.nanmean`` (floats only, as PyTorch)."""
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"nanmean: expected a floating-point input, got {x.dtype} of shape "
                           f"{tuple(x.shape)}; convert it with .float()")
    count = sum(~isnan(x), dim, keepdim)
    return nansum(x, dim, keepdim) / count.to(dtype=x.dtype)


def count_nonzero(x, dim=None):
    """How many elements over dim (an int or a tuple) are not zero, as int64; ``torch.count_nonzero``."""
    return sum(x != 0, dim)
