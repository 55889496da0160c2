"""Every differentiable op as a function; ``tinytensor.Tensor`` exposes them as methods too."""
from .broadcast import broadcast_shapes, broadcast_to, sum_to
from .elementwise import (
    abs, add, clamp, clip, cos, div, eq, erf, exp, ge, gelu, gt, isfinite, isnan, le, log,
    logical_and, logical_not, logical_or, logical_xor, lt, masked_fill, maximum, minimum, mul, ne,
    neg, pow, relu, rsqrt, sigmoid, silu, sign, sin, sqrt, sub, tanh, where,
)
from .linalg import einsum, matmul
from .nn import dropout, embedding, log_softmax, one_hot, softmax
from .reduction import (
    amax, amin, argmax, argmin, logsumexp, max, mean, min, prod, std, sum, var,
)
from .shape import (
    cat, chunk, expand, flatten, getitem, pad, permute, reshape, split, squeeze, stack, swapaxes,
    transpose, tril, triu, unsqueeze, view,
)
from ._operands import cast

__all__ = [n for n in dir() if not n.startswith("_")]
