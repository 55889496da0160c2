"""Elementwise ops: arithmetic (operators and functions, tensor-tensor with broadcasting, and
scalars), unary math, sign, clamp, where, masked_fill."""
from __future__ import annotations

import math
import operator

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample, functional, same, unary_sample

# ---- arithmetic -------------------------------------------------------------------------------


def binary_sample(dom_a, dom_b, scalars):
    """Two broadcasting tensors, or one tensor and a Python scalar on either side."""

    def sample(d: Draw) -> Sample:
        form = d.choice(("tensors", "tensors", "scalar_right", "scalar_left"))
        how = d.choice(("op", "fn"))
        s = d.choice(scalars)
        if form == "tensors":
            sa, sb = d.broadcast_shapes(2)
            return Sample((d.array(sa, dom_a), d.array(sb, dom_b)), dict(form=form, s=s, how=how))
        dom = dom_a if form == "scalar_right" else dom_b
        return Sample((d.array(d.shape(), dom),), dict(form=form, s=s, how=how))

    return sample


def _lerp_sample(d: Draw) -> Sample:
    """start and end broadcasting together, a number weight (PyTorch's lerp takes a tensor one of the
    same dtype too; here it is a mul like any other)."""
    sa, sb = d.broadcast_shapes(2)
    return Sample((d.array(sa), d.array(sb)), dict(w=d.choice((0.25, 0.5, 1.5))))


def _division_sample(d: Draw) -> Sample:
    """Dividends off the integers and divisors ±1, ±2 (draw.py's offgrid and divisors), so that a / b
    stays >= 0.05 from every integer: floor(a / b) is constant around each point (a central difference
    never straddles a jump of the remainder). A scalar on the left is a dividend, on the right a divisor."""
    form = d.choice(("tensors", "tensors", "scalar_right", "scalar_left"))
    how = d.choice(("op", "fn"))
    if form == "tensors":
        sa, sb = d.broadcast_shapes(2)
        return Sample((d.array(sa, "offgrid"), d.array(sb, "divisors")), dict(form=form, s=None, how=how))
    if form == "scalar_right":
        return Sample((d.array(d.shape(), "offgrid"),), dict(form=form, s=d.choice((2, -1, 2.0)), how=how))
    return Sample((d.array(d.shape(), "divisors"),), dict(form=form, s=d.choice((2.25, -1.75)), how=how))


def binary_operands(xs, form, s):
    if form == "tensors":
        return xs
    return (xs[0], s) if form == "scalar_right" else (s, xs[0])


def binary(name, op, tt_fn, dom_a="real", dom_b="real", scalars=(2, 1.5, -0.75), torch_fn=None,
           method=None, sample=None, **kw):
    """An OpSpec for a binary op: how="op" uses the operator (or ``a.method(b)``), how="fn" the
    function ``tt_fn``; the reference is ``op`` on NumPy arrays."""

    def fn(*xs, form, s, how):
        a, b = binary_operands(xs, form, s)
        if how == "fn" or (method is not None and not isinstance(a, tt.Tensor)):
            return tt_fn(a, b)
        return getattr(a, method)(b) if method is not None else op(a, b)

    def ref(*xs, form, s, how):
        return op(*binary_operands(xs, form, s))

    def torch_ref(torch, *xs, form, s, how):
        a, b = binary_operands(xs, form, s)
        if torch_fn is None:
            return op(a, b)
        like = xs[0]
        a = a if torch.is_tensor(a) else torch.as_tensor(a, dtype=like.dtype)
        b = b if torch.is_tensor(b) else torch.as_tensor(b, dtype=like.dtype)
        return torch_fn(torch)(a, b)

    sample = binary_sample(dom_a, dom_b, scalars) if sample is None else sample
    return OpSpec(name, fn, ref, sample, torch_ref, **kw)


# ---- NumPy references not in NumPy ------------------------------------------------------------

def _np_erf(x):
    try:
        from scipy.special import erf
    except ImportError:
        return np.vectorize(math.erf, otypes=[np.float64])(x)
    return erf(x)


def _np_erfc(x):
    try:
        from scipy.special import erfc
    except ImportError:
        return np.vectorize(math.erfc, otypes=[np.float64])(x)
    return erfc(x)


def _np_xlogy(x, y):
    return np.where(x == 0, 0.0, x * np.log(y))


def _binary_sample(da: str, db: str):
    """Two broadcasting tensors, from domains da and db."""
    def sample(d: Draw) -> Sample:
        sa, sb = d.broadcast_shapes(2)
        return Sample((d.array(sa, da), d.array(sb, db)))

    return sample


def _logit_sample(d: Draw) -> Sample:
    """p in [0.2, 0.8] (x · 0.4 of "positive"), eps None or far outside it (no kink in reach)."""
    return Sample((d.array(d.shape(), "positive"),), dict(eps=d.choice((None, 1e-6))))


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x, approximate):
    return tt.gelu(x, approximate=approximate)


def _np_softplus(x, beta, threshold):
    return np.where(x * beta > threshold, x, np.logaddexp(0.0, x * beta) / beta)


def _softplus_sample(d: Draw) -> Sample:
    beta, threshold = d.choice(((1.0, 20.0), (2.0, 20.0), (1.0, 1.0)))
    return Sample((d.array(d.shape(), "offgrid"),), dict(beta=beta, threshold=threshold))


def _slope_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(), "distinct"),), dict(slope=d.choice((0.01, 0.2, -0.5))))


def _alpha_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape(), "distinct"),), dict(alpha=d.choice((1.0, 0.5, 2.0))))


def _hardtanh_sample(d: Draw) -> Sample:
    lo, hi = d.choice(((-1.0, 1.0), (0.0, 2.0), (-2.0, 0.0)))
    return Sample((d.array(d.shape(), "offgrid"),), dict(lo=lo, hi=hi))


def _lambd_sample(d: Draw) -> Sample:
    """hardshrink, softshrink: kinks at ±λ (half-integers: "offgrid" keeps off them)."""
    return Sample((d.array(d.shape(), "offgrid"),), dict(lambd=d.choice((0.5, 1.5, 0.0))))


def _threshold_sample(d: Draw) -> Sample:
    threshold, value = d.choice(((0.5, -2.0), (1.0, 0.0), (-1.5, 3.0)))
    return Sample((d.array(d.shape(), "offgrid"),), dict(threshold=threshold, value=value))


def _prelu_sample(d: Draw) -> Sample:
    """x with a channel dim 1 (or none: 0-d and 1-d), and one weight for all or one per channel."""
    shape = d.shape()
    channels = shape[1] if len(shape) > 1 else 1
    n = d.choice((0, 1, channels))  # 0: a 0-d weight
    return Sample((d.array(shape, "distinct"), d.array((n,) if n else ())), {})


def _np_prelu(x, w):
    w = w.reshape(()) if w.size == 1 else w.reshape((-1,) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, w * x)


_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)  # α, scale


def _torch_hardsigmoid(torch, x):
    """PyTorch's hardsigmoid as relu6(x + 3) / 6, the same values and the same gradient selection: its own
    float64 gradient multiplies by float32's 1/6 (a relative error of 3e-8), tinytensor's by 1/6."""
    return functional(torch).relu6(x + 3.0) / 6.0


def _np_hardswish(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _glu_sample(d: Draw) -> Sample:
    shape = list(d.shape(1))
    dim = d.integers(-len(shape), len(shape) - 1)
    shape[dim] = 2 * d.integers(1, 2)
    return Sample((d.array(tuple(shape)),), dict(dim=dim))


def _np_glu(x, dim):
    a, b = np.split(x, 2, axis=dim)
    return a * _np_sigmoid(b)


def _np_gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _np_erf(x / math.sqrt(2.0)))


def _sign_sample(d: Draw) -> Sample:
    """Floats away from 0 (gradient-checked: 0 everywhere); or zeros, inf and NaN, int64 or bool
    values, forward only (a finite difference across 0 is no derivative)."""
    shape = d.shape()
    kind = d.choice(("nonzero", "nonzero", "with_zeros", "nonfinite", "int64", "bool"))
    if kind == "int64":
        return Sample((d.indices(shape, 3, negative=True),))
    if kind == "bool":
        return Sample((d.mask(shape),))
    return Sample((d.array(shape, kind),), diff=None if kind == "nonzero" else (False,))


def _np_sign(x):
    """PyTorch's sign: NaN gives 0 (NumPy's gives NaN), a bool array stays itself."""
    if x.dtype == bool:
        return x.copy()
    return np.where(np.isnan(x), 0.0, np.sign(x)) if x.dtype.kind == "f" else np.sign(x)


def _atan2_sample(d: Draw) -> Sample:
    """Two broadcasting tensors; the first (y) >= 0.5 from 0, so that no central difference crosses the
    negative x-axis, where atan2 jumps by 2π."""
    sa, sb = d.broadcast_shapes(2)
    return Sample((d.array(sa, "nonzero"), d.array(sb)), dict(how=d.choice(("fn", "method"))))


def _nan_to_num_sample(d: Draw) -> Sample:
    """Finite values (gradient-checked: 1 everywhere), or a third inf, -inf or NaN (forward only). The
    replacements are given: the default ones, the dtype's limits, differ between float32 and the float64
    reference (tests/test_pytorch_names.py checks them against PyTorch)."""
    nonfinite = d.boolean()
    params = dict(zip(("nan", "posinf", "neginf"), d.choice(((0.0, 1e3, -1e3), (1.5, 7.0, -2.5)))))
    return Sample((d.array(d.shape(), "nonfinite" if nonfinite else "real"),), params,
                  diff=(False,) if nonfinite else None)


# ---- clamp, where, masked_fill ----------------------------------------------------------------

def _clamp_sample(d: Draw) -> Sample:
    lo, hi = d.choice(((-0.6, 0.6), (None, 0.6), (-0.6, None), (-0.6, -0.6)))
    return Sample((d.array(d.shape(), "distinct"),), dict(min=lo, max=hi))


def _where_sample(d: Draw) -> Sample:
    form = d.choice(("tensors", "tensors", "scalar_other", "scalar_input"))
    sc, sa, sb = d.broadcast_shapes(3)
    cond = d.mask(sc)
    if form == "tensors":
        return Sample((cond, d.array(sa), d.array(sb)), dict(form=form))
    return Sample((cond, d.array(sa)), dict(form=form))


def _where_args(xs, form):
    if form == "tensors":
        return xs
    cond, a = xs
    return (cond, a, -1.5) if form == "scalar_other" else (cond, 2.5, a)


def _masked_fill_sample(d: Draw) -> Sample:
    shape = d.shape()
    lead = d.integers(0, len(shape))
    mshape = tuple(1 if d.integers(0, 2) == 0 else s for s in shape[lead:])
    return Sample((d.array(shape), d.mask(mshape)), dict(value=d.choice((0.0, -1e4, 2.5))))


SPECS: list[OpSpec] = [
    binary("add", operator.add, tt.add),
    binary("sub", operator.sub, tt.sub),
    binary("mul", operator.mul, tt.mul),
    binary("div", operator.truediv, tt.div, dom_b="nonzero"),
    binary("pow", operator.pow, tt.pow, dom_a="positive", scalars=(2, 3, 1.5, 0.5)),
    binary("maximum", np.maximum, tt.maximum, "distinct", "distinct_shifted",
           scalars=(0.0, 0.25), torch_fn=lambda torch: torch.maximum, method="maximum"),
    binary("minimum", np.minimum, tt.minimum, "distinct", "distinct_shifted",
           scalars=(0.0, 0.25), torch_fn=lambda torch: torch.minimum, method="minimum"),
    binary("remainder", operator.mod, tt.remainder, sample=_division_sample,
           torch_fn=lambda torch: torch.remainder),
    binary("floor_divide", operator.floordiv, tt.floor_divide, sample=_division_sample,
           torch_fn=lambda torch: torch.floor_divide, differentiable=False, second_order=False),
    OpSpec("lerp", lambda a, b, w: tt.lerp(a, b, w), lambda a, b, w: a + w * (b - a), _lerp_sample,
           lambda torch, a, b, w: torch.lerp(a, b, w)),
    # ---- unary math -------------------------------------------------------------------------
    OpSpec("log1p", tt.log1p, np.log1p, unary_sample("positive"), lambda torch, x: torch.log1p(x)),
    OpSpec("expm1", tt.expm1, np.expm1, unary_sample(), lambda torch, x: torch.expm1(x)),
    OpSpec("reciprocal", tt.reciprocal, np.reciprocal, unary_sample("nonzero"),
           lambda torch, x: torch.reciprocal(x)),
    OpSpec("square", tt.square, np.square, unary_sample(), lambda torch, x: torch.square(x)),
    *(OpSpec(name, getattr(tt, name), getattr(np, name if name != "round" else "round"),
             unary_sample("offgrid"), (lambda n: lambda torch, x: getattr(torch, n)(x))(name))
      for name in ("floor", "ceil", "trunc", "round")),
    OpSpec("round_decimals", lambda x: tt.round(x * 0.1, decimals=1), lambda x: np.round(x * 0.1, 1),
           unary_sample("offgrid"), lambda torch, x: torch.round(x * 0.1, decimals=1), op="round"),
    OpSpec("neg", lambda x: -x, lambda x: -x, unary_sample(), same(lambda x: -x)),
    OpSpec("exp", tt.exp, np.exp, unary_sample(), lambda torch, x: torch.exp(x)),
    OpSpec("log", tt.log, np.log, unary_sample("positive"), lambda torch, x: torch.log(x)),
    OpSpec("sqrt", tt.sqrt, np.sqrt, unary_sample("positive"), lambda torch, x: torch.sqrt(x)),
    OpSpec("rsqrt", tt.rsqrt, lambda x: 1.0 / np.sqrt(x), unary_sample("positive"),
           lambda torch, x: torch.rsqrt(x)),
    OpSpec("sin", tt.sin, np.sin, unary_sample(), lambda torch, x: torch.sin(x)),
    OpSpec("cos", tt.cos, np.cos, unary_sample(), lambda torch, x: torch.cos(x)),
    OpSpec("tanh", tt.tanh, np.tanh, unary_sample(), lambda torch, x: torch.tanh(x)),
    OpSpec("sigmoid", tt.sigmoid, _np_sigmoid, unary_sample(), lambda torch, x: torch.sigmoid(x)),
    OpSpec("relu", tt.relu, lambda x: np.maximum(x, 0.0), unary_sample("distinct"),
           lambda torch, x: torch.relu(x)),
    OpSpec("gelu", lambda x: _gelu(x, "none"), lambda x: _np_gelu(x, "none"), unary_sample(),
           lambda torch, x: functional(torch).gelu(x)),
    OpSpec("gelu_tanh", lambda x: _gelu(x, "tanh"), lambda x: _np_gelu(x, "tanh"), unary_sample(),
           lambda torch, x: functional(torch).gelu(x, approximate="tanh"), op="gelu"),
    OpSpec("silu", tt.silu, lambda x: x * _np_sigmoid(x), unary_sample(),
           lambda torch, x: functional(torch).silu(x)),
    OpSpec("erf", tt.erf, _np_erf, unary_sample(), lambda torch, x: torch.erf(x)),
    OpSpec("log2", tt.log2, np.log2, unary_sample("positive"), lambda torch, x: torch.log2(x)),
    OpSpec("log10", tt.log10, np.log10, unary_sample("positive"), lambda torch, x: torch.log10(x)),
    OpSpec("exp2", tt.exp2, np.exp2, unary_sample(), lambda torch, x: torch.exp2(x)),
    # kinks and cut-overs at integers (0, ±1, the thresholds) or, scaled, half-integers (relu6's 6 at 4 · 1.5,
    # hardswish's ±3 at 2 · ±1.5): "offgrid" keeps >= 0.1 off both
    OpSpec("softplus", lambda x, beta, threshold: tt.softplus(x, beta, threshold), _np_softplus,
           _softplus_sample, lambda torch, x, beta, threshold: functional(torch).softplus(x, beta,
                                                                                        threshold)),
    OpSpec("logsigmoid", tt.logsigmoid, lambda x: -np.logaddexp(0.0, -x), unary_sample(),
           lambda torch, x: functional(torch).logsigmoid(x)),
    OpSpec("leaky_relu", lambda x, slope: tt.leaky_relu(x, slope),
           lambda x, slope: np.where(x > 0, x, slope * x), _slope_sample,
           lambda torch, x, slope: functional(torch).leaky_relu(x, slope)),
    OpSpec("elu", lambda x, alpha: tt.elu(x, alpha),
           lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x)), _alpha_sample,
           lambda torch, x, alpha: functional(torch).elu(x, alpha)),
    OpSpec("hardtanh", lambda x, lo, hi: tt.hardtanh(x, lo, hi), lambda x, lo, hi: np.clip(x, lo, hi),
           _hardtanh_sample, lambda torch, x, lo, hi: functional(torch).hardtanh(x, lo, hi)),
    OpSpec("relu6", lambda x: tt.relu6(x * 4.0), lambda x: np.clip(x * 4.0, 0.0, 6.0),
           unary_sample("offgrid"), lambda torch, x: functional(torch).relu6(x * 4.0)),
    OpSpec("hardswish", lambda x: tt.hardswish(x * 2.0), lambda x: _np_hardswish(x * 2.0),
           unary_sample("offgrid"), lambda torch, x: functional(torch).hardswish(x * 2.0)),
    OpSpec("selu", tt.selu, lambda x: _SELU[1] * np.where(x > 0, x, _SELU[0] * np.expm1(x)),
           unary_sample("distinct"), lambda torch, x: torch.selu(x)),
    OpSpec("celu", lambda x, alpha: tt.celu(x, alpha),
           lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x / alpha)), _alpha_sample,
           lambda torch, x, alpha: torch.celu(x, alpha)),
    OpSpec("softsign", tt.softsign, lambda x: x / (1 + np.abs(x)), unary_sample("distinct"),
           lambda torch, x: functional(torch).softsign(x)),
    OpSpec("tanhshrink", tt.tanhshrink, lambda x: x - np.tanh(x), unary_sample(),
           lambda torch, x: functional(torch).tanhshrink(x)),
    OpSpec("threshold", lambda x, threshold, value: tt.threshold(x, threshold, value),
           lambda x, threshold, value: np.where(x <= threshold, value, x), _threshold_sample,
           lambda torch, x, threshold, value: torch.threshold(x, threshold, value)),
    OpSpec("hardshrink", lambda x, lambd: tt.hardshrink(x, lambd),
           lambda x, lambd: np.where(np.abs(x) <= lambd, 0.0, x), _lambd_sample,
           lambda torch, x, lambd: functional(torch).hardshrink(x, lambd)),
    OpSpec("softshrink", lambda x, lambd: tt.softshrink(x, lambd),
           lambda x, lambd: np.where(np.abs(x) <= lambd, 0.0, x - np.sign(x) * lambd), _lambd_sample,
           lambda torch, x, lambd: functional(torch).softshrink(x, lambd)),
    OpSpec("hardsigmoid", lambda x: tt.hardsigmoid(x * 2.0), lambda x: np.clip(x * 2.0 + 3.0, 0.0, 6.0) / 6.0,
           unary_sample("offgrid"), lambda torch, x: _torch_hardsigmoid(torch, x * 2.0)),
    OpSpec("prelu", tt.prelu, _np_prelu, _prelu_sample, lambda torch, x, w: torch.prelu(x, w)),
    OpSpec("mish", tt.mish, lambda x: x * np.tanh(np.logaddexp(0.0, x)), unary_sample(),
           lambda torch, x: functional(torch).mish(x)),
    OpSpec("glu", lambda x, dim: tt.glu(x, dim), _np_glu, _glu_sample,
           lambda torch, x, dim: functional(torch).glu(x, dim)),
    OpSpec("atan2", lambda a, b, how: tt.atan2(a, b) if how == "fn" else a.atan2(b),
           lambda a, b, how: np.arctan2(a, b), _atan2_sample, lambda torch, a, b, how: torch.atan2(a, b)),
    OpSpec("nan_to_num", lambda x, nan, posinf, neginf: tt.nan_to_num(x, nan, posinf, neginf),
           lambda x, nan, posinf, neginf: np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf),
           _nan_to_num_sample,
           lambda torch, x, nan, posinf, neginf: torch.nan_to_num(x, nan, posinf, neginf)),
    # trigonometric and hyperbolic: the arguments scaled into each function's domain, off its poles
    OpSpec("tan", lambda x: tt.tan(x * 0.5), lambda x: np.tan(x * 0.5), unary_sample("nonzero"),
           lambda torch, x: torch.tan(x * 0.5)),
    *(OpSpec(name, lambda x, f=f: f(x * 0.4), lambda x, ref=ref: ref(x * 0.4), unary_sample("nonzero"),
             lambda torch, x, name=name: getattr(torch, name)(x * 0.4))
      for name, f, ref in (("asin", tt.asin, np.arcsin), ("acos", tt.acos, np.arccos),
                           ("atanh", tt.atanh, np.arctanh))),
    *(OpSpec(name, getattr(tt, name), ref, unary_sample(),
             lambda torch, x, name=name: getattr(torch, name)(x))
      for name, ref in (("atan", np.arctan), ("sinh", np.sinh), ("cosh", np.cosh), ("asinh", np.arcsinh),
                        ("erfc", _np_erfc), ("deg2rad", np.deg2rad), ("rad2deg", np.rad2deg))),
    OpSpec("acosh", lambda x: tt.acosh(x + 0.6), lambda x: np.arccosh(x + 0.6), unary_sample("positive"),
           lambda torch, x: torch.acosh(x + 0.6)),
    OpSpec("logit", lambda x, eps: tt.logit(x * 0.4, eps), lambda x, eps: np.log(x * 0.4 / (1 - x * 0.4)),
           _logit_sample, lambda torch, x, eps: torch.logit(x * 0.4, eps)),
    OpSpec("frac", tt.frac, lambda x: x - np.trunc(x), unary_sample("offgrid"),
           lambda torch, x: torch.frac(x)),
    OpSpec("hypot", tt.hypot, np.hypot, _binary_sample("nonzero", "nonzero"),
           lambda torch, a, b: torch.hypot(a, b)),
    OpSpec("logaddexp", tt.logaddexp, np.logaddexp, _binary_sample("real", "real"),
           lambda torch, a, b: torch.logaddexp(a, b)),
    OpSpec("xlogy", tt.xlogy, _np_xlogy, _binary_sample("with_zeros", "positive"),
           lambda torch, a, b: torch.xlogy(a, b)),
    OpSpec("abs", tt.abs, np.abs, unary_sample("distinct"), lambda torch, x: torch.abs(x)),
    OpSpec("sign", tt.sign, _np_sign, _sign_sample, same(lambda x: x.sign())),
    OpSpec("sgn", tt.sgn, _np_sign, _sign_sample, same(lambda x: x.sign())),  # (torch's sgn: sign, for reals)
    # ---- clamp, selection -------------------------------------------------------------------
    OpSpec("clamp", lambda x, min, max: tt.clamp(x, min, max), lambda x, min, max: np.clip(x, min, max),
           _clamp_sample, lambda torch, x, min, max: torch.clamp(x, min, max)),
    OpSpec("clip", lambda x, min, max: x.clip(min, max), lambda x, min, max: np.clip(x, min, max),
           _clamp_sample, lambda torch, x, min, max: torch.clip(x, min, max)),
    OpSpec("where", lambda *xs, form: tt.where(*_where_args(xs, form)),
           lambda *xs, form: np.where(*_where_args(xs, form)), _where_sample,
           lambda torch, *xs, form: torch.where(*_where_args(xs, form))),
    OpSpec("masked_fill", lambda x, m, value: x.masked_fill(m, value),
           lambda x, m, value: np.where(m, value, x), _masked_fill_sample,
           lambda torch, x, m, value: x.masked_fill(m, value)),
]
