"""tinytensor: a small tensor library with reverse-mode autograd over NumPy and CuPy backends.

    import tinytensor as tt
    x = tt.randn(3, 4, requires_grad=True)
    y = (x @ x.mT).softmax(-1).sum()
    y.backward()
    x.grad.shape  # (3, 4)
"""
from . import autograd, backends, viz
from .autograd import Function, detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (
    arange, as_tensor, empty, eye, from_dlpack, full, full_like, get_default_device, linspace, ones,
    ones_like, rand, rand_like, randint, randn, randn_like, set_default_device, tensor, zeros, zeros_like,
)
from .dtypes import DType, bool_ as bool, float16, float32, float64, int32, int64
from .ops import (
    abs, add, amax, amin, argmax, argmin, broadcast_shapes, broadcast_to, cat, chunk, clamp, clip, cos,
    div, dropout, einsum, embedding, eq, erf, exp, expand, flatten, ge, gelu, gt, isfinite, isnan, le,
    log, log_softmax, logical_and, logical_not, logical_or, logical_xor, logsumexp, lt, masked_fill,
    matmul, max, maximum, mean, min, minimum, mul, ne, neg, one_hot, pad, permute, pow, prod, relu,
    reshape, rsqrt, sigmoid, sign, silu, sin, softmax, split, sqrt, squeeze, stack, std, sub, sum,
    swapaxes, tanh, transpose, tril, triu, unsqueeze, var, view, where,
)
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor

__version__ = "0.1.0"
