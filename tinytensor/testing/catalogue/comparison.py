"""Comparisons, logic and tests of values (eq … ge, logical_*, isfinite, isnan): forward only.

Their results are bool and never carry a graph, whatever their inputs require; each is declared in
``NON_DIFFERENTIABLE`` (catalogue/__init__.py) with the reason. (``sign`` is not here: like PyTorch's,
its float result carries a graph with a zero gradient; its entry is in ``elementwise``.)
"""
from __future__ import annotations

import operator

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample
from .elementwise import binary

FORWARD_ONLY = dict(differentiable=False, second_order=False)


def _compare_sample(d: Draw) -> Sample:
    """Float tensors with ties and the odd inf/NaN, int64 tensors, or a tensor and a scalar."""
    form = d.choice(("tensors", "tensors", "scalar_right", "scalar_left"))
    how = d.choice(("op", "fn"))
    s = d.choice((0, 1, 0.5, -1.0))
    domain = d.choice(("ties", "ties", "nonfinite"))
    ints = d.integers(0, 3) == 0

    def array(shape):
        return d.indices(shape, 2, negative=True) if ints else d.array(shape, domain)

    if form == "tensors":
        sa, sb = d.broadcast_shapes(2)
        return Sample((array(sa), array(sb)), dict(form=form, s=s, how=how))
    return Sample((array(d.shape()),), dict(form=form, s=s, how=how))


def _logical_sample(d: Draw) -> Sample:
    """Two broadcasting bool masks, or a mask and a Python bool."""
    form = d.choice(("tensors", "tensors", "scalar_right", "scalar_left"))
    how = d.choice(("op", "fn")) if form != "scalar_left" else "fn"  # `True & t`: no Tensor.__rand__
    params = dict(form=form, s=d.boolean(), how=how)
    if form == "tensors":
        sa, sb = d.broadcast_shapes(2)
        return Sample((d.mask(sa), d.mask(sb)), params)
    return Sample((d.mask(d.shape()),), params)


def _nudged(x, by=1e-6):
    """x moved by about isclose's tolerance: some elements stay close, some do not. Integer x is moved by a
    whole 1 in its own dtype (PyTorch's isclose takes two tensors of one dtype)."""
    floating = getattr(x.dtype, "is_floating_point", None)
    if not (floating if floating is not None else x.dtype.kind == "f"):
        return x + 1  # (the samples are floats or int64)
    return x * (1 + by) + 1e-9


def _values_sample(domain):
    """Floats from ``domain``, or now and then int64 values."""

    def sample(d: Draw) -> Sample:
        shape = d.shape()
        if d.integers(0, 3) == 0:
            return Sample((d.indices(shape, 3, negative=True),))
        return Sample((d.array(shape, domain),))

    return sample


def _compare(name, op):
    return binary(name, op, getattr(tt, name), sample=_compare_sample, **FORWARD_ONLY)


def _logical(name, op):
    return binary(name, op, getattr(tt, name), sample=_logical_sample, **FORWARD_ONLY)


SPECS: list[OpSpec] = [
    _compare("eq", operator.eq),
    _compare("ne", operator.ne),
    _compare("lt", operator.lt),
    _compare("le", operator.le),
    _compare("gt", operator.gt),
    _compare("ge", operator.ge),
    _logical("logical_and", operator.and_),
    _logical("logical_or", operator.or_),
    _logical("logical_xor", operator.xor),
    OpSpec("logical_not", lambda m, how: ~m if how == "op" else tt.logical_not(m),
           lambda m, how: np.logical_not(m),
           lambda d: Sample((d.mask(d.shape()),), dict(how=d.choice(("op", "fn")))),
           lambda torch, m, how: torch.logical_not(m), **FORWARD_ONLY),
    OpSpec("isfinite", tt.isfinite, np.isfinite, _values_sample("nonfinite"),
           lambda torch, x: torch.isfinite(x), **FORWARD_ONLY),
    OpSpec("isnan", lambda x: x.isnan(), np.isnan, _values_sample("nonfinite"),
           lambda torch, x: torch.isnan(x), **FORWARD_ONLY),
    OpSpec("isinf", lambda x: x.isinf(), np.isinf, _values_sample("nonfinite"),
           lambda torch, x: torch.isinf(x), **FORWARD_ONLY),
    OpSpec("isposinf", tt.isposinf, np.isposinf, _values_sample("nonfinite"),
           lambda torch, x: torch.isposinf(x), **FORWARD_ONLY),
    OpSpec("isneginf", tt.isneginf, np.isneginf, _values_sample("nonfinite"),
           lambda torch, x: torch.isneginf(x), **FORWARD_ONLY),
    OpSpec("signbit", tt.signbit, np.signbit, _values_sample("nonfinite"),
           lambda torch, x: torch.signbit(x), **FORWARD_ONLY),
    OpSpec("isclose", lambda x: tt.isclose(x, _nudged(x)), lambda x: np.isclose(x, _nudged(x)),
           _values_sample("nonfinite"), lambda torch, x: torch.isclose(x, _nudged(x)), **FORWARD_ONLY),
    OpSpec("allclose", lambda x: tt.tensor(tt.allclose(x, _nudged(x, 1e-3)), device=x.device),
           lambda x: np.array(np.allclose(x, _nudged(x, 1e-3))), _values_sample("nonfinite"),
           lambda torch, x: torch.tensor(torch.allclose(x, _nudged(x, 1e-3))), **FORWARD_ONLY),
]
