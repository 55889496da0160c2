"""``tinytensor.cuda``: the parts of ``torch.cuda`` that training scripts start with.

``tt.cuda.is_available()`` says whether the cupy backend can run here (CuPy installed and a GPU
found). The random numbers of every device come from one seeded host generator, so
``manual_seed`` / ``manual_seed_all`` seed that generator, as ``tt.manual_seed`` does.
APIs tinytensor has no counterpart for (streams, events, graphs, memory pools, amp) raise
NotImplementedError naming what to use instead.
"""
from __future__ import annotations

from . import backends
from .random import manual_seed as _seed

_UNSUPPORTED = {
    "Stream": "tinytensor runs every op on the current CuPy stream; there are no user streams",
    "stream": "tinytensor runs every op on the current CuPy stream; there are no user streams",
    "Event": "time with time.perf_counter() after tt.cuda.synchronize()",
    "CUDAGraph": "tinytensor has no CUDA graphs; run the model eagerly",
    "graph": "tinytensor has no CUDA graphs; run the model eagerly",
    "amp": "tinytensor has no autocast; convert the model with .half() or .to(tt.float16) instead",
    "memory_allocated": "CuPy's memory pool reports it: cupy.get_default_memory_pool().used_bytes()",
    "max_memory_allocated": "CuPy's memory pool reports it: cupy.get_default_memory_pool().total_bytes()",
    "empty_cache": "CuPy's memory pool frees it: cupy.get_default_memory_pool().free_all_blocks()",
    "set_device": "pick the GPU per tensor with device='cuda:N'",
}


def is_available() -> bool:
    """Whether tensors can be created on ``"cuda"`` (CuPy installed and at least one GPU)."""
    try:
        backends.for_device("cuda:0")
    except RuntimeError:
        return False
    return True


def device_count() -> int:
    """The number of CUDA devices tinytensor can use (0 without CuPy or a GPU)."""
    return backends.for_device("cuda:0").device_count() if is_available() else 0


def current_device() -> int:
    """The index of the current GPU: always 0 (pick another per tensor with ``device="cuda:N"``); raises
    without a GPU."""
    if not is_available():
        raise RuntimeError("tt.cuda.current_device(): no CUDA device is available")
    return 0


def synchronize(device=None) -> None:
    """Wait for the GPU's queued work to finish (nothing to do without a GPU)."""
    if is_available():
        backends.for_device(device or "cuda:0").synchronize()


def manual_seed(seed: int) -> None:
    """Seed the generator behind every device's random numbers (the same as ``tt.manual_seed``)."""
    _seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seed the generator behind every device's random numbers (the same as ``tt.manual_seed``)."""
    _seed(seed)


def is_bf16_supported() -> bool:
    """False: tinytensor has no bfloat16 kernels on the GPU."""
    return False


def __getattr__(name: str):
    if name in _UNSUPPORTED:
        raise NotImplementedError(f"torch.cuda.{name} is not supported by tinytensor: {_UNSUPPORTED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

