"""PyTorch names that code written against torch uses and that are not ops: the legacy typed
constructors (``torch.Tensor([...])``, ``torch.LongTensor``), ``Tensor.type``, ``finfo``/``iinfo``,
``is_tensor``, ``numel``, ``compile``, and clear errors for torch APIs tinytensor has no
counterpart for."""
from __future__ import annotations

import numpy as np

from .backends import for_device
from .dtypes import (
    DType,
    as_dtype,
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)

# torch's legacy tensor type names, in the order PyTorch prints them
_TYPE_NAMES = {
    float32: "FloatTensor", float64: "DoubleTensor", float16: "HalfTensor", bfloat16: "BFloat16Tensor",
    uint8: "ByteTensor", int8: "CharTensor", int16: "ShortTensor", int32: "IntTensor", int64: "LongTensor",
    bool_: "BoolTensor",
}
_BY_TYPE_NAME = {name: dt for dt, name in _TYPE_NAMES.items()}


def legacy_new(args: tuple, dtype: DType, device=None):
    """(array, backend) for PyTorch's legacy constructor ``Tensor(*args)`` of ``dtype``:
    ``Tensor()`` is empty, ``Tensor(2, 3)`` has that shape (zero-filled where PyTorch leaves memory
    uninitialised), ``Tensor([[1, 2]])`` / ``Tensor(ndarray)`` copies the data converted to dtype."""
    from .creation import get_default_device
    from .tensor import Tensor

    backend = for_device(device if device is not None else get_default_device())
    if not args:
        return backend.full((0,), 0, dtype), backend
    if all(type(a) is int for a in args):
        if any(a < 0 for a in args):
            raise RuntimeError(f"Tensor(): negative dimension in size {args}")
        return backend.full(tuple(args), 0, dtype), backend
    if len(args) == 1 and isinstance(args[0], Tensor):
        t = args[0]
        if t.dtype is not dtype:
            raise TypeError(f"{_TYPE_NAMES[dtype]}(tensor): expected a tensor of dtype {dtype.name}, got "
                            f"{t.dtype.name}; convert with .to({dtype!r})")
        return t.array, t.backend
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)):
        host = np.array(args[0])
        if host.dtype.kind not in "fiub":
            raise TypeError(f"{_TYPE_NAMES[dtype]}(): unsupported data of NumPy dtype {host.dtype}")
        backend.xp_dtype(dtype)  # a dtype this backend cannot hold is refused here, by name
        return backend.from_host(host.astype(dtype.name)), backend
    given = ", ".join(type(a).__name__ for a in args)
    raise TypeError(f"{_TYPE_NAMES[dtype]}(): expected a list, a NumPy array, a Tensor or sizes (ints), got "
                    f"({given}); to wrap a value use tt.tensor(value)")


class TensorType:
    """``tt.FloatTensor``, ``tt.LongTensor`` ...: PyTorch's legacy typed constructors. Calling one makes
    a CPU tensor of its dtype (as ``Tensor(...)``); ``isinstance(x, tt.LongTensor)`` checks dtype and
    device; ``x.type(tt.LongTensor)`` converts."""

    def __init__(self, dtype: DType):
        self.dtype = dtype
        self.__name__ = _TYPE_NAMES[dtype]

    def __call__(self, *args):
        from .tensor import Tensor

        array, backend = legacy_new(args, self.dtype, "cpu")
        return Tensor(array, backend)

    def __instancecheck__(self, obj) -> bool:
        from .tensor import Tensor

        return isinstance(obj, Tensor) and obj.dtype is self.dtype and obj.device == "cpu"

    def __repr__(self) -> str:
        return f"<class 'tinytensor.{self.__name__}'>"


def type_name(dtype: DType, device: str) -> str:
    """PyTorch's type string of a tensor: 'torch.FloatTensor', 'torch.cuda.LongTensor' (torch's own
    spelling, so that code comparing ``x.type()`` with such strings runs unchanged)."""
    where = "torch.cuda." if str(device).startswith("cuda") else "torch."
    return where + _TYPE_NAMES[dtype]


def dtype_of_type(t) -> DType:
    """The dtype a ``Tensor.type(t)`` argument names: a dtype, a TensorType or a type string."""
    if isinstance(t, TensorType):
        return t.dtype
    if isinstance(t, str) and t.rsplit(".", 1)[-1] in _BY_TYPE_NAME:
        return _BY_TYPE_NAME[t.rsplit(".", 1)[-1]]
    return as_dtype(t)


class finfo:
    """Machine limits of a floating-point dtype (PyTorch's ``torch.finfo``)."""

    def __init__(self, dtype: DType = None):
        dtype = float32 if dtype is None else as_dtype(dtype)
        if not dtype.is_floating_point:
            raise TypeError(f"finfo: {dtype} is not a floating-point dtype; use tt.iinfo")
        self.dtype = dtype.name
        if dtype is bfloat16:  # NumPy has no bfloat16: its constants (8 exponent bits, 7 mantissa bits)
            self.bits, self.eps, self.resolution = 16, 2.0**-7, 0.01
            self.max, self.tiny = float.fromhex("0x1.fep127"), 2.0**-126
        else:
            info = np.finfo(dtype.name)
            self.bits, self.eps, self.resolution = info.bits, float(info.eps), 10.0**-info.precision
            self.max, self.tiny = float(info.max), float(info.tiny)
        self.min, self.smallest_normal = -self.max, self.tiny

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, "
                f"smallest_normal={self.smallest_normal}, tiny={self.tiny}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype (PyTorch's ``torch.iinfo``)."""

    def __init__(self, dtype: DType):
        dtype = as_dtype(dtype)
        if dtype.is_floating_point:
            raise TypeError(f"iinfo: {dtype} is a floating-point dtype; use tt.finfo")
        info = np.iinfo(dtype.name) if dtype is not bool_ else None
        self.dtype = dtype.name
        self.bits = 8 if info is None else info.bits
        self.min, self.max = (0, 1) if info is None else (int(info.min), int(info.max))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def is_tensor(obj) -> bool:
    """Whether obj is a tinytensor Tensor (or a subclass, such as Parameter)."""
    from .tensor import Tensor

    return isinstance(obj, Tensor)


def is_floating_point(x) -> bool:
    """Whether x has a floating-point dtype; ``torch.is_floating_point``."""
    return x.dtype.is_floating_point


def is_complex(x) -> bool:
    """False: tinytensor has no complex dtypes; ``torch.is_complex``."""
    return False


def promote_types(type1, type2):
    """The dtype an op on the two gives (PyTorch's promotion lattice); ``torch.promote_types``."""
    from .dtypes import as_dtype, promote

    return promote(as_dtype(type1), as_dtype(type2))


def result_type(tensor1, tensor2):
    """The dtype of an elementwise op on the two (tensors or numbers, PyTorch's rules: a number or a 0-d
    tensor does not widen a tensor of its kind); ``torch.result_type``."""
    from . import ops
    from .creation import tensor, zeros

    def probe(t):  # an empty tensor of t's dtype and kind of rank (0-d or not), or the number itself
        return zeros(() if t.ndim == 0 else (0,), dtype=t.dtype) if is_tensor(t) else t

    a, b = probe(tensor1), probe(tensor2)
    if not is_tensor(a) and not is_tensor(b):
        a = tensor(a)  # two numbers: as a 0-d tensor and a number
    return ops.add(a, b).dtype


def can_cast(from_, to) -> bool:
    """Whether PyTorch's casting rules allow from_ → to: never to a lower kind (float → integer, integer
    → bool); ``torch.can_cast``."""
    from .dtypes import as_dtype

    def kind(d):
        return 2 if d.is_floating_point else 0 if d.name == "bool" else 1

    return kind(as_dtype(from_)) <= kind(as_dtype(to))


def numel(x) -> int:
    """The number of elements of x."""
    return x.numel()


def compile(model=None, **options):
    """PyTorch's ``torch.compile``: tinytensor runs eagerly, so this returns ``model`` itself (the same
    results, no compilation). Usable as ``compile(fn)`` and as a decorator ``@compile()``."""
    if model is None:
        return lambda fn: fn
    return model


# torch names without a tinytensor counterpart: NotImplementedError with what to use instead
UNSUPPORTED = {
    "sparse_coo_tensor": "tinytensor has dense tensors only; build the dense tensor (tt.zeros + indexing)",
    "sparse_csr_tensor": "tinytensor has dense tensors only; build the dense tensor (tt.zeros + indexing)",
    "jit": "tinytensor has no TorchScript; call the Python module directly",
    "fx": "tinytensor has no graph tracing; the autograd graph is in tensor.grad_fn",
    "autocast": "tinytensor has no automatic mixed precision; convert the model with .half()",
    "quantize_per_tensor": "tinytensor has no quantized tensors",
    "Stream": "tinytensor has no user streams",
    "complex64": "tinytensor has real dtypes only",
    "complex128": "tinytensor has real dtypes only",
    "cfloat": "tinytensor has real dtypes only",
    "channels_last": "tinytensor arrays are always C-contiguous; drop memory_format",
    "set_default_tensor_type": "pass dtype= / device= to the constructors, or tt.set_default_dtype",
}
