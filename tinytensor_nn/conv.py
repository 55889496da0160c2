"""Conv1d and Conv2d: PyTorch's constructor arguments, parameters (weight (O, C/groups, *kernel), bias
(O,)), attributes and default init; forward is F.conv1d / F.conv2d.

    Conv2d(C, O, k)   x (B, C, H, W) -> (B, O, OH, OW)
                      y[b, o, oh, ow] = Σ_{c,i,j} w[o, c, i, j]·x[b, c, oh·sh + i·dh, ow·sw + j·dw] + b[o]
    Conv1d(C, O, k)   x (B, C, L)    -> (B, O, OL)
"""
from __future__ import annotations

import math

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .functional.conv import _conv, _ntuple
from .module import Module, Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What Conv1d and Conv2d share; ``n`` is the number of spatial dims."""

    n: int

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        name, n = type(self).__name__, self.n
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"{name}: padding_mode={padding_mode!r} is not supported yet, only 'zeros'; use "
                f"padding_mode='zeros', or pad the input yourself and build the layer with padding=0"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ntuple(name, "kernel_size", kernel_size, n, 1)
        self.stride = _ntuple(name, "stride", stride, n, 1)
        self.dilation = _ntuple(name, "dilation", dilation, n, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of 'same', "
                                 f"'valid'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                                 f"(stride={self.stride}); use stride=1, or give the padding as numbers")
            self.padding = padding
        else:
            self.padding = _ntuple(name, "padding", padding, n, 0)
        self.padding_mode = padding_mode
        self.transposed, self.output_padding = False, (0,) * n  # PyTorch's attributes of a plain conv
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(tt.zeros(*shape, dtype=dtype or tt.float32, device=device))
        if bias:
            self.bias = Parameter(tt.zeros(out_channels, dtype=dtype or tt.float32, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's init: W ~ kaiming_uniform(a=√5) = U(±1/√fan_in), b ~ U(±1/√fan_in),
        fan_in = C/groups · Π kernel."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return _conv(type(self).__name__, self.n, x, self.weight, self.bias, self.stride, self.padding,
                     self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (B, C, L) or (C, L) inputs: weight (O, C/groups, K), bias (O,)."""

    n = 1


class Conv2d(_ConvNd):
    """2-D convolution over (B, C, H, W) or (C, H, W) inputs: weight (O, C/groups, kh, kw), bias (O,)."""

    n = 2


__all__ = ["Conv1d", "Conv2d"]
