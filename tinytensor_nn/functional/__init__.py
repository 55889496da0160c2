"""``tinytensor_nn.functional`` (import as F): the stateless ops behind the layers, PyTorch's names."""
# ruff: noqa: I001
from .attention import scaled_dot_product_attention
from .basic import (
    batch_norm, cosine_similarity, dropout, elu, embedding, gelu, glu, group_norm, hardswish, hardtanh,
    layer_norm, leaky_relu, linear, log_softmax, logsigmoid, mish, normalize, one_hot, pad, pairwise_distance,
    relu, relu6, rms_norm, sigmoid, silu, softmax, softplus, tanh, selu, celu, threshold, hardsigmoid,
    softsign, tanhshrink, hardshrink, softshrink, prelu, softmin, relu_, elu_, leaky_relu_, hardtanh_, selu_,
    celu_, threshold_, dropout1d, dropout2d,
)
from .conv import (
    adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d, interpolate, max_pool1d,
    max_pool2d, pixel_shuffle, pixel_unshuffle,
)
from .losses import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss,
    mse_loss, nll_loss, smooth_l1_loss,
)

__all__ = [
    "linear", "layer_norm", "rms_norm", "batch_norm", "group_norm", "normalize", "cosine_similarity",
    "pairwise_distance", "pad", "one_hot", "embedding", "dropout", "softmax", "log_softmax", "relu", "gelu",
    "silu", "sigmoid", "tanh", "leaky_relu", "elu", "hardtanh", "relu6", "hardswish", "mish", "softplus",
    "logsigmoid", "glu", "selu", "celu", "threshold", "hardsigmoid", "softsign", "tanhshrink", "hardshrink",
    "softshrink", "prelu", "softmin", "relu_", "elu_", "leaky_relu_", "hardtanh_", "selu_", "celu_",
    "threshold_", "dropout1d", "dropout2d", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d",
    "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "interpolate", "pixel_shuffle",
    "pixel_unshuffle", "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "kl_div", "binary_cross_entropy", "binary_cross_entropy_with_logits", "scaled_dot_product_attention",
]
