"""Creating tensors: tensor, zeros, ones, full, arange, linspace, eye, rand, randn, randint ..."""
from __future__ import annotations

import numpy as np

from .autograd.tensor_core import TensorCore
from .backends import canonical_device, for_device
from .dtypes import _DEFAULT_FLOAT, DTYPES, DType, as_dtype, default_float, int64
from .ops._operands import as_element, scalar
from .random import host_generator
from .tensor import Tensor

_default = {"device": "cpu"}


def set_default_device(device) -> None:
    """Where creation functions put tensors when no device= is given."""
    _default["device"] = canonical_device(device)


def set_default_dtype(dtype) -> None:
    """The floating-point dtype of new tensors made from Python floats or without a dtype (float32
    unless set; PyTorch's torch.set_default_dtype)."""
    dtype = as_dtype(dtype)
    if not dtype.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, "
                        f"got {dtype}")
    _DEFAULT_FLOAT[0] = dtype


def get_default_dtype() -> DType:
    """The floating-point dtype new tensors get by default (float32 unless `set_default_dtype` changed it)."""
    return default_float()


def get_default_device() -> str:
    """The device creation functions use when no `device=` is given (`"cpu"` unless set)."""
    return _default["device"]


def _finish(array, device, dtype: DType | None, requires_grad: bool) -> Tensor:
    backend = for_device(device if device is not None else _default["device"])
    host = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype.name)
    t = Tensor(backend.from_host(host), backend)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copied from data (nested lists, numbers, NumPy arrays, or a Tensor); ``torch.tensor``.

    Python floats become the default dtype (float32), Python ints int64, bools bool; a NumPy array
    keeps its dtype (float64 included, as PyTorch).

    Args:
        data: Nested lists or tuples of numbers, a number, a NumPy array or a Tensor (copied).
        dtype: The dtype of the result (None: inferred from the data, as above).
        device: Where the result lives: "cpu", "cuda", "cuda:1" ... (None: the default device).
        requires_grad: Whether autograd records the ops on the result (floating-point dtypes only).

    Examples:
        >>> tt.tensor([[1.0, 2.0], [3.0, 4.0]])
        tensor([[1., 2.],
                [3., 4.]], dtype=float32)
        >>> tt.tensor([1, 2, 3]).dtype
        tinytensor.int64
    """
    dtype = None if dtype is None else as_dtype(dtype)
    if isinstance(data, TensorCore):
        if device is None:
            device = data.device
        data = data.numpy()
    if isinstance(data, (list, tuple)) and any(isinstance(d, TensorCore) for d in _flat(data)):
        data = [d.numpy() if isinstance(d, TensorCore) else d for d in data]
    if hasattr(data, "__dlpack__") and not isinstance(data, np.ndarray):
        raise TypeError("tensor(): for arrays of other libraries use tt.from_dlpack(array)")
    host = np.array(data, dtype=None if dtype is None else dtype.name)
    if dtype is None:
        if host.dtype == np.float64 and not _has_numpy_float64(data):
            host = host.astype(default_float().name)  # Python floats: the default dtype; NumPy's stay
        elif host.dtype.kind in "iu" and host.dtype.name not in DTYPES:  # uint16/32/64: int64
            if host.dtype == np.uint64 and host.size and host.max() > np.iinfo(np.int64).max:
                raise OverflowError("tensor(): uint64 values above the int64 range are not supported")
            host = host.astype(np.int64)
        elif host.dtype.kind not in "fiub":
            raise TypeError(f"tensor(): unsupported data of NumPy dtype {host.dtype}")
    return _finish(host, device, None, requires_grad)


def _has_numpy_float64(data) -> bool:
    """Whether data is, or holds, a NumPy float64 array or scalar (PyTorch keeps those float64)."""
    if isinstance(data, (np.ndarray, np.generic)):
        return data.dtype == np.float64
    if isinstance(data, (list, tuple)):
        return any(isinstance(d, (np.ndarray, np.generic)) and d.dtype == np.float64 for d in _flat(data))
    return False


def _flat(data):
    for d in data:
        if isinstance(d, (list, tuple)):
            yield from _flat(d)
        else:
            yield d


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """data itself if it is already a Tensor of that dtype and device, else tensor(data)."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype is as_dtype(dtype)) and (
        device is None or data.device == canonical_device(device)
    ):
        return data
    return tensor(data, dtype=dtype, device=device)


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``; ``torch.full``.

    Args:
        size: The shape, a tuple or list of ints (or one int).
        fill_value: The value of every element.
        dtype: The dtype (None: the default float dtype for a Python float, int64 for an int, bool for
            a bool).
        device: Where the result lives: "cpu", "cuda", "cuda:1" ... (None: the default device).
        requires_grad: Whether autograd records the ops on the result.
    """
    if dtype is None:
        dtype = default_float() if isinstance(fill_value, float) else as_dtype(type(fill_value))
    dtype = as_dtype(dtype)
    backend = for_device(device if device is not None else _default["device"])
    shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    fill_value = as_element(scalar(fill_value, "full"), dtype, "full")  # (NaN into int64 is refused)
    t = Tensor(backend.full(shape, fill_value, dtype), backend)
    return t.requires_grad_() if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``; ``torch.zeros``.

    Args:
        *size: The shape, as ints or one tuple/list.
        dtype: The dtype (None: the default float dtype, float32 unless set).
        device: Where the result lives: "cpu", "cuda", "cuda:1" ... (None: the default device).
        requires_grad: Whether autograd records the ops on the result.

    Examples:
        >>> tt.zeros(2, 3)
        tensor([[0., 0., 0.],
                [0., 0., 0.]], dtype=float32)
    """
    return full(_shape(size), 0, dtype=dtype or default_float(), device=device, requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones; ``ones(2, 3)`` or ``ones((2, 3))``, float32 unless ``dtype``; ``torch.ones``."""
    return full(_shape(size), 1, dtype=dtype or default_float(), device=device, requires_grad=requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape; ``torch.empty``, but its values are zeros, never uninitialised memory."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros with x's shape, and x's dtype and device unless given; ``torch.zeros_like``."""
    return zeros(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of x's shape, dtype and device unless given; ``torch.empty_like``, but zeros, as ``empty``."""
    return zeros_like(x, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones with x's shape, and x's dtype and device unless given; ``torch.ones_like``."""
    return ones(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with x's shape, dtype and device unless given; ``torch.full_like``."""
    return full(x.shape, fill_value, dtype=dtype or x.dtype, device=device or x.device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """start, start+step, ... < end (int64 for integer arguments, float32 otherwise); ``torch.arange``.

    ``arange(n)`` is ``arange(0, n)``.

    Args:
        start: The first value (or, alone, the end with start 0).
        end: The bound, not included.
        step: The difference between neighbours.
        dtype: The dtype (None: int64 if start, end and step are ints, else the default float dtype).
        device: Where the result lives: "cpu", "cuda", "cuda:1" ... (None: the default device).
        requires_grad: Whether autograd records the ops on the result.

    Examples:
        >>> tt.arange(5)
        tensor([0, 1, 2, 3, 4], dtype=int64)
        >>> tt.arange(0, 1, 0.25)
        tensor([0.  , 0.25, 0.5 , 0.75], dtype=float32)
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = int64 if all(isinstance(v, int) for v in (start, end, step)) else default_float()
    return _finish(np.arange(start, end, step), device, as_dtype(dtype), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from start to end, both included; ``torch.linspace``.

    Examples:
        >>> tt.linspace(0, 1, 5)
        tensor([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    """
    return _finish(np.linspace(start, end, steps), device, as_dtype(dtype or default_float()), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The n × m identity matrix (m = n unless given): ones on the diagonal; ``torch.eye``."""
    return _finish(np.eye(n, m), device, as_dtype(dtype or default_float()), requires_grad)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) coordinates of a row × col matrix's lower triangle (diagonal ``offset`` and below), row
    by row; ``torch.tril_indices``."""
    return _triangle("tril_indices", np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) coordinates of a row × col matrix's upper triangle (diagonal ``offset`` and above), row
    by row; ``torch.triu_indices``."""
    return _triangle("triu_indices", np.triu_indices, row, col, offset, dtype, device)


def _triangle(op: str, np_indices, row, col, offset, dtype, device) -> Tensor:
    for name, n in (("row", row), ("col", col)):
        if n < 0:
            raise RuntimeError(f"{op}: {name} must be non-negative, got {n}")
    dtype = as_dtype(dtype or int64)
    if dtype.is_floating_point or dtype.name == "bool":
        raise TypeError(f"{op}: the indices are integers; dtype {dtype.name} is not supported (as PyTorch)")
    rows, cols = np_indices(row, offset, col)
    return _finish(np.stack([rows, cols]).reshape(2, -1), device, dtype, False)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from the seeded host generator (or ``generator``)."""
    return _finish(host_generator(generator).random(_shape(size)), device, as_dtype(dtype or default_float()),
                   requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the seeded host generator (or ``generator``)."""
    samples = host_generator(generator).standard_normal(_shape(size))
    return _finish(samples, device, as_dtype(dtype or default_float()), requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform in [low, high)."""
    if high is None:
        low, high = 0, low
    return _finish(host_generator(generator).integers(low, high, size=tuple(size)), device,
                   as_dtype(dtype or int64), False)


def randperm(n: int, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64), from the seeded host generator or ``generator``."""
    return _finish(host_generator(generator).permutation(int(n)), device, as_dtype(dtype or int64),
                   requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples with x's shape, and x's dtype and device unless given; ``torch.randn_like``."""
    return randn(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples with x's shape, and x's dtype and device unless given; ``torch.rand_like``."""
    return rand(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def from_dlpack(obj) -> Tensor:
    """Zero-copy import of a DLPack-capable array (NumPy, CuPy, torch ...)."""
    kind, index = obj.__dlpack_device__()
    if int(kind) == 1:  # kDLCPU
        backend = for_device("cpu")
        return Tensor(np.from_dlpack(obj), backend)
    if int(kind) == 2:  # kDLCUDA
        backend = for_device(f"cuda:{index}")
        return Tensor(backend.xp.from_dlpack(obj), backend)
    raise RuntimeError(f"from_dlpack: unsupported DLPack device type {kind}")
