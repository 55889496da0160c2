"""The loss Modules (PyTorch's names, constructor arguments and buffers): each holds its options and
calls its functional in ``forward(input, target)``.

    L1Loss, MSELoss                       |x - y|, (x - y)²
    SmoothL1Loss(beta), HuberLoss(delta)  quadratic near 0, linear beyond beta / delta
    KLDivLoss(log_target)                 q·(log q - log p) for input log p
    BCELoss(weight)                       -w·(y log x + (1 - y) log(1 - x))
    BCEWithLogitsLoss(weight, pos_weight) the same on logits, computed stably
    NLLLoss(weight, ignore_index)         -w[t]·x[t]
    CrossEntropyLoss(weight, ignore_index, label_smoothing)   NLL of log_softmax(x), class dim 1

A class ``weight`` (and ``pos_weight``) is a buffer, as in PyTorch: it moves with .to() and is in the
state_dict when given. ``size_average`` and ``reduce`` are PyTorch's deprecated spelling of reduction.
"""
from __future__ import annotations

from tinytensor import Tensor

from .functional import losses as L
from .module import Module


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = L.legacy_reduction(size_average, reduce, reduction)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """ℓ = |x - y|, reduced."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._l1_loss("L1Loss", input, target, self.reduction)


class MSELoss(_Loss):
    """ℓ = (x - y)², reduced."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._mse_loss("MSELoss", input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """ℓ = 0.5·d²/beta where d = |x - y| < beta, else d - 0.5·beta."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._smooth_l1_loss("SmoothL1Loss", input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """ℓ = 0.5·d² where d = |x - y| < delta, else delta·(d - 0.5·delta)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._huber_loss("HuberLoss", input, target, self.reduction, self.delta)


class KLDivLoss(_Loss):
    """ℓ = q·(log q - log p) for input log p and target q (log q with log_target); "batchmean" is the
    KL divergence per sample."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        L._check_reduction("KLDivLoss", self.reduction, L._REDUCTIONS + ("batchmean",))
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._kl_div("KLDivLoss", input, target, self.reduction, self.log_target)


class BCELoss(_WeightedLoss):
    """ℓ = -w·(y log x + (1 - y) log(1 - x)) for probabilities x (logs clamped at -100)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._binary_cross_entropy("BCELoss", input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """ℓ = -w·[p·y log σ(x) + (1 - y) log(1 - σ(x))] for logits x; pos_weight p weighs the positives."""

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight: Tensor | None = None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._binary_cross_entropy_with_logits("BCEWithLogitsLoss", input, target, self.weight,
                                                   self.reduction, self.pos_weight)


class NLLLoss(_WeightedLoss):
    """ℓ = -w[t]·x[t] for log-probabilities x (class dim 1); "mean" is weighted by w[t]."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._nll_loss("NLLLoss", input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """NLL of log_softmax(x) over the class dim 1; targets are class indices or class probabilities."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L._cross_entropy("CrossEntropyLoss", input, target, self.weight, self.ignore_index,
                                self.reduction, self.label_smoothing)


__all__ = [
    "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "KLDivLoss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss",
    "CrossEntropyLoss",
]
