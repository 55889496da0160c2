"""BatchNorm1d and BatchNorm2d (Ioffe & Szegedy, 2015) with PyTorch's arguments, parameters and buffers
(weight, bias, running_mean, running_var, num_batches_tracked), so PyTorch state_dicts load;
bias=False (keyword-only, as PyTorch) keeps the scale without the shift.

    y = (x - μ_c) / √(σ²_c + eps) · weight_c + bias_c        per channel c (dim 1)

train(): μ, σ² of the batch (over every dim but the channels); the running stats move toward them,
r ← (1 - momentum)·r + momentum·s (the unbiased variance), or, with momentum=None, to the cumulative
average of every batch so far. eval(): μ, σ² are the running stats (the batch's when
track_running_stats=False).

GroupNorm (Wu & He, 2018) normalises each sample alone, over groups of channels, the same in train() and
eval() (no running stats):

    y = (x - μ_g) / √(σ²_g + eps) · weight_c + bias_c        μ_g, σ²_g over group g of one sample
"""
from __future__ import annotations

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .functional.basic import _batch_norm, group_norm
from .layers import _affine_parameters, _reset_affine
from .module import Module, Parameter


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input dims they accept."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtype or tt.float32
        if affine:
            self.weight = Parameter(tt.ones(num_features, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(tt.zeros(num_features, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", tt.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", tt.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tt.tensor(0, dtype=tt.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """running_mean ← 0, running_var ← 1, num_batches_tracked ← 0 (when the statistics are tracked)."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """`reset_running_stats`, then weight ones and bias zeros."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input_dim(self, x: Tensor) -> None:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the cumulative average: the k-th batch counts 1/k
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        # running stats are read in eval() and updated in train() only when they are tracked
        track = not self.training or self.track_running_stats
        return _batch_norm(type(self).__name__, x, self.running_mean if track else None,
                           self.running_var if track else None, self.weight, self.bias, use_batch_stats,
                           factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (B, C) or (B, C, L) inputs (channels at dim 1)."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim not in (2, 3):
            raise ValueError(f"BatchNorm1d: expected 2-D (B, C) or 3-D (B, C, L) input, got shape {x.shape} "
                             f"({x.ndim}-D); use BatchNorm2d for (B, C, H, W) images")


class BatchNorm2d(_BatchNorm):
    """Batch norm over (B, C, H, W) inputs (channels at dim 1)."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4-D (B, C, H, W) input, got shape {x.shape} ({x.ndim}-D)"
                             + ("; add a batch dim with x.unsqueeze(0)" if x.ndim == 3 else ""))


class GroupNorm(Module):
    """Group norm over (B, C, ...) inputs: the C channels split into num_groups groups, each normalised
    over its channels and positions, then a per-channel scale and shift (weight ones, bias zeros);
    ``torch.nn.GroupNorm``. GroupNorm(1, C) normalises whole samples, GroupNorm(C, C) each channel.

    Examples:
        >>> gn = nn.GroupNorm(2, 6)
        >>> gn(tt.randn(4, 6, 5, 5)).shape, gn.weight.shape
        ((4, 6, 5, 5), (6,))
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine_parameters(self, (num_channels,), affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight ones, bias zeros."""
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm"]
