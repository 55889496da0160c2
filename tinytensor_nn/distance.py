"""CosineSimilarity and PairwiseDistance: PyTorch's constructor arguments and attributes; forward is
F.cosine_similarity / F.pairwise_distance.

    CosineSimilarity(dim, eps)           Σ x1·x2 / (max(‖x1‖, eps) · max(‖x2‖, eps))   along dim
    PairwiseDistance(p, eps, keepdim)    ‖x1 - x2 + eps‖_p                               along the last dim
"""
from __future__ import annotations

from tinytensor import Tensor

from . import functional as F
from .module import Module


class CosineSimilarity(Module):
    """The cosine of the angle between x1 and x2 along ``dim`` (after broadcasting), each norm held at
    ``eps`` or above; ``torch.nn.CosineSimilarity``.

    Examples:
        >>> nn.CosineSimilarity(dim=1)(tt.randn(8, 16), tt.randn(8, 16)).shape
        (8,)
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """The p-norm distance ‖x1 - x2 + eps‖_p between the rows (last dim) of x1 and x2, after
    broadcasting; ``torch.nn.PairwiseDistance`` (the p is stored as ``norm``, as PyTorch's).

    Examples:
        >>> nn.PairwiseDistance()(tt.randn(8, 16), tt.randn(8, 16)).shape
        (8,)
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


__all__ = ["CosineSimilarity", "PairwiseDistance"]
