"""Scans along a dim: the cumulative sum and product. Integer and bool inputs accumulate in int64,
as PyTorch's; ``dtype`` converts the input first."""
from __future__ import annotations

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..dtypes import as_dtype, int64
from ._operands import cast
from .dims import normalize_dim
from .elementwise import isfinite, select, where
from .indexing import gather
from .linalg import arange_along
from .rearrange import flip
from .reduction import argmax
from .shape import pad


def _reversed_cumsum(t, dim: int):
    """z_j = Σ_{k≥j} t_k along dim: the cumulative sum taken from the back."""
    return flip(cumsum(flip(t, dim), dim), dim)


class Cumsum(Function):
    """y_k = Σ_{j≤k} x_j along dim."""

    def forward(self, x, dim):
        self.dim = dim
        return self.xp.cumulative_sum(x, axis=dim)

    def backward(self, gy):
        # ∂L/∂x_j = Σ_{k≥j} ∂L/∂y_k: the cumulative sum of gy, taken from the back
        return _reversed_cumsum(gy, self.dim), None

    def jvp(self, tx, _):
        return Cumsum.apply(tx, self.dim)


class Cumprod(Function):
    """y_k = Π_{j≤k} x_j along dim."""

    def forward(self, x, dim):
        self.dim = dim
        y = self.xp.cumulative_prod(x, axis=dim)
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        return _cumprod_grad(x, gy, self.dim, y), None

    def jvp(self, tx, _):
        return _cumprod_tangent(self.primals[0], tx, self.dim, self.result)


def _cumprod_grad(x, g, dim: int, y=None, zeros_left: int = 2):
    """∂L/∂x_j = Σ_{k≥j} g_k Π_{i≤k, i≠j} x_i along dim; y = cumprod(x) (None: a tail, see below).

    Without zeros that is Σ_{k≥j} g_k y_k / x_j. With a first zero at z:
    - j ≥ z: the product leaves out x_z only for j = z, so this is y_{z-1} times the gradient for the
      tail of x (x with everything up to z set to 1: the same recursion), and for j > z times x_z;
    - j < z: the terms k < z as without zeros; the terms k ≥ z hold the factor x_z: 0, but with the
      derivative gradient_z / x_j in x_z, so they stay in as x_z · gradient_z / x_j.
    Written so, the second derivatives are exact too: past a slice's second zero every term holds two
    zero factors, and one level down only values are needed, which is where the recursion stops.
    The values are PyTorch's, also for inf or NaN (0 past the first zero, whatever the upstream).
    """
    if x.shape[dim] == 1:
        return g
    zero = x == 0
    tail = y is None
    if not bool(zero.any()):
        return _reversed_cumsum(g * (cumprod(x, dim) if tail else y), dim) / x
    seen = cumsum(zero, dim)  # the zeros at or before each position
    before = seen == 0
    x_before = where(before, x, 1.0)
    if tail:  # PyTorch's products for the tail: g zeroed past the zero, times the product up to it
        w = select(before, g) * cumprod(x_before, dim)
    else:
        w = select(before, g * y)
    grad = _reversed_cumsum(w, dim) / x_before
    if not zeros_left:
        return select(before, grad)
    first = zero & (seen == 1)
    x_tail = where(before | first, 1.0, x)
    z = argmax(cast(first, int64), dim, keepdim=True)  # where the first zero is (0 in a slice without one)
    y_z = gather(cumprod(x, dim) if tail else y, dim, where(z == 0, 0, z - 1))
    rest = where(z == 0, 1.0, y_z) * _cumprod_grad(x_tail, g, dim, None, zeros_left - 1)
    finite = select(isfinite(rest), rest)
    x_z = select(first, x).sum(dim=dim, keepdim=True)  # 0, as a function of that zero
    grad_z = select(first, finite).sum(dim=dim, keepdim=True)
    grad = grad + x_z * grad_z / x_before
    return where(before, grad, where(first, rest, x_z * finite))


def _cumprod_tangent(x, t, dim: int, y):
    """dy_k = Σ_{j≤k} t_j Π_{i≤k, i≠j} x_i along dim, for y = cumprod(x).

    Without zeros that is y_k Σ_{j≤k} t_j / x_j. With zeros, the products are built from their parts:
    Π_{i<j} x_i (y_{j-1}, the product before j) times Π_{j<i≤k} x_i (the cumulative product of x
    with every entry up to j set to 1, one row per j): an (n, n) matrix per slice, exact at zeros.
    """
    if not bool((x == 0).any()):
        return y * cumsum(t / x, dim)
    x, t, y = (movedim_last(a, dim) for a in (x, t, y))  # (..., n)
    n = x.shape[-1]
    j = arange_along(x, (n, 1), 0)  # (n, 1): the row
    i = arange_along(x, (1, n), 1)  # (1, n): the column
    after = cumprod(where(i > j, x.unsqueeze(-2), 1.0), -1)  # (..., n_j, n_k): Π_{j<i≤k} x_i
    before = pad(y[..., :-1], (1, 0), value=1.0)  # (..., n): Π_{i<j} x_i
    dy = ((t * before).unsqueeze(-2) @ where(i >= j, after, 0.0)).squeeze(-2)  # (..., n_k)
    return movedim_last(dy, dim, back=True)


def movedim_last(a, dim: int, back: bool = False):
    """a with dim moved to the end (back=True: from the end to dim)."""
    order = list(range(a.ndim))
    if back:
        order.insert(dim, order.pop())
    else:
        order.append(order.pop(dim))
    return a.permute(*order)


def _scan(fn, x, dim, dtype, op: str):
    d = normalize_dim(dim, x.ndim, op, x.shape)
    if dtype is not None:
        dtype = as_dtype(dtype)
        if not dtype.is_floating_point and x.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{op}: a result of dtype {dtype.name} cannot carry the gradient the input "
                               f"requires (as PyTorch); detach the input, or keep a floating-point dtype")
        if dtype.name == "bool":  # no scan of bools (as PyTorch), except where nothing is scanned
            if x.ndim and x.array.size:
                raise RuntimeError(f"{op}: dtype bool is not supported (as in PyTorch); accumulate in int64")
            return cast(x, dtype)
        x = cast(x, dtype)
    elif not x.dtype.is_floating_point:
        x = cast(x, int64)  # integer and bool inputs accumulate in int64, as PyTorch
    if x.ndim == 0:
        return fn.apply(x.reshape(1), 0).reshape(())
    return fn.apply(x, d)


def cumsum(input, dim: int, *, dtype=None):
    """Cumulative sum along dim: y_k = x_0 + … + x_k."""
    return _scan(Cumsum, input, dim, dtype, "cumsum")


def cumprod(input, dim: int, *, dtype=None):
    """Cumulative product along dim: y_k = x_0 · … · x_k (the gradient is exact where x has zeros)."""
    return _scan(Cumprod, input, dim, dtype, "cumprod")
