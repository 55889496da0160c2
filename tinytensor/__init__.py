"""tinytensor: a small tensor library with reverse-mode autograd over NumPy and CuPy backends.

    import tinytensor as tt
    x = tt.randn(3, 4, requires_grad=True)
    y = (x @ x.mT).softmax(-1).sum()
    y.backward()
    x.grad.shape  # (3, 4)
"""
# _einops: the einops backend, registered now if einops is loaded, else the moment it is imported
from . import _einops, autograd, backends, cuda, viz
from . import compat as _compat
from .autograd import (
    Function,
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .compat import (
    can_cast,
    compile,
    finfo,
    iinfo,
    is_complex,
    is_floating_point,
    is_tensor,
    numel,
    promote_types,
    result_type,
)
from .creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_dlpack,
    full,
    full_like,
    get_default_device,
    get_default_dtype,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    set_default_device,
    set_default_dtype,
    tensor,
    tril_indices,
    triu_indices,
    zeros,
    zeros_like,
)
from .device import device
from .dtypes import DType, bfloat16, float16, float32, float64, int8, int16, int32, int64, uint8
from .dtypes import bool_ as bool
from .ops import *  # noqa: F403  (the public ops, as listed in ops.__all__)
from .random import Generator, get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads

# PyTorch's names for the dtypes, for code written against torch (torch.long, torch.float, ...)
long, int, short, float, double, half = int64, int32, int16, float32, float64, float16

FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor = (_compat.TensorType(d) for d in (
    float32, float64, float16, bfloat16))
ByteTensor, CharTensor, ShortTensor, IntTensor, LongTensor, BoolTensor = (_compat.TensorType(d) for d in (
    uint8, int8, int16, int32, int64, bool))

# PyTorch's other names for public ops (torch.multiply is torch.mul, ...)
multiply, subtract, divide, true_divide = mul, sub, div, div  # noqa: F405
negative, absolute, fix, arctan2 = neg, abs, trunc, atan2  # noqa: F405
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh  # noqa: F405
all, any = Tensor.all, Tensor.any  # torch.all(x, dim), torch.any(x, dim): the methods
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne  # noqa: F405
concat = concatenate = cat  # noqa: F405

__version__ = "0.1.0"


def __getattr__(name: str):
    """``tinytensor.nn``, ``tinytensor.optim`` (tinytensor_nn under PyTorch's names),
    ``tinytensor.utils``, ``tinytensor.distributed`` and ``tinytensor.func``, imported on first use so
    that ``import tinytensor`` stays free of the nn package."""
    if name in ("nn", "optim", "utils", "distributed", "func"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in _compat.UNSUPPORTED:
        raise NotImplementedError(f"torch.{name} is not supported by tinytensor: {_compat.UNSUPPORTED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
