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
    arange,
    as_tensor,
    empty,
    eye,
    from_dlpack,
    full,
    full_like,
    get_default_device,
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
    tensor,
    zeros,
    zeros_like,
)
from .dtypes import DType, float16, float32, float64, int32, int64
from .dtypes import bool_ as bool
from .ops import *  # noqa: F403  (the public ops, as listed in ops.__all__)
from .random import Generator, get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads

# PyTorch's names for the dtypes, for code written against torch (torch.long, torch.float, ...)
long, int, float, double, half = int64, int32, float32, float64, float16

__version__ = "0.1.0"


def __getattr__(name: str):
    """``tinytensor.nn``, ``tinytensor.optim`` (tinytensor_nn under PyTorch's names) and
    ``tinytensor.utils``, imported on first use so that ``import tinytensor`` stays free of the nn
    package."""
    if name in ("nn", "optim", "utils"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
