"""ConstantPad1d/2d/3d and ZeroPad1d/2d/3d: PyTorch's constructor arguments, attributes and reprs; forward
is F.pad. ``padding`` is an int (every side) or the widths (left, right[, top, bottom[, front, back]]),
from the last dim backwards; a negative width crops. ReflectionPad and ReplicationPad are not built:
F.pad has only mode='constant'."""
from __future__ import annotations

import math

from tinytensor import Tensor

from . import functional as F
from .functional.conv import _ntuple
from .module import Module


class _ConstantPad(Module):
    """What the ConstantPad classes share: the last ``n`` dims padded with ``value``."""

    n: int

    def __init__(self, padding, value: float):
        super().__init__()
        self.padding = _ntuple(type(self).__name__, "padding", padding, 2 * self.n, -math.inf)  # crops too
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < self.n:
            raise ValueError(f"{type(self).__name__}: padding {self.padding} pads the last {self.n} dims, "
                             f"got an input of shape {x.shape}")
        return F.pad(x, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPad):
    """Pad the last dim with ``value``: padding (left, right) or an int; ``torch.nn.ConstantPad1d``."""

    n = 1


class ConstantPad2d(_ConstantPad):
    """Pad the last two dims with ``value``: padding (left, right, top, bottom) or an int;
    ``torch.nn.ConstantPad2d``."""

    n = 2


class ConstantPad3d(_ConstantPad):
    """Pad the last three dims with ``value``: padding (left, right, top, bottom, front, back) or an int;
    ``torch.nn.ConstantPad3d``."""

    n = 3


class _ZeroPad(Module):
    """A ConstantPad with value 0, shown by its padding alone (PyTorch's ZeroPad repr)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPad, ConstantPad1d):
    """Pad the last dim with zeros: padding (left, right) or an int; ``torch.nn.ZeroPad1d``."""


class ZeroPad2d(_ZeroPad, ConstantPad2d):
    """Pad the last two dims with zeros: padding (left, right, top, bottom) or an int;
    ``torch.nn.ZeroPad2d``.

    Examples:
        >>> nn.ZeroPad2d((1, 1, 2, 0))(tt.ones(1, 3, 4, 4)).shape
        (1, 3, 6, 6)
    """


class ZeroPad3d(_ZeroPad, ConstantPad3d):
    """Pad the last three dims with zeros: padding (left, right, top, bottom, front, back) or an int;
    ``torch.nn.ZeroPad3d``."""


__all__ = ["ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]
