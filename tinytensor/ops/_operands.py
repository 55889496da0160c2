"""Turning op arguments into tensors of one dtype on one device, with PyTorch's promotion rules."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor_core import TensorCore
from ..dtypes import bool_, default_float, kind, promote, scalar_dtype


def scalar(value, op: str):
    """A Python number from a Python/NumPy scalar or 0-d array; anything larger is refused."""
    if type(value) in (bool, int, float):
        return value
    if isinstance(value, numbers.Number) or getattr(value, "ndim", None) == 0:
        kind = getattr(getattr(value, "dtype", None), "kind", "f")
        return bool(value) if kind == "b" else int(value) if kind in "iu" else float(value)
    raise TypeError(
        f"{op}: expected a Tensor or a Python number, got {type(value).__name__}"
        + (f" of shape {tuple(value.shape)}" if hasattr(value, "shape") else "")
        + "; wrap arrays with tt.tensor(data, device=...) first (tinytensor never moves data implicitly)"
    )


class Cast(Function):
    """A dtype conversion; the gradient is converted back. An integer or bool result has no gradient
    (Function.apply records only floating-point outputs), so float -> int cuts the graph."""

    def forward(self, x, dtype):
        self.in_dtype = self.backend.dtype_of(x)
        return self.backend.astype(x, dtype)

    def backward(self, gy):
        return Cast.apply(gy, dtype=self.in_dtype)

    def jvp(self, tx):
        return Cast.apply(tx, dtype=self.result.dtype)


def as_element(value, dtype, op: str = "as_element"):
    """A Python number as an element of ``dtype`` (2.7 -> 2 for an integer dtype, as PyTorch); a value the
    integer dtype cannot hold (inf, NaN, out of its range) is refused, as PyTorch refuses it."""
    if dtype.is_floating_point:
        return float(value)
    if dtype is bool_:
        return bool(value)
    limits = np.iinfo(dtype.name)
    if isinstance(value, float) and not math.isfinite(value) or not limits.min <= value <= limits.max:
        raise RuntimeError(f"{op}: value {value} cannot be converted to {dtype.name} without overflow (its "
                           f"range is {limits.min}..{limits.max}), as PyTorch; use a wider or a float dtype")
    return int(value)


def cast(t: TensorCore, dtype):
    """t converted to dtype (differentiable); the same tensor when it already has that dtype."""
    return t if t.dtype is dtype else Cast.apply(t, dtype=dtype)


def binary(a, b, op: str):
    """Two operands ready for an elementwise op: tensors cast to one dtype, or (tensor, scalar)."""
    a_is, b_is = isinstance(a, TensorCore), isinstance(b, TensorCore)
    if a_is and b_is:
        # the same array dtype object is the common case, and the cheapest check
        if a.array.dtype is not b.array.dtype and a.dtype is not b.dtype:
            dt = promote(a.dtype, b.dtype)
            # a 0-d tensor does not widen a higher-dimensional one of the same kind (bool, integer,
            # floating: PyTorch's categories), so int32 + int64 0-d is int32, bool + int64 0-d int64
            if a.ndim == 0 and b.ndim > 0 and kind(a.dtype) == kind(b.dtype):
                dt = b.dtype
            elif b.ndim == 0 and a.ndim > 0 and kind(a.dtype) == kind(b.dtype):
                dt = a.dtype
            a, b = cast(a, dt), cast(b, dt)
        return a, b
    if a_is:
        if type(b) is float and a.dtype.is_floating_point:  # the common case: x * 0.5
            return a, b
        b = scalar(b, op)
        a = cast(a, scalar_dtype(a.dtype, b))
        return a, _unbool(b, a)
    if b_is:
        if type(a) is float and b.dtype.is_floating_point:
            return a, b
        a = scalar(a, op)
        b = cast(b, scalar_dtype(b.dtype, a))
        return _unbool(a, b), b
    raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")


def _unbool(value, t: TensorCore):
    """True/False as 1/0 next to a numeric tensor (the Array API mixes bools only with bools)."""
    return int(value) if isinstance(value, bool) and t.dtype.name != "bool" else value


def floating(t: TensorCore):
    """Integer and bool tensors become the default float dtype for ops like exp, as in PyTorch."""
    if t.array.dtype in t.backend.float_dtypes:  # the common case, and the cheapest check
        return t
    return t if t.dtype.is_floating_point else cast(t, default_float())


def like(ref: TensorCore, data):
    """Wrap an array as a constant tensor of the same class and device as ``ref``."""
    return ref._wrap(data)
