"""Elementwise ops. Each backward is the derivative written with Tensor ops (see the comments)."""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..autograd.dual import add as add_tangents
from ..autograd.function import Function
from ..autograd.tensor_core import TensorCore
from ..dtypes import bool_, int64, scalar_dtype
from ._operands import as_element, binary, cast, floating, like, scalar
from .broadcast import broadcast_shapes, broadcast_to, sum_to

# ---- binary arithmetic ----------------------------------------------------------------------

class _Binary(Function):
    """Reduces broadcast gradients with sum_to, to the input shapes apply noted (in ``_in_meta``)."""

    def reduce(self, ga, gb):
        """ga and gb summed down to the shapes of a and b; None for an input that needs no gradient."""
        a, b = self._in_meta  # (shape, dtype, device) of an input that needs a gradient, else None
        if a is not None and b is not None and a[0] == b[0]:  # nothing was broadcast
            return ga, gb
        reduce = self._sum_to_on_arrays if self.unobserved() else sum_to
        return (
            reduce(ga, a[0]) if ga is not None and a is not None else None,
            reduce(gb, b[0]) if gb is not None and b is not None else None,
        )

    def _sum_to_on_arrays(self, g, shape):
        return g if g.array.shape == shape else g._wrap(self.backend.sum_to(g.array, shape))

    def spread(self, t):
        """A tangent broadcast to the output's shape (one operand's tangent may be smaller)."""
        if t is None or tuple(t.shape) == tuple(self.result.shape):
            return t
        return broadcast_to(t, self.result.shape)


class Add(_Binary):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return self.reduce(gy, gy)

    def jvp(self, ta, tb):
        return self.spread(add_tangents(ta, tb))


class Sub(_Binary):
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return self.reduce(gy, -gy if self.needs_input_grad[1] else None)

    def jvp(self, ta, tb):
        return self.spread(add_tangents(ta, None if tb is None else -tb))


class Mul(_Binary):
    def forward(self, a, b):
        needs = self.needs_input_grad  # keep only what the needed gradients use
        self.save_for_backward(a if needs[1] else None, b if needs[0] else None)
        return a * b

    def backward(self, gy):
        a, b = self.saved_tensors
        if self.unobserved():  # the same products on the arrays: one node's cost instead of three ops'
            g, av, bv = gy.array, getattr(a, "array", a), getattr(b, "array", b)
            return self.reduce(gy._wrap(g * bv) if self.needs_input_grad[0] else None,
                               gy._wrap(g * av) if self.needs_input_grad[1] else None)
        return self.reduce(
            gy * b if self.needs_input_grad[0] else None,
            gy * a if self.needs_input_grad[1] else None,
        )

    def jvp(self, ta, tb):
        a, b = self.primals  # d(ab) = da b + a db
        return self.spread(add_tangents(None if ta is None else ta * b, None if tb is None else a * tb))


class Div(_Binary):
    def forward(self, a, b):
        needs = self.needs_input_grad
        self.save_for_backward(a if needs[1] else None, b if needs[0] or needs[1] else None)
        return a / b

    def backward(self, gy):
        a, b = self.saved_tensors
        if self.unobserved():  # the same formulas on the arrays: one node's cost instead of up to six ops'
            g, av, bv = gy.array, getattr(a, "array", a), getattr(b, "array", b)
            ga = gy._wrap(g / bv) if self.needs_input_grad[0] else None
            gb = gy._wrap(-g * av / (bv * bv)) if self.needs_input_grad[1] else None
            return self.reduce(ga, gb)
        ga = gy / b if self.needs_input_grad[0] else None
        gb = -gy * a / (b * b) if self.needs_input_grad[1] else None  # d/db a/b = -a/b²
        return self.reduce(ga, gb)

    def jvp(self, ta, tb):
        _, b = self.primals  # d(a/b) = da/b - (a/b) db/b
        return self.spread(add_tangents(None if ta is None else ta / b,
                                        None if tb is None else -tb * self.result / b))


class Pow(_Binary):
    def forward(self, a, b):
        y = _int_pow(self.xp, a, b) if self._int_exponent(b) else self.backend.power(a, b)
        self.save_for_backward(a, b, y)
        return y

    def _int_exponent(self, b) -> bool:
        """b is an integer array (not bool, not float): a ** b then follows integer rules."""
        if isinstance(b, (bool, int, float)):
            return False
        dt = self.backend.dtype_of(b)
        return not dt.is_floating_point and dt is not bool_

    def backward(self, gy):
        a, b, y = self.saved_tensors
        ga = gb = None
        if self.needs_input_grad[0]:  # d/da a^b = b a^(b-1), and 0 where b = 0 (a^0 = 1 everywhere)
            if isinstance(b, TensorCore):
                ga = select(b != 0, gy * b * a ** (b - 1))
            else:
                ga = gy * (b * a ** (b - 1)) if b != 0 else like(gy, gy.backend.xp.zeros_like(gy.array))
        if self.needs_input_grad[1]:  # d/db a^b = a^b ln a, and 0 where a = 0 and b >= 0 (as PyTorch)
            if isinstance(a, TensorCore):
                # PyTorch's formula multiplies here: gy · where(a = 0 and b >= 0, 0, y ln a)
                gb = gy * where((a == 0) & (b >= 0), 0.0, y * log(a))
            else:  # a number ** tensor
                gb = gy * (where(b >= 0, 0.0, y * _log(a)) if a == 0 else y * _log(a))
        return self.reduce(ga, gb)

    def jvp(self, ta, tb):
        a, b = self.primals  # d(a^b) = b a^(b-1) da + a^b ln a db, with backward's zeros
        y = self.result
        da = db = None
        if ta is not None:
            if isinstance(b, TensorCore):
                da = select(b != 0, ta * b * a ** (b - 1))
            else:
                da = ta * (b * a ** (b - 1)) if b != 0 else ta * 0.0
        if tb is not None:
            if isinstance(a, TensorCore):
                db = tb * where((a == 0) & (b >= 0), 0.0, y * log(a))
            else:
                db = tb * (where(b >= 0, 0.0, y * _log(a)) if a == 0 else y * _log(a))
        return self.spread(add_tangents(da, db))


def _int_pow(xp, a, b):
    """a ** b for an integer exponent array, as PyTorch: a negative exponent gives 1 / a^|b| truncated
    toward 0, so 1 and -1 give ±1 and every other base (0 too) gives 0; NumPy refuses it."""
    y = a ** xp.abs(b)
    big = xp.abs(a) != 1 if hasattr(a, "dtype") else builtins.abs(a) != 1
    return xp.where((b < 0) & big, xp.zeros_like(y), y)


class Maximum(_Binary):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.maximum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return _select_grads(self, gy, a, b, a < b, a > b)

    def jvp(self, ta, tb):
        a, b = self.primals
        return _select_tangents(self, ta, tb, a > b)


class Minimum(_Binary):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.minimum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return _select_grads(self, gy, a, b, a > b, a < b)

    def jvp(self, ta, tb):
        a, b = self.primals
        return _select_tangents(self, ta, tb, a < b)


def _select_grads(fn, gy, a, b, a_loses, b_loses):
    """maximum/minimum as PyTorch: each side gets gy unless it loses, ties split it equally. A NaN
    neither wins nor loses (every comparison with it is False), so both sides get gy there."""
    g = where(a == b, gy * 0.5, gy)
    ga = select(~a_loses, g) if fn.needs_input_grad[0] else None
    gb = select(~b_loses, g) if fn.needs_input_grad[1] else None
    return fn.reduce(ga, gb)


def _select_tangents(fn, ta, tb, a_wins):
    """The tangent of maximum/minimum: the winner's, the mean of the two at ties (as backward splits)."""
    a, b = fn.primals
    ta = 0.0 if ta is None else ta
    tb = 0.0 if tb is None else tb
    return fn.spread(where(a == b, (ta + tb) * 0.5, where(a_wins, ta, tb)))


def select(keep, g):
    """g where ``keep``, else 0: how a gradient is zeroed. A mask multiplied in instead would turn
    an inf or NaN upstream gradient into NaN where the derivative is 0 (0 · inf = NaN)."""
    return where(keep, g, 0.0)


def _log(a: float) -> float:
    return math.log(a) if a > 0 else -math.inf if a == 0 else math.nan


def _both_bool(a, b) -> bool:
    """After ``binary``, a bool tensor means two bool operands (it promotes a bool with anything
    else). Arithmetic on bools is logic, as in PyTorch; the Array API has no bool arithmetic."""
    t = a if isinstance(a, TensorCore) else b
    return t.array.dtype not in t.backend.float_dtypes and t.dtype is bool_  # the float test is cheap


def _is_float(v) -> bool:
    """A Python float or a floating-point tensor (the common operands; cheap to test)."""
    return type(v) is float or isinstance(v, TensorCore) and v.array.dtype in v.backend.float_dtypes


def _is_bool(v) -> bool:
    """A bool tensor, a Python bool or a NumPy bool."""
    if isinstance(v, TensorCore):
        return v.dtype is bool_
    return isinstance(v, bool) or getattr(getattr(v, "dtype", None), "kind", None) == "b"


def add(a, b):
    """a + b, broadcasting (bool + bool is logical or, as PyTorch)."""
    a, b = binary(a, b, "add")
    if _both_bool(a, b):
        return logical_or(a, b)
    return Add.apply(a, b)


def sub(a, b):
    """a - b, broadcasting; refused for bools, as PyTorch."""
    if not (_is_float(a) and _is_float(b)) and (_is_bool(a) or _is_bool(b)):
        raise TypeError(
            f"sub: subtraction with a bool operand is not supported (got {_kind(a)} - {_kind(b)}); "
            "use logical_xor(a, b) for two masks, or ~mask to invert one"
        )
    a, b = binary(a, b, "sub")
    return Sub.apply(a, b)


def _kind(v) -> str:
    return f"a {v.dtype.name} tensor" if isinstance(v, TensorCore) else type(v).__name__


def mul(a, b):
    """a * b, broadcasting (bool * bool is logical and, as PyTorch)."""
    a, b = binary(a, b, "mul")
    if _both_bool(a, b):
        return logical_and(a, b)
    return Mul.apply(a, b)


def div(a, b):
    """a / b (true division: integer tensors give float32)."""
    a, b = binary(a, b, "div")
    a = floating(a) if isinstance(a, TensorCore) else float(a)
    b = floating(b) if isinstance(b, TensorCore) else float(b)
    if isinstance(a, TensorCore) and isinstance(b, TensorCore) and a.dtype is not b.dtype:
        a, b = binary(a, b, "div")
    return Div.apply(a, b)


def pow(a, b):
    """a ** b (integers: a negative exponent tensor truncates 1 / a^|b|, as PyTorch)."""
    a, b = binary(a, b, "pow")
    if _both_bool(a, b):  # PyTorch: a bool tensor to a bool number's power is logic, to a bool tensor
        # an error
        if not isinstance(a, TensorCore) or isinstance(b, TensorCore):
            raise TypeError(f"pow: a bool base to a bool tensor power is not supported (got {_kind(a)} ** "
                            f"{_kind(b)}, as PyTorch); convert with .int() or .float()")
        return logical_or(a, like(a, a.backend.full((), not b, bool_)))  # x ** True = x, x ** False = True
    if isinstance(a, TensorCore) and not a.dtype.is_floating_point and type(b) is int and b < 0:
        raise ValueError(f"pow: integers to negative integer powers are not allowed ({a.dtype.name} "
                         f"tensor ** {b}, as PyTorch); use a float base, x.float() ** {b}")
    return Pow.apply(a, b)


def maximum(a, b):
    """Elementwise max; at ties each input gets half the gradient (bools: logical or)."""
    a, b = binary(a, b, "maximum")
    if _both_bool(a, b):
        return logical_or(a, b)
    return Maximum.apply(a, b)


def minimum(a, b):
    """Elementwise min; at ties each input gets half the gradient (bools: logical and)."""
    a, b = binary(a, b, "minimum")
    if _both_bool(a, b):
        return logical_and(a, b)
    return Minimum.apply(a, b)


# ---- unary math -----------------------------------------------------------------------------

class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def jvp(self, tx):
        return -tx


class Exp(Function):
    def forward(self, x):
        y = self.backend.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * y  # d/dx e^x = e^x

    def jvp(self, tx):
        return tx * self.result  # d e^x = e^x dx


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / x  # d/dx ln x = 1/x

    def jvp(self, tx):
        return tx / self.primals[0]  # d ln x = dx / x


class Sqrt(Function):
    def forward(self, x):
        y = self.xp.sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy / (2.0 * y)  # d/dx √x = 1/(2√x)

    def jvp(self, tx):
        return tx / (2.0 * self.result)


class Rsqrt(Function):
    def forward(self, x):
        y = 1.0 / self.xp.sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * (-0.5) * y * y * y  # d/dx x^-½ = -½ x^-3/2

    def jvp(self, tx):
        y = self.result
        return tx * (-0.5) * y * y * y


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.sin(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * cos(x)

    def jvp(self, tx):
        return tx * cos(self.primals[0])


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.cos(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return -gy * sin(x)

    def jvp(self, tx):
        return -tx * sin(self.primals[0])


class Tanh(Function):
    def forward(self, x):
        y = self.backend.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return TanhBackward.apply(y, gy)

    def jvp(self, tx):
        return TanhBackward.apply(self.result, tx)  # d tanh = (1 - y²) dx: the same map as backward


class TanhBackward(Function):
    """gx = gy (1 - y²) (d/dx tanh = 1 - tanh²): one op, not three, and its own derivative."""

    def forward(self, y, gy):
        self.save_for_backward(y, gy)
        return gy * (1.0 - y * y)

    def backward(self, gg):
        y, gy = self.saved_tensors
        return gg * gy * y * -2.0, TanhBackward.apply(y, gg)  # ∂/∂y = -2 y gy; linear in gy

    def jvp(self, ty, tgy):
        y, gy = self.primals
        return add_tangents(None if ty is None else ty * gy * y * -2.0,
                            None if tgy is None else TanhBackward.apply(y, tgy))


class Sigmoid(Function):
    def forward(self, x):
        xp = self.xp
        # 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0 never overflows
        e = self.backend.exp(-xp.abs(x))
        y = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return SigmoidBackward.apply(y, gy)

    def jvp(self, tx):
        return SigmoidBackward.apply(self.result, tx)  # d σ = σ(1 - σ) dx


class SigmoidBackward(Function):
    """gx = gy σ (1 - σ) (d/dx σ = σ(1-σ)): one op, not three, and its own derivative."""

    def forward(self, y, gy):
        self.save_for_backward(y, gy)
        return gy * y * (1.0 - y)

    def backward(self, gg):
        y, gy = self.saved_tensors
        return gg * gy * (1.0 - 2.0 * y), SigmoidBackward.apply(y, gg)  # ∂/∂y = gy (1 - 2σ)

    def jvp(self, ty, tgy):
        y, gy = self.primals
        return add_tangents(None if ty is None else ty * gy * (1.0 - 2.0 * y),
                            None if tgy is None else SigmoidBackward.apply(y, tgy))


class Relu(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.maximum(x, self.xp.zeros_like(x))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return ReluBackward.apply(x, gy)

    def jvp(self, tx):
        return ReluBackward.apply(self.primals[0], tx)  # the same map as backward


class ReluBackward(Function):
    """gx = gy where x > 0, else 0 (d/dx relu = 1[x > 0]; a NaN x passes gy, as PyTorch): one op, not
    three (``x <= 0``, ``~``, ``where``). Selected, not multiplied by a mask: an inf or NaN gy where x <= 0
    gives 0, not 0·inf = NaN. Linear in gy, and 0 in x almost everywhere: its own derivative."""

    def forward(self, x, gy):
        self.save_for_backward(x)
        return self.backend.relu_grad(x, gy)

    def backward(self, gg):
        (x,) = self.saved_tensors
        return None, ReluBackward.apply(x, gg)

    def jvp(self, _tx, tgy):
        return ReluBackward.apply(self.primals[0], tgy)


class Silu(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x / (1.0 + self.backend.exp(-x))

    def backward(self, gy):
        (x,) = self.saved_tensors
        s = sigmoid(x)
        return gy * s * (1.0 + x * (1.0 - s))  # d/dx xσ(x) = σ(1 + x(1-σ))

    def jvp(self, tx):
        (x,) = self.primals
        s = sigmoid(x)
        return tx * s * (1.0 + x * (1.0 - s))


class Erf(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.backend.erf(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * (2.0 / math.sqrt(math.pi)) * exp(-x * x)  # d/dx erf = 2/√π e^(-x²)

    def jvp(self, tx):
        (x,) = self.primals
        return tx * (2.0 / math.sqrt(math.pi)) * exp(-x * x)


class Gelu(Function):
    """x Φ(x) with Φ(x) = (1 + erf(x/√2))/2; Φ is kept for backward (it saves recomputing erf)."""

    def forward(self, x):
        cdf = self.backend.normal_cdf(x)
        self.save_for_backward(x, cdf)
        return x * cdf

    def backward(self, gy):
        x, cdf = self.saved_tensors
        return GeluBackward.apply(x, gy, cdf)

    def jvp(self, tx):
        (x,) = self.primals  # d gelu = (Φ + xφ) dx: backward's map, given Φ(x) again
        cdf = like(x, self.backend.normal_cdf(x.array))
        return GeluBackward.apply(x, tx, cdf)


class GeluBackward(Function):
    """gx = gy · (Φ(x) + xφ(x)) (d/dx xΦ(x)), given Φ(x); a Function of its own so that gelu has a
    second derivative: ∂gx/∂x = gy · φ(x)(2 - x²),  ∂gx/∂gy = Φ(x) + xφ(x)."""

    def forward(self, x, gy, cdf):
        self.save_for_backward(x, gy, cdf)
        return self.backend.gelu_grad(x, gy, cdf)

    def backward(self, gg):
        x, gy, cdf = self.saved_tensors
        pdf = exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return gg * gy * pdf * (2.0 - x * x), GeluBackward.apply(x, gg, cdf), None

    def jvp(self, tx, tgy, _):
        x, gy, cdf = self.primals  # cdf is Φ(x): its change is φ(x) dx, which the first term holds
        pdf = exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return add_tangents(None if tx is None else tx * gy * pdf * (2.0 - x * x),
                            None if tgy is None else GeluBackward.apply(x, tgy, cdf))


class GeluTanh(Function):
    K = math.sqrt(2.0 / math.pi)

    def forward(self, x):
        self.save_for_backward(x)
        return self.backend.gelu_tanh(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        if self.unobserved():  # backend.gelu_tanh_grad: the formula below, on the arrays
            return gy._wrap(self.backend.gelu_tanh_grad(x.array, gy.array))
        t = tanh(self.K * (x + 0.044715 * x * x * x))
        dt = (1.0 - t * t) * self.K * (1.0 + 3 * 0.044715 * x * x)
        return gy * (0.5 * (1.0 + t) + 0.5 * x * dt)

    def jvp(self, tx):
        (x,) = self.primals
        t = tanh(self.K * (x + 0.044715 * x * x * x))
        dt = (1.0 - t * t) * self.K * (1.0 + 3 * 0.044715 * x * x)
        return tx * (0.5 * (1.0 + t) + 0.5 * x * dt)


class Abs(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.abs(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        # d/dx |x| = sign(x), multiplied as PyTorch does: an inf/NaN gy at x = 0 gives a loud NaN
        return gy * sign(x)

    def jvp(self, tx):
        return tx * sign(self.primals[0])


class _PiecewiseConstant(Function):
    """An op whose output is constant between jumps (sign, floor ...): its gradient and tangent are 0
    everywhere, whatever gy holds (PyTorch's)."""

    def backward(self, gy):
        return like(gy, gy.backend.full(gy.shape, 0, gy.dtype))

    def jvp(self, tx, *_):
        return like(tx, tx.backend.full(tx.shape, 0, tx.dtype))


class Sign(_PiecewiseConstant):
    """-1, 0 or 1 (NaN gives 0, as PyTorch)."""

    def forward(self, x):
        y = self.xp.sign(x)
        if self.backend.dtype_of(y).is_floating_point:
            y = self.xp.where(y == y, y, self.xp.zeros_like(y))
        return y


class Nonzero(_PiecewiseConstant):
    """1 where x != 0 (NaN too), else 0, in x's dtype: the terms of the 0-"norm", a count of nonzeros."""

    def forward(self, x):
        return self.backend.astype(x != 0, self.backend.dtype_of(x))


class Clamp(Function):
    def forward(self, x, lo, hi):
        self.save_for_backward(x)
        self.lo, self.hi = lo, hi
        if lo is not None and hi is not None and lo > hi:
            lo = hi  # min > max: max everywhere (NaN stays NaN), as PyTorch
        return self.xp.clip(x, lo, hi)

    def backward(self, gy):
        (x,) = self.saved_tensors
        if self.lo is not None and self.hi is not None:
            inside = (x >= self.lo) & (x <= self.hi)
        else:
            inside = x >= self.lo if self.lo is not None else x <= self.hi
        return select(inside, gy), None, None  # d/dx clamp = 1 inside [lo, hi]

    def jvp(self, tx, _lo, _hi):
        x = self.primals[0]
        if self.lo is not None and self.hi is not None:
            inside = (x >= self.lo) & (x <= self.hi)
        else:
            inside = x >= self.lo if self.lo is not None else x <= self.hi
        return select(inside, tx)


def neg(x):
    """-x; ``torch.neg``."""
    return Neg.apply(x)


def exp(x):
    """e^x"""
    return Exp.apply(floating(x))


def log(x):
    """ln x"""
    return Log.apply(floating(x))


def sqrt(x):
    """√x"""
    return Sqrt.apply(floating(x))


def rsqrt(x):
    """1/√x"""
    return Rsqrt.apply(floating(x))


def sin(x):
    """sin(x), elementwise (integer inputs become the default float dtype); ``torch.sin``. d/dx = cos x."""
    return Sin.apply(floating(x))


def cos(x):
    """cos(x), elementwise (integer inputs become the default float dtype); ``torch.cos``. d/dx = -sin x."""
    return Cos.apply(floating(x))


def tanh(x):
    """tanh(x) = (eˣ - e⁻ˣ) / (eˣ + e⁻ˣ), elementwise; ``torch.tanh``. d/dx = 1 - tanh²x."""
    return Tanh.apply(floating(x))


def sigmoid(x):
    """σ(x) = 1 / (1 + e^-x)"""
    return Sigmoid.apply(floating(x))


def relu(x):
    """max(x, 0)"""
    return _copy(x) if x.dtype is bool_ else Relu.apply(x)


def _copy(x):
    """A new constant tensor with x's values: relu, abs and sign of a bool tensor are the identity."""
    return like(x, x.backend.copy(x.array))


def silu(x):
    """x σ(x)"""
    return Silu.apply(floating(x))


def erf(x):
    """The error function 2/√π ∫₀ˣ e^(-t²) dt."""
    return Erf.apply(floating(x))


def gelu(x, approximate: str = "none"):
    """x Φ(x) (exact, via erf) or its tanh approximation with approximate="tanh"."""
    if approximate == "none":
        return Gelu.apply(floating(x))
    if approximate == "tanh":
        return GeluTanh.apply(floating(x))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def abs(x):
    """|x|"""
    return _copy(x) if x.dtype is bool_ else Abs.apply(x)


def clamp(x, min=None, max=None):
    """Limit x to [min, max]; the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    lo = None if min is None else scalar(min, "clamp")
    hi = None if max is None else scalar(max, "clamp")
    dtype = x.dtype  # an integer tensor with a float bound is clamped in float32 (as PyTorch)
    for bound in (lo, hi):
        if bound is not None:
            dtype = scalar_dtype(dtype, bound)
    return Clamp.apply(cast(x, dtype), lo, hi)


clip = clamp


def sign(x):
    """-1, 0 or 1 by the sign of x (0 for NaN, as PyTorch); a bool tensor stays itself. Its gradient is 0."""
    return _copy(x) if x.dtype is bool_ else Sign.apply(x)


class Log1p(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log1p(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / (x + 1.0)  # d/dx log(1 + x) = 1/(1 + x)

    def jvp(self, tx):
        return tx / (self.primals[0] + 1.0)


class Expm1(Function):
    def forward(self, x):
        y = self.xp.expm1(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * (y + 1.0)  # d/dx (e^x - 1) = e^x

    def jvp(self, tx):
        return tx * (self.result + 1.0)


class Reciprocal(Function):
    def forward(self, x):
        y = 1.0 / x
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return -gy * y * y  # d/dx 1/x = -1/x²

    def jvp(self, tx):
        return -tx * self.result * self.result


class Rounding(_PiecewiseConstant):
    """floor, ceil, trunc or round (half to even, as PyTorch; with ``decimals``, at 10^-decimals)."""

    def forward(self, x, name, decimals=0):
        xp = self.xp
        if name == "round" and decimals:
            scale = 10.0 ** decimals
            return xp.round(x * scale) / scale
        return getattr(xp, name)(x)


def log1p(x):
    """log(1 + x), accurate for small x; ``torch.log1p``."""
    return Log1p.apply(floating(x))


def expm1(x):
    """e^x - 1, accurate for small x; ``torch.expm1``."""
    return Expm1.apply(floating(x))


def reciprocal(x):
    """1 / x (integer inputs become the default float dtype); ``torch.reciprocal``."""
    return Reciprocal.apply(floating(x))


def square(x):
    """x · x (an integer tensor stays integer, a bool one becomes int64, as PyTorch); ``torch.square``."""
    x = cast(x, int64) if x.dtype is bool_ else x
    return mul(x, x)


def floor(x):
    """The largest integer <= x; ``torch.floor``. Its gradient is 0."""
    return _rounded(x, "floor")


def ceil(x):
    """The smallest integer >= x; ``torch.ceil``. Its gradient is 0."""
    return _rounded(x, "ceil")


def trunc(x):
    """x rounded toward 0; ``torch.trunc``. Its gradient is 0."""
    return _rounded(x, "trunc")


def round(x, *, decimals: int = 0):
    """x rounded to the nearest integer, halves to even (with ``decimals``, to 10^-decimals);
    ``torch.round``. Its gradient is 0."""
    return _rounded(x, "round", int(decimals))


def _rounded(x, name: str, decimals: int = 0):
    if x.dtype is bool_:
        raise TypeError(f"{name}: not defined for a bool tensor (shape {tuple(x.shape)}), as in PyTorch; "
                        f"convert it first, e.g. x.float()")
    if not x.dtype.is_floating_point:  # integers are already whole (PyTorch returns them as they are)
        return _copy(x)
    return Rounding.apply(x, name, decimals)


class FloorDivide(Function):
    """floor(a / b), elementwise; no gradient (PyTorch's has none either)."""

    differentiable = False

    def forward(self, a, b):
        return self.xp.floor_divide(a, b)


class Remainder(_Binary):
    """a - b·floor(a / b): Python's %, the sign of b (torch.remainder). d/da = 1, d/db = -floor(a / b)."""

    def forward(self, a, b):
        keep = self.needs_input_grad[1]  # floor(a / b) is d/db's
        self.save_for_backward(a if keep else None, b if keep else None)
        xp, r = self.xp, self.xp.remainder(a, b)
        if self.backend.dtype_of(r).is_floating_point:  # a zero takes a's sign (PyTorch's fmod-based kernel:
            r = xp.where(r == 0, a * 0, r)  # 2.0 % -0.5 is 0.0, -2.0 % 0.5 is -0.0), not b's as NumPy's
        return r

    def backward(self, gy):
        a, b = self.saved_tensors
        return self.reduce(gy, -gy * floor_divide(a, b) if self.needs_input_grad[1] else None)

    def jvp(self, ta, tb):
        a, b = self.primals
        return self.spread(add_tangents(ta, None if tb is None else -tb * floor_divide(a, b)))


def _integer_division(a, b, op: str):
    a, b = binary(a, b, op)
    ref = a if isinstance(a, TensorCore) else b
    if ref.dtype is bool_:
        raise TypeError(f"{op}: not defined for two bool operands (as PyTorch); convert them first, "
                        f"e.g. x.long()")
    if not ref.dtype.is_floating_point:  # integers: a zero divisor is an error, as PyTorch's
        zero = (b == 0).any().item() if isinstance(b, TensorCore) else b == 0
        shapes = [v.shape for v in (a, b) if isinstance(v, TensorCore)]
        if zero and math.prod(broadcast_shapes(*shapes)):  # (an empty result divides nothing)
            raise ZeroDivisionError(f"{op}: integer division by zero (divisor of shape "
                                    f"{tuple(getattr(b, 'shape', ()))}, dtype {ref.dtype})")
    if not isinstance(a, TensorCore):
        a = like(ref, ref.backend.full((), a, ref.dtype))
    return a, b


def lerp(start, end, weight):
    """start + weight · (end - start) (``torch.lerp``; weight a number or a tensor)."""
    return add(start, mul(weight, sub(end, start)))


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """|a - b| <= atol + rtol·|b| elementwise, a bool tensor; infinities are close only to themselves and
    NaN to nothing (unless equal_nan), as ``torch.isclose``."""
    a, b = binary(a, b, "isclose")
    if not isinstance(a, TensorCore) or not isinstance(b, TensorCore):
        raise TypeError("isclose: expected two tensors")
    close = (a == b) | (isfinite(a) & isfinite(b) & le(abs(sub(a, b)), atol + rtol * abs(b)))
    return close | (isnan(a) & isnan(b)) if equal_nan else close


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether every element of a is close to b's (``torch.allclose``): a Python bool."""
    return bool(isclose(a, b, rtol, atol, equal_nan).all().item())


def floor_divide(a, b):
    """floor(a / b) (``a // b``, toward -inf, as PyTorch); integer division by 0 raises; no gradient."""
    return FloorDivide.apply(*_integer_division(a, b, "floor_divide"))


def remainder(a, b):
    """a - b·floor(a / b) (``a % b``; the sign of b, as Python and PyTorch); integer division by 0 raises."""
    return Remainder.apply(*_integer_division(a, b, "remainder"))


class Atan2(_Binary):
    """The angle of the point (b, a): atan(a / b) in the right quadrant. d/da = b / r², d/db = -a / r²
    with r² = a² + b², and 0 where r² is 0 (PyTorch's: the origin has no direction)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.atan2(a, b)

    @staticmethod
    def _inverse_r2(a, b):
        r2 = a * a + b * b
        return where(r2 == 0, 0.0, 1.0 / r2)  # multiplied in, as PyTorch: an inf gy at the origin is NaN

    def backward(self, gy):
        a, b = self.saved_tensors
        inv = self._inverse_r2(a, b)
        return self.reduce(gy * b * inv if self.needs_input_grad[0] else None,
                           gy * -a * inv if self.needs_input_grad[1] else None)

    def jvp(self, ta, tb):
        a, b = self.primals
        inv = self._inverse_r2(a, b)
        return self.spread(add_tangents(None if ta is None else ta * b * inv,
                                        None if tb is None else tb * -a * inv))


def atan2(input, other):
    """The angle of (other, input) in (-π, π], elementwise and broadcasting (``torch.atan2``; integer
    tensors give the default float dtype). Both operands are tensors, as PyTorch's."""
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, TensorCore):
            raise TypeError(f"atan2: {name} must be a Tensor, got {type(v).__name__} (as PyTorch); wrap a "
                            f"number with x.new_tensor(value)")
    a, b = binary(input, other, "atan2")  # promoted first, as PyTorch: int64 with a 0-d float64 is float64
    return Atan2.apply(floating(a), floating(b))


class NanToNum(Function):
    """NaN, +inf and -inf replaced by finite numbers. The gradient passes where x is finite and is 0
    elsewhere, multiplied in as PyTorch's (an inf gy at a replaced element gives NaN)."""

    def forward(self, x, nan, posinf, neginf):
        self.save_for_backward(x)
        xp, b = self.xp, self.backend
        dt = b.dtype_of(x)
        fill = lambda v: b.full((), v, dt)  # noqa: E731
        x = xp.where(xp.isnan(x), fill(nan), x)
        x = xp.where(x == math.inf, fill(posinf), x)
        return xp.where(x == -math.inf, fill(neginf), x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * cast(isfinite(x), gy.dtype), None, None, None

    def jvp(self, tx, *_):
        return tx * cast(isfinite(self.primals[0]), tx.dtype)


def nan_to_num(input, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None):
    """input with NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf`` (default: the dtype's
    largest and lowest finite values), as ``torch.nan_to_num``. Integer and bool tensors have no such
    values and come back as copies."""
    if not input.dtype.is_floating_point:
        return _copy(input)
    info = np.finfo(input.dtype.name)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    return NanToNum.apply(input, float(nan), float(posinf), float(neginf))


# ---- selection ------------------------------------------------------------------------------

_NOTHING = object()  # where(condition): no input or other given


class Where(Function):
    def forward(self, cond, a, b):
        self.cond_shape = cond.shape
        self.a_shape = getattr(a, "shape", None)
        self.b_shape = getattr(b, "shape", None)
        self.save_for_backward(cond)
        return self.backend.where(cond, a, b)

    def backward(self, gy):
        (cond,) = self.saved_tensors
        zero = gy.backend.full((), 0, gy.dtype)
        ga = gb = None
        if self.needs_input_grad[1]:
            ga = sum_to(where(cond, gy, like(gy, zero)), self.a_shape)
        if self.needs_input_grad[2]:
            gb = sum_to(where(cond, like(gy, zero), gy), self.b_shape)
        return None, ga, gb

    def jvp(self, _, ta, tb):
        cond = self.primals[0]
        t = where(cond, 0.0 if ta is None else ta, 0.0 if tb is None else tb)
        return t if tuple(t.shape) == tuple(self.result.shape) else broadcast_to(t, self.result.shape)


def where(condition, input=_NOTHING, other=_NOTHING):
    """Pick ``input`` where condition is True, else ``other`` (either may be a number). ``where(condition)``
    alone is ``nonzero(condition, as_tuple=True)``, as PyTorch's."""
    if input is _NOTHING and other is _NOTHING:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if input is _NOTHING or other is _NOTHING:
        raise TypeError("where: give both input and other, or neither (where(condition) is nonzero's tuple)")
    if not isinstance(condition, TensorCore):
        raise TypeError("where: condition must be a bool Tensor")
    if condition.dtype.name != "bool":
        raise TypeError(f"where: condition must have dtype bool, got {condition.dtype}")
    input, other = binary(input, other, "where") if (
        isinstance(input, TensorCore) or isinstance(other, TensorCore)
    ) else (scalar(input, "where"), scalar(other, "where"))
    if not isinstance(input, TensorCore) and not isinstance(other, TensorCore):
        from ..dtypes import default_float, int64

        dt = default_float() if isinstance(input, float) or isinstance(other, float) else int64
        bk = condition.backend
        input = like(condition, bk.full((), input, dt))
        other = like(condition, bk.full((), other, dt))
    shapes = [tuple(condition.shape)] + [tuple(t.shape) for t in (input, other) if isinstance(t, TensorCore)]
    broadcast_shapes(*shapes, op="where")
    return Where.apply(condition, input, other)


def masked_fill(x, mask, value):
    """x with ``value`` wherever the bool ``mask`` is True; x and mask broadcast together (as PyTorch's
    out-of-place masked_fill; the in-place masked_fill_ keeps x's shape)."""
    if getattr(mask, "dtype", None) is None or mask.dtype.name != "bool":
        raise TypeError(f"masked_fill: mask must be a bool Tensor, got {getattr(mask, 'dtype', type(mask))}")
    broadcast_shapes(tuple(mask.shape), tuple(x.shape), op="masked_fill")
    # the result keeps x's dtype: the value is converted to it (2.7 fills an int64 tensor with 2)
    if isinstance(value, TensorCore):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        if value.requires_grad and not x.dtype.is_floating_point:
            raise RuntimeError(f"masked_fill: the value requires grad, but the result is {x.dtype.name} "
                               "and cannot carry a gradient (as PyTorch); detach the value, or fill a float "
                               "tensor")
        value = cast(value, x.dtype)
    else:
        value = as_element(scalar(value, "masked_fill"), x.dtype, "masked_fill")
    return where(mask, value, x)


# ---- comparisons and logic (no gradient) ----------------------------------------------------

class Compare(Function):
    """An elementwise comparison or logical op, ``xp.<name>(a, b)``: a bool result, no gradient."""

    differentiable = False

    def forward(self, a, b, name):
        return getattr(self.xp, name)(a, b)


class ValueTest(Function):
    """A test of each value: isfinite, isnan, isinf, signbit, logical_not, or "truth" (nonzero is True);
    bool, no gradient."""

    differentiable = False

    def forward(self, x, name):
        if name == "truth":
            return x != 0
        if self.backend.dtype_of(x) is bool_ and name != "logical_not":  # every bool is finite, none NaN
            return x == x if name == "isfinite" else x != x
        if name == "signbit" and not self.backend.dtype_of(x).is_floating_point:
            return x < 0
        return getattr(self.xp, name)(x)


def _compare(name):
    logical = name.startswith("logical")
    ordered = not logical and name not in ("equal", "not_equal")

    def op(a, b):
        if logical:  # any dtype is read as truth values (nonzero = True), as PyTorch
            a, b = _truth(a), _truth(b)
        a, b = binary(a, b, name)
        t = a if isinstance(a, TensorCore) else b
        if isinstance(a, TensorCore) and isinstance(b, TensorCore) and a.backend is not b.backend:
            raise RuntimeError(f"{name}: expected tensors on one device, got {a.device} and {b.device}")
        if ordered and t.dtype is bool_:  # False < True, as PyTorch; the Array API orders no bools
            a, b = (cast(v, int64) if isinstance(v, TensorCore) else int(v) for v in (a, b))
        return Compare.apply(a, b, name)

    op.__name__ = name
    op.__doc__ = f"Elementwise {name}; returns a bool tensor (no gradient)."
    return op


eq, ne = _compare("equal"), _compare("not_equal")
lt, le = _compare("less"), _compare("less_equal")
gt, ge = _compare("greater"), _compare("greater_equal")
logical_and, logical_or = _compare("logical_and"), _compare("logical_or")
logical_xor = _compare("logical_xor")


def logical_not(x):
    """Elementwise not (nonzero is True), a bool tensor; ``torch.logical_not``, also ``~x``."""
    return ValueTest.apply(_truth(x), "logical_not")


def _truth(x):
    """x as bool (nonzero = True); Python numbers and bool tensors stay as they are."""
    if not isinstance(x, TensorCore) or x.dtype.name == "bool":
        return x
    return ValueTest.apply(x, "truth")


def isfinite(x):
    """True where x is neither inf nor NaN (every bool is finite)."""
    return ValueTest.apply(x, "isfinite")


def isnan(x):
    """True where x is NaN (no bool is)."""
    return ValueTest.apply(x, "isnan")


def isinf(x):
    """True where x is +inf or -inf (no integer or bool is)."""
    return ValueTest.apply(x, "isinf")


# ---- trigonometric and hyperbolic functions, erfc --------------------------------------------------

class _Unary(Function):
    """y = f(x) by the array namespace's function ``fn`` (or the backend's, ``value``); the gradient
    gy · f'(x) and the tangent tx · f'(x), with ``slope`` = f' written in Tensor ops (so it is
    differentiable again), PyTorch's formula each."""

    fn = ""

    def forward(self, x):
        self.save_for_backward(x)
        return self.value(x)

    def value(self, x):
        return getattr(self.xp, self.fn)(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * self.slope(x)

    def jvp(self, tx):
        return tx * self.slope(self.primals[0])


class Tan(_Unary):
    fn = "tan"
    slope = staticmethod(lambda x: tan(x) ** 2 + 1.0)  # 1 + tan²x


class Asin(_Unary):
    fn = "asin"
    slope = staticmethod(lambda x: rsqrt(1.0 - x * x))  # 1/√(1 - x²)


class Acos(_Unary):
    fn = "acos"
    slope = staticmethod(lambda x: -rsqrt(1.0 - x * x))


class Atan(_Unary):
    fn = "atan"
    slope = staticmethod(lambda x: 1.0 / (x * x + 1.0))


class Sinh(_Unary):
    fn = "sinh"
    slope = staticmethod(lambda x: cosh(x))


class Cosh(_Unary):
    fn = "cosh"
    slope = staticmethod(lambda x: sinh(x))


class Asinh(_Unary):
    fn = "asinh"
    slope = staticmethod(lambda x: rsqrt(x * x + 1.0))


class Acosh(_Unary):
    fn = "acosh"
    slope = staticmethod(lambda x: rsqrt(x * x - 1.0))


class Atanh(_Unary):
    fn = "atanh"
    slope = staticmethod(lambda x: 1.0 / (1.0 - x * x))


class Erfc(_Unary):
    slope = staticmethod(lambda x: exp(-(x * x)) * (-2.0 / math.sqrt(math.pi)))

    def value(self, x):
        return self.backend.erfc(x)  # (the Array API has no erfc)


def tan(x):
    """tan x, elementwise; ``torch.tan`` (integers become the default float dtype)."""
    return Tan.apply(floating(x))


def asin(x):
    """arcsin x, in [-π/2, π/2], elementwise; ``torch.asin`` (integers become the default float dtype)."""
    return Asin.apply(floating(x))


def acos(x):
    """arccos x, in [0, π], elementwise; ``torch.acos`` (integers become the default float dtype)."""
    return Acos.apply(floating(x))


def atan(x):
    """arctan x, in (-π/2, π/2), elementwise; ``torch.atan`` (integers become the default float dtype)."""
    return Atan.apply(floating(x))


def sinh(x):
    """sinh x = (eˣ - e⁻ˣ) / 2, elementwise; ``torch.sinh`` (integers become the default float dtype)."""
    return Sinh.apply(floating(x))


def cosh(x):
    """cosh x = (eˣ + e⁻ˣ) / 2, elementwise; ``torch.cosh`` (integers become the default float dtype)."""
    return Cosh.apply(floating(x))


def asinh(x):
    """the inverse of sinh, elementwise; ``torch.asinh`` (integers become the default float dtype)."""
    return Asinh.apply(floating(x))


def acosh(x):
    """the inverse of cosh, for x ≥ 1, elementwise; ``torch.acosh``
    (integers become the default float dtype)."""
    return Acosh.apply(floating(x))


def atanh(x):
    """the inverse of tanh, for -1 < x < 1, elementwise; ``torch.atanh``
    (integers become the default float dtype)."""
    return Atanh.apply(floating(x))


def erfc(x):
    """1 - erf x, accurate where erf x is near 1, elementwise; ``torch.erfc``
    (integers become the default float dtype)."""
    return Erfc.apply(floating(x))


class Hypot(_Binary):
    """√(a² + b²) without overflow (the namespace's hypot); d/da = a / y, d/db = b / y, PyTorch's."""

    def forward(self, a, b):
        y = self.xp.hypot(a, b)
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved_tensors
        return self.reduce(gy * a / y if self.needs_input_grad[0] else None,
                           gy * b / y if self.needs_input_grad[1] else None)

    def jvp(self, ta, tb):
        a, b = self.primals
        y = self.result
        return self.spread(add_tangents(None if ta is None else ta * a / y,
                                        None if tb is None else tb * b / y))


class LogAddExp(_Binary):
    """log(eᵃ + eᵇ) without overflow (the namespace's logaddexp: inf with inf is inf);
    d/da = 1 / (1 + e^(b-a)), d/db = 1 / (1 + e^(a-b)), PyTorch's."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.logaddexp(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return self.reduce(gy / (exp(b - a) + 1.0) if self.needs_input_grad[0] else None,
                           gy / (exp(a - b) + 1.0) if self.needs_input_grad[1] else None)

    def jvp(self, ta, tb):
        a, b = self.primals
        return self.spread(add_tangents(None if ta is None else ta / (exp(b - a) + 1.0),
                                        None if tb is None else tb / (exp(a - b) + 1.0)))


class Xlogy(_Binary):
    """x · log y, 0 where x = 0 (unless y is NaN), as PyTorch's: d/dx = log y (0 where x = 0 and y ≤ 0),
    d/dy = x / y."""

    def forward(self, x, y):
        xp = self.xp
        self.save_for_backward(x, y)
        return xp.where(xp.isnan(y), y, xp.where(x == 0, xp.zeros_like(x), x * xp.log(y)))

    def backward(self, gy):
        x, y = self.saved_tensors
        return self.reduce(self._dx(x, y, gy) if self.needs_input_grad[0] else None,
                           gy * x / y if self.needs_input_grad[1] else None)

    def jvp(self, tx, ty):
        x, y = self.primals
        return self.spread(add_tangents(None if tx is None else self._dx(x, y, tx),
                                        None if ty is None else ty * x / y))

    @staticmethod
    def _dx(x, y, g):
        return where((x == 0) & (y <= 0), 0.0, Xlogy.apply(g, y))  # g · log y


def _two_tensors(op: str, a, b):
    """a and b for hypot and logaddexp: tensors both (PyTorch takes no number), one float dtype."""
    for name, v in (("input", a), ("other", b)):
        if not isinstance(v, TensorCore):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(v).__name__} (as PyTorch); wrap a "
                            f"number with x.new_tensor(value)")
    a, b = binary(a, b, op)
    return floating(a), floating(b)


def hypot(input, other):
    """√(input² + other²), elementwise and broadcasting, without overflow; ``torch.hypot``."""
    return Hypot.apply(*_two_tensors("hypot", input, other))


def logaddexp(input, other):
    """log(e^input + e^other), elementwise and broadcasting, without overflow; ``torch.logaddexp``."""
    return LogAddExp.apply(*_two_tensors("logaddexp", input, other))


def xlogy(input, other):
    """input · log(other), and 0 where input is 0 (unless other is NaN); either may be a number;
    ``torch.xlogy`` (integer inputs become the default float dtype)."""
    a, b = binary(input, other, "xlogy")
    ref = a if isinstance(a, TensorCore) else b
    a, b = (v if isinstance(v, TensorCore) else like(ref, ref.backend.full((), v, ref.dtype)) for v in (a, b))
    return Xlogy.apply(floating(a), floating(b))


class Logit(Function):
    """log(p / (1 - p)), p = x clamped to [eps, 1 - eps] when eps is given. The gradient is PyTorch's,
    selected: 1 / (x (1 - x)) inside, NaN outside [0, 1] without eps, 0 outside [eps, 1 - eps] with it."""

    def forward(self, x, eps):
        xp = self.xp
        self.save_for_backward(x)
        self.eps = eps
        p = x if eps is None else xp.clip(x, eps, 1.0 - eps)
        return xp.log(p / (1.0 - p))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return self._slope(x, gy), None

    def jvp(self, tx, _eps):
        return self._slope(self.primals[0], tx)

    def _slope(self, x, g):
        lo, hi, outside = (0.0, 1.0, math.nan) if self.eps is None else (self.eps, 1.0 - self.eps, 0.0)
        return where((x < lo) | (x > hi), outside, g / (x * (1.0 - x)))


def logit(x, eps: float | None = None):
    """log(p / (1 - p)), with p = x clamped to [eps, 1 - eps] when eps is given; ``torch.logit``."""
    return Logit.apply(floating(x), None if eps is None else float(eps))


def frac(x):
    """x - trunc(x), the fractional part with x's sign; ``torch.frac`` (floats only, as PyTorch)."""
    if not x.dtype.is_floating_point:
        raise TypeError(f"frac: expected a floating-point tensor, got {x.dtype} (as PyTorch); an integer "
                        f"has no fractional part")
    return x - trunc(x)


def sgn(x):
    """``sign`` for real tensors; ``torch.sgn``."""
    return sign(x)


def signbit(x):
    """True where the sign bit is set: x < 0, and -0.0 and NaNs with the bit; ``torch.signbit``."""
    return ValueTest.apply(x, "signbit")


def isposinf(x):
    """True where x is +inf; ``torch.isposinf``."""
    return eq(x, math.inf)


def isneginf(x):
    """True where x is -inf; ``torch.isneginf``."""
    return eq(x, -math.inf)


def deg2rad(x):
    """x · π/180 (integer inputs become the default float dtype); ``torch.deg2rad``."""
    return floating(x) * (math.pi / 180.0)


def rad2deg(x):
    """x · 180/π (integer inputs become the default float dtype); ``torch.rad2deg``."""
    return floating(x) * (180.0 / math.pi)


# ---- logarithms and powers of 2 and 10 ---------------------------------------------------------

class Log2(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log2(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / (x * math.log(2.0))  # d/dx log₂ x = 1 / (x ln 2)

    def jvp(self, tx):
        return tx / (self.primals[0] * math.log(2.0))


class Log10(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log10(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / (x * math.log(10.0))  # d/dx log₁₀ x = 1 / (x ln 10)

    def jvp(self, tx):
        return tx / (self.primals[0] * math.log(10.0))


class Exp2(Function):
    def forward(self, x):
        y = 2.0 ** x  # (the Array API has no exp2)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * y * math.log(2.0)  # d/dx 2^x = 2^x ln 2

    def jvp(self, tx):
        return tx * self.result * math.log(2.0)


def log2(x):
    """log₂ x (integer inputs become the default float dtype); ``torch.log2``."""
    return Log2.apply(floating(x))


def log10(x):
    """log₁₀ x (integer inputs become the default float dtype); ``torch.log10``."""
    return Log10.apply(floating(x))


def exp2(x):
    """2^x (integer inputs become the default float dtype); ``torch.exp2``."""
    return Exp2.apply(floating(x))


# ---- activations beyond relu, gelu and silu (torch.nn.functional's) ---------------------------

def _log1p_exp(backend, z):
    """log(1 + e^z) on arrays, as max(z, 0) + log(1 + e^-|z|): it never overflows."""
    xp = backend.xp
    return xp.maximum(z, 0.0) + xp.log1p(backend.exp(-xp.abs(z)))


class Softplus(Function):
    """log(1 + e^(βx)) / β, and x itself where βx > threshold (PyTorch's cut-over, for speed and
    overflow). Written max(z, 0) + log(1 + e^-|z|) with z = βx, which never overflows; the gradient is
    σ(βx), and 1 past the threshold."""

    def forward(self, x, beta, threshold):
        xp = self.xp
        z = x * beta
        self.save_for_backward(x)
        self.beta, self.threshold = beta, threshold
        smooth = _log1p_exp(self.backend, z) / beta
        return xp.where(z > threshold, x, smooth)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return self._slope(x, gy), None, None

    def jvp(self, tx, _beta, _threshold):
        return self._slope(self.primals[0], tx)

    def _slope(self, x, g):
        z = x * self.beta
        return where(z > self.threshold, g, g * sigmoid(z))  # d/dx = σ(βx), or 1 past the threshold


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + e^(βx)) / β, linear where βx > threshold; ``torch.nn.functional.softplus``."""
    return Softplus.apply(floating(x), float(beta), float(threshold))


def logsigmoid(x):
    """log σ(x) = -softplus(-x), without overflow; ``torch.nn.functional.logsigmoid``."""
    return neg(Softplus.apply(neg(floating(x)), 1.0, math.inf))


def leaky_relu(x, negative_slope: float = 0.01):
    """x where x > 0, else negative_slope · x; ``torch.nn.functional.leaky_relu``. At 0 the gradient
    is negative_slope, as PyTorch's."""
    x = floating(x)
    return where(x > 0, x, x * negative_slope)


def _elu(x, alpha: float, scale: float = 1.0, input_scale: float = 1.0):
    """PyTorch's one formula behind elu, selu and celu: scale · x where x > 0, else
    α · scale · (e^(input_scale · x) - 1). (The exponential sees min(x, 0): the branch not taken never
    overflows, so its zero gradient stays 0 rather than 0 · inf; NaN takes the x branch, as PyTorch's.)"""
    x = floating(x)
    z = clamp(x, max=0.0)
    negative = expm1(z if input_scale == 1.0 else z * input_scale) * (alpha * scale)
    return where(x <= 0, negative, x if scale == 1.0 else x * scale)


def elu(x, alpha: float = 1.0):
    """x where x > 0, else α(eˣ - 1); ``torch.nn.functional.elu``."""
    return _elu(x, float(alpha))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(x):
    """scale · elu(x, α) with the self-normalising constants α ≈ 1.6733, scale ≈ 1.0507; ``torch.selu``."""
    return _elu(x, _SELU_ALPHA, _SELU_SCALE)


def celu(x, alpha: float = 1.0):
    """x where x > 0, else α(e^(x/α) - 1); ``torch.celu``. α = 0 is refused, as PyTorch refuses it."""
    if alpha == 0:
        raise RuntimeError("celu: alpha cannot be 0 (it divides x); use relu for the limit α → 0")
    return _elu(x, float(alpha), 1.0, 1.0 / alpha)


def softsign(x):
    """x / (1 + |x|); ``torch.nn.functional.softsign`` (integer inputs become the default float dtype)."""
    return x / (abs(x) + 1)


def tanhshrink(x):
    """x - tanh(x); ``torch.nn.functional.tanhshrink``."""
    x = floating(x)
    return x - tanh(x)


def threshold(x, threshold: float, value: float):
    """x where x > threshold, else value; ``torch.threshold`` (integer tensors stay integer; NaN stays NaN
    and passes its gradient, as PyTorch's)."""
    if x.dtype is bool_:
        raise TypeError("threshold: bool tensors are not supported (as in PyTorch); convert with .float()")
    return where(x <= threshold, value if x.dtype.is_floating_point else int(value), x)


def hardshrink(x, lambd: float = 0.5):
    """0 where -λ ≤ x ≤ λ, else x; ``torch.nn.functional.hardshrink``."""
    x = floating(x)
    return where((x >= -lambd) & (x <= lambd), 0.0, x)


def _check_lambd(op: str, lambd: float, x) -> None:
    if not lambd >= 0:
        raise RuntimeError(f"{op}: lambd must be >= 0, but found {lambd} (for a {x.dtype} tensor of shape "
                           f"{tuple(x.shape)})")


class Softshrink(Function):
    """x - λ above λ, x + λ below -λ, and 0 between (x · 0, so -0.0 keeps its sign and NaN stays NaN,
    as PyTorch's). The gradient is selected: 0 on [-λ, λ], gy elsewhere and at NaN."""

    def forward(self, x, lambd):
        xp = self.xp
        self.save_for_backward(x)
        self.lambd = lambd
        return xp.where(x > lambd, x - lambd, xp.where(x < -lambd, x + lambd, x * 0.0))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return self._slope(x, gy), None

    def jvp(self, tx, _lambd):
        return self._slope(self.primals[0], tx)

    def _slope(self, x, g):
        return where((x >= -self.lambd) & (x <= self.lambd), 0.0, g)


def softshrink(x, lambd: float = 0.5):
    """x - λ above λ, x + λ below -λ, 0 between; ``torch.nn.functional.softshrink`` (λ ≥ 0)."""
    x = floating(x)
    _check_lambd("softshrink", lambd, x)
    return Softshrink.apply(x, float(lambd))


class Hardsigmoid(Function):
    """relu6(x + 3) / 6. Its gradient is selected: 1/6 strictly inside (-3, 3), 0 elsewhere and at NaN,
    as PyTorch's."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.clip(x + 3.0, 0.0, 6.0) / 6.0

    def backward(self, gy):
        (x,) = self.saved_tensors
        return self._slope(x, gy)

    def jvp(self, tx):
        return self._slope(self.primals[0], tx)

    @staticmethod
    def _slope(x, g):
        return where((x > -3.0) & (x < 3.0), g / 6.0, 0.0)


def hardsigmoid(x):
    """relu6(x + 3) / 6; ``torch.nn.functional.hardsigmoid``."""
    return Hardsigmoid.apply(floating(x))


class Prelu(_Binary):
    """x where x > 0, else w · x (w broadcast to x). Both gradients are selected, as PyTorch's: gy or
    w · gy for x, 0 or x · gy for w, so an inf weight never reaches a positive x's gradient."""

    def forward(self, x, w):
        self.save_for_backward(x, w)
        return self.xp.where(x > 0, x, w * x)

    def backward(self, gy):
        x, w = self.saved_tensors
        return self.reduce(*self._slopes(x, w, gy, gy, self.needs_input_grad))

    def jvp(self, tx, tw):
        x, w = self.primals
        return self.spread(add_tangents(*self._slopes(x, w, tx, tw, (tx is not None, tw is not None))))

    @staticmethod
    def _slopes(x, w, gx, gw, needed):
        positive = x > 0
        return (where(positive, gx, w * gx) if needed[0] else None,
                where(positive, 0.0, x * gw) if needed[1] else None)


def prelu(x, weight):
    """x where x > 0, else weight · x, with one weight per channel (dim 1) or a single one for all;
    ``torch.prelu``. Both are floats of one dtype: PyTorch promotes neither."""
    channels = x.shape[1] if x.ndim > 1 else 1
    if weight.ndim > 1 or weight.numel() not in (1, channels):
        raise RuntimeError(f"prelu: a weight of shape {tuple(weight.shape)} for an input of shape "
                           f"{tuple(x.shape)}: expected a scalar or a 1-d tensor of 1 or {channels} weights "
                           f"(one per channel, dim 1)")
    if not x.dtype.is_floating_point or weight.dtype is not x.dtype:
        raise TypeError(f"prelu: expected floating-point input and weight of one dtype, got {x.dtype} and "
                        f"{weight.dtype}; convert one with .to()")
    # one weight: a 0-d one (the result is x's shape); C weights: (C, 1, ...), lined up with dim 1
    weight = weight.reshape(()) if weight.numel() == 1 else weight.reshape((-1,) + (1,) * (x.ndim - 2))
    return Prelu.apply(x, weight)


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0):
    """x limited to [min_val, max_val]; ``torch.nn.functional.hardtanh``. Unlike clamp's, its gradient
    is 0 at the two ends (PyTorch's); integer tensors stay integer, bool is refused."""
    if x.dtype is bool_:
        raise TypeError("hardtanh: bool tensors are not supported (as in PyTorch); convert with .float()")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    if not x.dtype.is_floating_point:  # an integer tensor stays integer (the bounds truncated to it)
        return clamp(x, int(min_val), int(max_val))
    return where(x <= min_val, min_val, where(x >= max_val, max_val, x))


def relu6(x):
    """min(max(x, 0), 6): ``hardtanh(x, 0, 6)``; ``torch.nn.functional.relu6``."""
    return hardtanh(x, 0.0, 6.0)


class Hardswish(Function):
    """x · relu6(x + 3) / 6. Its gradient is selected, not multiplied: 0 up to -3 (an inf gy there gives
    0), x/3 + 1/2 inside, gy itself from 3 on and at NaN, as PyTorch's."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * self.xp.clip(x + 3.0, 0.0, 6.0) / 6.0

    def backward(self, gy):
        (x,) = self.saved_tensors
        return self._slope(x, gy)

    def jvp(self, tx):
        return self._slope(self.primals[0], tx)

    @staticmethod
    def _slope(x, g):
        return where(x <= -3.0, 0.0, where(x < 3.0, g * (x / 3.0 + 0.5), g))


class Mish(Function):
    """x · tanh(softplus(x)); the gradient is PyTorch's formula t + x σ(x) (1 - t²), t = tanh(softplus(x)),
    so ±inf and NaN give what PyTorch's give."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * self.xp.tanh(_log1p_exp(self.backend, x))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * self._slope(x)

    def jvp(self, tx):
        return tx * self._slope(self.primals[0])

    @staticmethod
    def _slope(x):
        t = tanh(Softplus.apply(x, 1.0, math.inf))
        return t + x * sigmoid(x) * (1.0 - t * t)


def hardswish(x):
    """x · relu6(x + 3) / 6; ``torch.nn.functional.hardswish`` (its gradient: 0 up to -3, x/3 + 1/2
    inside, 1 from 3 on)."""
    return Hardswish.apply(floating(x))


def mish(x):
    """x · tanh(softplus(x)); ``torch.nn.functional.mish``."""
    return Mish.apply(floating(x))


def glu(x, dim: int = -1):
    """a · σ(b) for the two halves a, b of x along dim; ``torch.nn.functional.glu``."""
    from .dims import normalize_dim
    from .shape import chunk

    if x.ndim == 0:
        raise RuntimeError("glu: does not support scalars (0-d tensors)")
    d = normalize_dim(dim, x.ndim, "glu", x.shape)
    if x.shape[d] % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dimension {d} of shape {x.shape} is "
                           f"size {x.shape[d]}")
    a, b = chunk(floating(x), 2, d)
    return a * sigmoid(b)
