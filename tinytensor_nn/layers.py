"""The basic layers, with PyTorch's constructor arguments, parameter names, shapes and default init.

    Linear(in, out)        weight (out, in), bias (out,)    y = x Wᵀ + b
    Embedding(num, dim)    weight (num, dim)                y = W[idx]
    LayerNorm(shape)       weight, bias (shape)             y = (x - μ)/√(σ² + eps)·w + b
    RMSNorm(shape)         weight (shape)                   y = x/√(mean(x²) + eps)·w
    Flatten(start, end)    (B, C, H, W) -> (B, C·H·W)       Unflatten(dim, sizes): the inverse
    Dropout, Dropout1d, Dropout2d, Identity, ReLU, GELU, SiLU, Tanh, Sigmoid, Softmax, LogSoftmax
"""
from __future__ import annotations

import math

import tinytensor as tt
from tinytensor import Tensor

from . import functional as F
from . import init
from .module import Module, Parameter


def _empty(*shape, device=None, dtype=None) -> Parameter:
    """An uninitialised (zero) parameter; the layer's reset_parameters() fills it."""
    return Parameter(tt.zeros(*shape, dtype=dtype or tt.float32, device=device))


def _affine_parameters(module: Module, shape: tuple, affine: bool, bias: bool, device, dtype) -> None:
    """A norm layer's weight and bias of ``shape`` (filled by reset_parameters), or None for each it
    lacks: both without ``affine``, the bias without ``bias``."""
    if affine:
        module.weight = _empty(*shape, device=device, dtype=dtype)
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = _empty(*shape, device=device, dtype=dtype)
    else:
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    """Weight ones, bias zeros (those the module has)."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


def _shape(normalized_shape) -> tuple:
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)


class Identity(Module):
    """y = x (accepts and ignores any constructor arguments, as PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """y = x Wᵀ + b, on the last dimension: (..., in_features) → (..., out_features); ``torch.nn.Linear``.

    Init: W ~ kaiming_uniform(a=√5) = U(±1/√in), b ~ U(±1/√in).

    Args:
        in_features: The size of each input's last dimension.
        out_features: The size of each output's last dimension.
        bias: Whether to add the learnable bias b.
        device: Where the parameters live (None: the default device).
        dtype: The parameters' dtype (None: float32).

    Examples:
        >>> layer = nn.Linear(4, 2)
        >>> layer.weight.shape, layer.bias.shape
        ((2, 4), (2,))
        >>> layer(tt.randn(8, 3, 4)).shape
        (8, 3, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty(out_features, in_features, device=device, dtype=dtype)
        if bias:
            self.bias = _empty(out_features, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the parameters again from their initial distributions."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)  # (..., in) -> (..., out)

    def extra_repr(self) -> str:
        has_bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={has_bias}"


class Embedding(Module):
    """A lookup table of num_embeddings vectors. Init: N(0, 1); the padding_idx row is zero and gets
    no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 device=None, dtype=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be in [-{num_embeddings}, {num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = _empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the weight again from N(0, 1) (the padding row zero)."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with tt.no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, idx: Tensor) -> Tensor:
        return F.embedding(idx, self.weight, self.padding_idx)  # (B, T) -> (B, T, dim)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """Normalise over the trailing normalized_shape dims, then scale and shift (weight ones, bias zeros)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight ones, bias zeros."""
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(Module):
    """x / √(mean(x²) + eps) · weight (Zhang & Sennrich, 2019); eps=None uses the dtype's epsilon."""

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = _empty(*self.normalized_shape, device=device, dtype=dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight ones."""
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Flatten(Module):
    """Dims start_dim..end_dim merged into one: (B, C, H, W) -> (B, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Dim ``dim`` split into ``unflattened_size`` (one entry may be -1): (B, 12) -> (B, 3, 4)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple or list of ints, got "
                            f"{type(unflattened_size).__name__}")
        for i, n in enumerate(unflattened_size):
            if not isinstance(n, int) or isinstance(n, bool):
                raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, but found element of "
                                f"type {type(n).__name__} at pos {i}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return tt.unflatten(x, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Dropout(Module):
    """Zero elements with probability p while training (survivors scaled by 1/(1-p)); identity in eval()."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout1d(Dropout):
    """Zero whole channels x[b, c, :] with probability p while training (survivors scaled by 1/(1-p));
    identity in eval(); input (B, C, L) or (C, L)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout1d(x, self.p, self.training)


class Dropout2d(Dropout):
    """Zero whole channels x[b, c, :, :] with probability p while training (survivors scaled by 1/(1-p));
    identity in eval(); input (B, C, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training)


class _Activation(Module):
    """An elementwise activation; ``inplace=True`` overwrites its input, as PyTorch's do. ``extra_repr``
    shows the attributes named in ``shown``, as PyTorch's repr."""

    shown: tuple = ()

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        parts = [f"{n}={getattr(self, n)}" for n in self.shown]
        return ", ".join(parts + (["inplace=True"] if getattr(self, "inplace", False) else []))


class ReLU(_Activation):
    """max(0, x), elementwise; ``torch.nn.ReLU``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, self.inplace)


class LeakyReLU(_Activation):
    """x where x > 0, else negative_slope · x; ``torch.nn.LeakyReLU``."""
    shown = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope, self.inplace)


class ELU(_Activation):
    """x where x > 0, else α(eˣ - 1); ``torch.nn.ELU``."""
    shown = ("alpha",)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha, self.inplace)


class Hardtanh(_Activation):
    """x limited to [min_val, max_val]; ``torch.nn.Hardtanh``."""
    shown = ("min_val", "max_val")

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val, self.inplace)


class ReLU6(_Activation):
    """min(max(x, 0), 6); ``torch.nn.ReLU6``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x, self.inplace)


class Hardswish(_Activation):
    """x · relu6(x + 3) / 6; ``torch.nn.Hardswish``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.hardswish(x, self.inplace)

    def extra_repr(self) -> str:
        return ""  # PyTorch's repr of Hardswish leaves inplace out


class Mish(_Activation):
    """x · tanh(softplus(x)); ``torch.nn.Mish``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x, self.inplace)


class Softplus(_Activation):
    """log(1 + e^(βx)) / β, linear where βx > threshold; ``torch.nn.Softplus``."""
    shown = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)


class LogSigmoid(_Activation):
    """log σ(x); ``torch.nn.LogSigmoid``."""
    def __init__(self):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return F.logsigmoid(x)


class GLU(_Activation):
    """a · σ(b) for the halves a, b of the input along dim; ``torch.nn.GLU``."""
    shown = ("dim",)

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(x, self.dim)


class GELU(Module):
    """x Φ(x), or its tanh approximation with approximate="tanh"."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Activation):
    """x · σ(x) (swish), elementwise; ``torch.nn.SiLU``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x, self.inplace)


class Tanh(Module):
    """tanh(x), elementwise; ``torch.nn.Tanh``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e⁻ˣ), elementwise; ``torch.nn.Sigmoid``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class SELU(_Activation):
    """scale · elu(x, α) with the self-normalising constants; ``torch.nn.SELU``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x, self.inplace)


class CELU(_Activation):
    """x where x > 0, else α(e^(x/α) - 1); ``torch.nn.CELU``."""
    shown = ("alpha",)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.celu(x, self.alpha, self.inplace)


class Threshold(_Activation):
    """x where x > threshold, else value; ``torch.nn.Threshold``."""
    shown = ("threshold", "value")

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__(inplace)
        self.threshold, self.value = threshold, value

    def forward(self, x: Tensor) -> Tensor:
        return F.threshold(x, self.threshold, self.value, self.inplace)


class Hardsigmoid(_Activation):
    """relu6(x + 3) / 6; ``torch.nn.Hardsigmoid`` (whose repr never shows inplace)."""
    def forward(self, x: Tensor) -> Tensor:
        return F.hardsigmoid(x, self.inplace)

    def extra_repr(self) -> str:
        return ""


class Softsign(_Activation):
    """x / (1 + |x|); ``torch.nn.Softsign``."""
    def __init__(self):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return F.softsign(x)


class Tanhshrink(_Activation):
    """x - tanh(x); ``torch.nn.Tanhshrink``."""
    def __init__(self):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return F.tanhshrink(x)


class Hardshrink(_Activation):
    """0 where -λ ≤ x ≤ λ, else x; ``torch.nn.Hardshrink``."""
    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return F.hardshrink(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """x - λ above λ, x + λ below -λ, 0 between; ``torch.nn.Softshrink``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.softshrink(x, self.lambd)


class PReLU(Module):
    """x where x > 0, else a · x with a learned: one ``a`` for all channels, or one per channel (dim 1),
    each starting at ``init``; ``torch.nn.PReLU``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = _empty(num_parameters, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight := init."""
        init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softmax(Module):
    """exp(xᵢ) / Σⱼ exp(xⱼ) along ``dim`` (default: the last); ``torch.nn.Softmax``."""
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """xᵢ - log Σⱼ exp(xⱼ) along ``dim`` (default: the last); ``torch.nn.LogSoftmax``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


class Softmin(Softmax):
    """softmax(-x) along ``dim`` (default: the last); ``torch.nn.Softmin``."""
    def forward(self, x: Tensor) -> Tensor:
        return F.softmin(x, self.dim)


class Softmax2d(Module):
    """softmax over the channels (dim -3) of (N, C, H, W) or (C, H, W) input; ``torch.nn.Softmax2d``."""
    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected a 3-d or 4-d input (C, H, W) or (N, C, H, W), got shape "
                             f"{tuple(x.shape)}")
        return F.softmax(x, -3)


__all__ = [
    "Identity", "Linear", "Embedding", "LayerNorm", "RMSNorm", "Flatten", "Unflatten", "Dropout", "ReLU",
    "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "LeakyReLU", "ELU", "Hardtanh", "ReLU6",
    "Hardswish", "Mish", "Softplus", "LogSigmoid", "GLU", "SELU", "CELU", "Threshold", "Hardsigmoid",
    "Softsign", "Tanhshrink", "Hardshrink", "Softshrink", "PReLU", "Softmin", "Softmax2d",
    "Dropout1d", "Dropout2d",
]
