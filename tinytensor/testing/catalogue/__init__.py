"""The op catalogue: one ``OpSpec`` per op, the contract every backend is checked against.

An entry names the op, gives the tinytensor callable, a NumPy reference (computed in float64 on the
same inputs), a PyTorch equivalent for the parity tests, and a sample generator that draws inputs
from the right domains (positive for log, distinct values where the op has kinks or ties, ...).

    spec.fn(*tensors, **sample.params)        # tinytensor
    spec.ref(*arrays, **sample.params)        # NumPy, float64
    spec.torch_ref(torch, *tensors, **params) # PyTorch (optional)

Float inputs of a sample are float64 arrays; the checker casts them to each dtype under test.
Integer and bool inputs (indices, masks) keep their dtype and never need gradients.

The entries live by op family, each with its samples and references beside it: ``elementwise``,
``comparison``, ``reductions``, ``scans``, ``sorting``, ``shape``, ``rearrange``, ``indexing``, ``linalg``,
``nn``, ``sampling`` (``base`` holds ``OpSpec`` and ``Sample``). Every public op
(``tinytensor.ops.__all__``) has a differentiable entry here, or is in ``NON_DIFFERENTIABLE`` and has a
forward-only one; tests/test_op_coverage.py checks both ways.
"""
from __future__ import annotations

from . import (
    comparison,
    elementwise,
    indexing,
    linalg,
    nn,
    rearrange,
    reductions,
    sampling,
    scans,
    shape,
    sorting,
)
from .base import OpSpec, Sample
from .indexing import Slot

OPS: list[OpSpec] = [
    *elementwise.SPECS,
    *comparison.SPECS,
    *linalg.SPECS,
    *reductions.SPECS,
    *scans.SPECS,
    *sorting.SPECS,
    *shape.SPECS,
    *rearrange.SPECS,
    *indexing.SPECS,
    *nn.SPECS,
    *sampling.SPECS,
]

# Public ops without a gradient, and why. Each has a forward-only entry (``differentiable=False``)
# above, checked on every device against NumPy; its results never require grad.
NON_DIFFERENTIABLE: dict[str, str] = {
    **{name: "a comparison: bool result" for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{name: "logic on bools: bool result"
       for name in ("logical_and", "logical_or", "logical_xor", "logical_not")},
    "isfinite": "a test of values: bool result",
    "isnan": "a test of values: bool result",
    "isinf": "a test of values: bool result",
    "isposinf": "a test of values: bool result",
    "isneginf": "a test of values: bool result",
    "signbit": "a test of values: bool result",
    "isclose": "a test of values: bool result",
    "count_nonzero": "a count: int64 result",
    "allclose": "a test of values: a Python bool",
    "floor_divide": "piecewise constant, and PyTorch's has no derivative either",
    "argmax": "an index: int64 result",
    "argmin": "an index: int64 result",
    "argsort": "indices: int64 result",
    "nonzero": "coordinates: int64 result",
    "multinomial": "drawn category indices: int64 result",
    "one_hot": "int64 result from int64 indices",
    "broadcast_shapes": "works on shapes (tuples of ints), not on tensors",
    "searchsorted": "insertion positions: int64 result",
    "bucketize": "bucket indices: int64 result",
    "unique": "distinct values, as PyTorch's (its unique has no derivative)",
}


def ops_by_name() -> dict:
    """The entries of ``OPS`` by entry name."""
    return {s.name: s for s in OPS}


__all__ = ["OPS", "NON_DIFFERENTIABLE", "OpSpec", "Sample", "Slot", "ops_by_name"]
