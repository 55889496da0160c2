"""MaxPool1d/2d and AvgPool1d/2d: PyTorch's constructor arguments and attributes; forward is
F.max_pool1d/2d / F.avg_pool1d/2d. Inputs (B, C, L) or (C, L), (B, C, H, W) or (C, H, W); stride defaults
to kernel_size. AdaptiveAvgPool1d/2d choose the windows from the output size instead
(F.adaptive_avg_pool1d/2d)."""
from __future__ import annotations

from tinytensor import Tensor

from .functional.conv import _adaptive_avg_pool, _avg_pool, _max_pool, _ntuple, _pool_args
from .module import Module


class _MaxPool(Module):
    """What MaxPool1d and MaxPool2d share: ``n`` pooled dims, the arguments kept as given (PyTorch's)."""

    n: int

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        _pool_args(type(self).__name__, self.n, kernel_size, stride, padding, dilation)  # refuse bad ones now
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor):
        return _max_pool(type(self).__name__, self.n, x, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPool):
    """The maximum of every window of kernel_size along L (padding counts as -inf); with return_indices,
    forward also returns each maximum's index into L."""

    n = 1


class MaxPool2d(_MaxPool):
    """The maximum of every kh×kw window (padding counts as -inf); with return_indices, forward also
    returns each maximum's index into the flattened H·W input."""

    n = 2


class AvgPool1d(Module):
    """The mean of every window of kernel_size along L: Σ / window size (the zero padding counted when
    count_include_pad); kernel_size, stride and padding kept as 1-tuples, as PyTorch's."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        op = "AvgPool1d"
        _pool_args(op, 1, kernel_size, stride, padding, 1)  # refuse bad arguments now
        self.kernel_size = _ntuple(op, "kernel_size", kernel_size, 1, 1)
        self.stride = _ntuple(op, "stride", stride if stride is not None else kernel_size, 1, 1)
        self.padding = _ntuple(op, "padding", padding, 1, 0)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return _avg_pool("AvgPool1d", 1, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                         self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """The mean of every kh×kw window: Σ / window size (zero padding counted when count_include_pad),
    or Σ / divisor_override."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        _pool_args("AvgPool2d", 2, kernel_size, stride, padding, 1)  # refuse bad arguments now
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return _avg_pool("AvgPool2d", 2, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                         self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptiveAvgPool(Module):
    """What AdaptiveAvgPool1d and AdaptiveAvgPool2d share: ``n`` pooled dims, output_size kept as given."""

    n: int

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return _adaptive_avg_pool(type(self).__name__, self.n, x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    """(B, C, L) or (C, L) → (..., output_size): the mean of each of output_size bins, bin i spanning
    ⌊i·L/out⌋ : ⌈(i+1)·L/out⌉, whatever L is; ``torch.nn.AdaptiveAvgPool1d``."""

    n = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    """(B, C, H, W) or (C, H, W) → (..., OH, OW): the mean of each of OH × OW bins, whatever H and W are;
    output_size an int or a pair, None keeping that size (``AdaptiveAvgPool2d(1)``: global average
    pooling); ``torch.nn.AdaptiveAvgPool2d``.

    Examples:
        >>> nn.AdaptiveAvgPool2d((2, None))(tt.randn(8, 3, 7, 5)).shape
        (8, 3, 2, 5)
    """

    n = 2


__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d"]
