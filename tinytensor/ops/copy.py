"""Copies: within a device (clone) and between devices (the only way data moves between them)."""
from __future__ import annotations

from ..autograd.function import Function


class Clone(Function):
    def forward(self, x):
        return self.xp.asarray(x, copy=True)

    def backward(self, gy):
        return gy

    def jvp(self, tx):
        return tx


class ToDevice(Function):
    """An explicit copy to another backend's device; the gradient is copied back."""

    def forward(self, x, target):
        self.source, self.backend = self.backend, target  # the output lives on the target
        return target.from_host(self.source.to_host(x))

    def backward(self, gy):
        return to_backend(gy, self.source), None

    def jvp(self, tx, _):
        return to_backend(tx, self.backend)


def clone(x):
    """A copy with its own memory; gradients flow through it."""
    return Clone.apply(x)


def to_backend(x, backend):
    """x on ``backend``'s device (x itself if it is there already); differentiable."""
    return x if x.backend is backend else ToDevice.apply(x, backend)
