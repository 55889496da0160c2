"""Upsample, UpsamplingNearest2d and UpsamplingBilinear2d (forward is F.interpolate), PixelShuffle and
PixelUnshuffle (F.pixel_shuffle / F.pixel_unshuffle): PyTorch's constructor arguments, attributes and
reprs."""
from __future__ import annotations

from tinytensor import Tensor

from . import functional as F
from .functional.conv import _interpolate
from .module import Module


class Upsample(Module):
    """Resample (B, C, L) or (B, C, H, W) to ``size``, or ⌊in·scale_factor⌋ per spatial dim, with
    F.interpolate's modes ('nearest', 'nearest-exact', 'linear', 'bilinear') and coordinates;
    ``torch.nn.Upsample``.

    Examples:
        >>> nn.Upsample(scale_factor=2, mode="bilinear")(tt.ones(1, 3, 4, 5)).shape
        (1, 3, 8, 10)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return _interpolate(type(self).__name__, x, self.size, self.scale_factor, self.mode,
                            self.align_corners, self.recompute_scale_factor)

    def extra_repr(self) -> str:
        shown = f"size={self.size!r}" if self.scale_factor is None else f"scale_factor={self.scale_factor!r}"
        return f"{shown}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Upsample with mode='nearest' for (B, C, H, W); ``torch.nn.UpsamplingNearest2d``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample with mode='bilinear' and align_corners=True for (B, C, H, W) (the corner pixels kept);
    ``torch.nn.UpsamplingBilinear2d``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(*, C·r², H, W) -> (*, C, H·r, W·r), r = upscale_factor: each group of r² channels becomes an r×r
    block of pixels (F.pixel_shuffle); ``torch.nn.PixelShuffle``."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H·r, W·r) -> (*, C·r², H, W), r = downscale_factor: the inverse of PixelShuffle
    (F.pixel_unshuffle); ``torch.nn.PixelUnshuffle``."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle"]
