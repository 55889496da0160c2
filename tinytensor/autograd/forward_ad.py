"""Forward-mode AD with PyTorch's API: dual tensors carry a tangent beside their value.

    with forward_ad.dual_level():
        x = forward_ad.make_dual(primal, tangent)   # x = primal + tangent·ε, with ε² = 0
        y = f(x)
        value, jvp = forward_ad.unpack_dual(y)     # f(primal) and J_f(primal) · tangent

Every op's Function has a ``jvp`` beside its ``backward`` (the tangent rule, written with Tensor ops):
one pass through f gives the value and the Jacobian-vector product together, at about the cost of f
itself. Levels nest: a tangent can have a tangent of its own at an outer level.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

from . import dual
from .function import Function
from .tensor_core import TensorCore

__all__ = ["dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor", "enter_dual_level",
           "exit_dual_level"]

_ids = itertools.count()


class UnpackedDualTensor(NamedTuple):
    """What unpack_dual returns: the value and its tangent (None where it has none)."""

    primal: object
    tangent: object


class dual_level:
    """Open a new dual level for the block: make_dual inside it attaches tangents at this level, and
    they are gone once the block ends (unpack_dual then gives tangent None)."""

    def __enter__(self) -> int:
        self.level = enter_dual_level()
        return self.level

    def __exit__(self, *exc):
        exit_dual_level(level=self.level)


def enter_dual_level() -> int:
    """Open a dual level (innermost from now on) and return it."""
    level = next(_ids)
    dual.open_levels.set(dual.open_levels.get() + (level,))
    dual.propagating.set(dual.propagating.get() + (level,))
    return level


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the innermost dual level (``level``, when given, must be it)."""
    levels = dual.open_levels.get()
    if not levels:
        raise RuntimeError("exit_dual_level: no dual level is open")
    if level is not None and level != levels[-1]:
        raise RuntimeError(f"exit_dual_level: level {level} is not the innermost open level ({levels[-1]}); "
                           f"close dual levels in the reverse order of opening them")
    dual.open_levels.set(levels[:-1])
    dual.propagating.set(tuple(lv for lv in dual.propagating.get() if lv != levels[-1]))


def _level(level, op: str) -> int:
    levels = dual.open_levels.get()
    if level is None:
        if not levels:
            raise RuntimeError(f"{op}: no dual level is open; call it inside `with forward_ad.dual_level():`")
        return levels[-1]
    if level not in levels:
        raise RuntimeError(f"{op}: dual level {level} is not open (open levels: {list(levels)}); it ended "
                           f"with its `with dual_level()` block")
    return level


class MakeDual(Function):
    """The primal, viewed as a new tensor whose tangent at ``level`` is ``tangent``; gradients pass
    to the primal (the tangent's own graph gives the tangent's gradient)."""

    is_view = True
    creates_tangent = True

    def forward(self, x, tangent, level):
        return x

    def backward(self, gy):
        return gy, None, None

    def jvp(self, tx, t_tangent, _):
        return self.primals[1] if self.level == self.primals[2] else tx


class DropTangent(Function):
    """The primal of a dual tensor: the same values, without the tangent at ``level``."""

    is_view = True

    def forward(self, x, level):
        return x

    def backward(self, gy):
        return gy, None

    def jvp(self, tx, _):
        return None if self.level == self.primals[1] else tx


def check_tangent(who: str, primal, tangent, primal_name: str = "the primal",
                  tangent_name: str = "the tangent") -> None:
    """Raise unless ``tangent`` has ``primal``'s shape, dtype and device (``who`` names the call)."""
    if tuple(tangent.shape) != tuple(primal.shape):
        raise ValueError(f"{who}: {tangent_name} has shape {tuple(tangent.shape)}, but {primal_name} has "
                         f"shape {tuple(primal.shape)}; they must match")
    if tangent.dtype is not primal.dtype:
        raise TypeError(f"{who}: {tangent_name} is {tangent.dtype.name}, but {primal_name} is "
                        f"{primal.dtype.name}; convert it with .to(tt.{primal.dtype.name})")
    if tangent.device != primal.device:
        raise RuntimeError(f"{who}: {tangent_name} is on {tangent.device}, but {primal_name} is on "
                           f"{primal.device}; move it with .to({primal.device!r})")


def make_dual(tensor, tangent, *, level: int | None = None):
    """A view of ``tensor`` that carries ``tangent`` (same shape, dtype and device) at the dual level."""
    level = _level(level, "make_dual")
    for name, t in (("tensor", tensor), ("tangent", tangent)):
        if not isinstance(t, TensorCore):
            raise TypeError(f"make_dual: {name} must be a Tensor, got {type(t).__name__}")
    if not tensor.dtype.is_floating_point:
        raise TypeError(f"make_dual: the primal must be floating point to have a tangent, got "
                        f"{tensor.dtype.name}")
    check_tangent("make_dual", tensor, tangent)
    if tangent_of(tensor, level) is not None:
        raise RuntimeError(f"make_dual: the tensor already has a tangent at dual level {level}; unpack it "
                           f"first (unpack_dual(x).primal), or open a new level for a second tangent")
    return MakeDual.apply(tensor, tangent, level)


def unpack_dual(tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """(primal, tangent) of a dual tensor at the level (innermost by default); tangent None if it has none."""
    levels = dual.open_levels.get()
    if level is None and not levels or level is not None and level not in levels:
        return UnpackedDualTensor(tensor, None)  # no such level (any more): no tangent
    level = _level(level, "unpack_dual")
    if not isinstance(tensor, TensorCore):
        raise TypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    tangent = tangent_of(tensor, level)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(DropTangent.apply(tensor, level), tangent)


def tangent_of(tensor, level: int):
    """The tangent of ``tensor`` at ``level``, or None (a batched tensor of func.vmap answers for its
    own: its tangent is batched too)."""
    own = getattr(type(tensor), "_tangent_at", None)
    if own is not None:
        return own(tensor, level)
    return tensor._fw.get(level) if tensor._fw else None
