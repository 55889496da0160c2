"""``tinytensor_nn.functional`` (import as F): the stateless ops behind the layers, PyTorch's names."""
# ruff: noqa: I001
from .attention import scaled_dot_product_attention
from .basic import (
    dropout, embedding, gelu, layer_norm, linear, log_softmax, relu, rms_norm, sigmoid, silu, softmax, tanh,
)
from .losses import cross_entropy, mse_loss, nll_loss

__all__ = [
    "linear", "layer_norm", "rms_norm", "embedding", "dropout", "softmax", "log_softmax", "relu", "gelu",
    "silu", "sigmoid", "tanh", "cross_entropy", "nll_loss", "mse_loss", "scaled_dot_product_attention",
]
