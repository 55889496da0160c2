"""Dtype objects shared by every backend: ``tt.float32``, ``tt.int64``, ``tt.bool`` ..."""
from __future__ import annotations


class DType:
    """A backend-independent element type; each backend maps it to its own array dtype."""

    __slots__ = ("name", "is_floating_point", "itemsize")

    def __init__(self, name: str, is_floating_point: bool, itemsize: int):
        self.name = name
        self.is_floating_point = is_floating_point
        self.itemsize = itemsize

    def __repr__(self) -> str:
        return f"tinytensor.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


float16 = DType("float16", True, 2)
bfloat16 = DType("bfloat16", True, 2)  # declared; a backend whose namespace has no bfloat16 refuses it
float32 = DType("float32", True, 4)
float64 = DType("float64", True, 8)
uint8 = DType("uint8", False, 1)
int8 = DType("int8", False, 1)
int16 = DType("int16", False, 2)
int32 = DType("int32", False, 4)
int64 = DType("int64", False, 8)
bool_ = DType("bool", False, 1)

DTYPES = {d.name: d for d in (float16, bfloat16, float32, float64, uint8, int8, int16, int32, int64, bool_)}
_PY_TYPES = {float: float64, int: int64, bool: bool_}  # as PyTorch: dtype=float is float64
_DEFAULT_FLOAT = [float32]  # tt.set_default_dtype changes it


def default_float() -> DType:
    """The dtype of Python floats and of float tensors made without a dtype (float32 unless set)."""
    return _DEFAULT_FLOAT[0]


def as_dtype(dtype) -> DType:
    """Turn a DType, a name ('float32'), a Python type or a NumPy dtype into a DType."""
    if isinstance(dtype, DType):
        return dtype
    if dtype in _PY_TYPES:
        return _PY_TYPES[dtype]
    name = dtype if isinstance(dtype, str) else str(getattr(dtype, "name", dtype))
    name = name.removeprefix("array_api_strict.").removeprefix("tinytensor.")
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {dtype!r}; tinytensor supports {sorted(DTYPES)}")
    return DTYPES[name]


def kind(dtype: DType) -> int:
    """PyTorch's dtype categories, in promotion order: bool 0, integer 1, floating point 2."""
    return 2 if dtype.is_floating_point else 0 if dtype is bool_ else 1


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op between two tensors (PyTorch's rules): the higher kind wins
    (bool < integer < floating point); within a kind the wider type; float16 with bfloat16 is
    float32; uint8 with a signed type is the signed type, widened to int16 if it is int8."""
    if a is b:
        return a
    if kind(a) != kind(b):
        return a if kind(a) > kind(b) else b
    if a.itemsize != b.itemsize:
        return a if a.itemsize > b.itemsize else b
    if a.is_floating_point:  # float16 and bfloat16
        return float32
    return int16  # uint8 and int8


def scalar_dtype(tensor_dtype: DType, value) -> DType:
    """Dtype of ``tensor op scalar``: the scalar never widens the tensor within its kind."""
    if isinstance(value, bool):
        return tensor_dtype
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if isinstance(value, int) or kind in ("i", "u", "b"):
        return int64 if tensor_dtype is bool_ else tensor_dtype
    # a float scalar (Python float, np.float64, 0-d float array)
    return tensor_dtype if tensor_dtype.is_floating_point else _DEFAULT_FLOAT[0]
