"""Every differentiable op as a function; ``tinytensor.Tensor`` exposes them as methods too."""
from ._operands import cast
from .broadcast import broadcast_shapes, broadcast_to, sum_to
from .elementwise import (
    abs,
    add,
    clamp,
    clip,
    cos,
    div,
    eq,
    erf,
    exp,
    ge,
    gelu,
    gt,
    isfinite,
    isnan,
    le,
    log,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    masked_fill,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    relu,
    rsqrt,
    sigmoid,
    sign,
    silu,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from .indexing import (
    gather,
    index_add,
    index_fill,
    index_select,
    masked_select,
    nonzero,
    scatter,
    scatter_add,
)
from .linalg import einsum, matmul
from .nn import dropout, embedding, log_softmax, one_hot, softmax
from .rearrange import flip, repeat, roll, t
from .reduction import (
    amax,
    amin,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from .sampling import bernoulli, multinomial
from .scan import cumprod, cumsum
from .shape import (
    cat,
    chunk,
    expand,
    flatten,
    getitem,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    transpose,
    tril,
    triu,
    unsqueeze,
    view,
)
from .sorting import argsort, sort, topk

# The public ops: tinytensor re-exports exactly these, and the conformance catalogue is checked
# against them (cast, sum_to and getitem are internal: Tensor.to, broadcasting and x[i] reach them;
# repeat is Tensor.repeat only, as in PyTorch).
__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "argsort", "bernoulli", "broadcast_shapes",
    "broadcast_to", "cat", "chunk", "clamp", "clip", "cos", "cumprod", "cumsum", "div", "dropout",
    "einsum", "embedding", "eq", "erf", "exp", "expand", "flatten", "flip", "gather", "ge", "gelu", "gt",
    "index_add", "index_fill", "index_select", "isfinite", "isnan", "le", "log", "log_softmax",
    "logical_and", "logical_not", "logical_or", "logical_xor", "logsumexp", "lt", "masked_fill",
    "masked_select", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "multinomial", "ne",
    "neg", "nonzero", "one_hot", "pad", "permute", "pow", "prod", "relu", "reshape", "roll", "rsqrt",
    "scatter", "scatter_add", "sigmoid", "sign", "silu", "sin", "softmax", "sort", "split", "sqrt",
    "squeeze", "stack", "std", "sub", "sum", "swapaxes", "t", "tanh", "topk", "transpose", "tril", "triu",
    "unsqueeze", "var", "view", "where",
]
