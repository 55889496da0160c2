"""Indexing along a dim with index tensors: gather, scatter and scatter_add, index_select, index_fill,
index_add, and the mask ops masked_select and nonzero.

Index tensors are int64 (int32 where PyTorch takes it too). An index out of range is an error that
names the op, the dim, its size and the index: never wrapped around (NumPy and CuPy would wrap a
negative one). A 0-d tensor counts as a 1-d one of size 1, as in PyTorch.

The pairs of adjoints: reading at an index and adding back at it, gather / scatter_add and
index_select / index_add, each other's backward.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ..autograd.tensor_core import TensorCore
from ..dtypes import bool_, int64
from ._operands import as_element, cast, like, scalar
from .broadcast import broadcast_shapes, broadcast_to
from .dims import normalize_dim
from .elementwise import where
from .shape import getitem, pad

_INT_INDEX = ("int64", "int32")


# ---- gather and scatter -----------------------------------------------------------------------

def _leading(a, shape):
    """a[:shape[0], :shape[1], ...]: the block of a that an index of ``shape`` covers."""
    return a[tuple(slice(0, n) for n in shape)]


def _flat_positions(backend, index, dim: int, shape: tuple):
    """For each element of ``index``, its flat (C-order) position in an array of ``shape``: the
    element's own coordinates, with the one along ``dim`` replaced by its value."""
    xp = backend.xp
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    pos = xp.astype(index, xp.int64) * strides[dim]
    for d, n in enumerate(index.shape):
        if d != dim:
            along = tuple(n if k == d else 1 for k in range(index.ndim))
            pos = pos + xp.reshape(backend.arange(n, dtype=xp.int64), along) * strides[d]
    return pos


class Gather(Function):
    """y[i][j] = x[i][index[i][j]] (dim 1): x read along dim at index."""

    def forward(self, x, index, dim):
        self.shape, self.dim = x.shape, dim
        self.save_for_backward(index)
        if index.size == 0:
            return self.backend.zeros(index.shape, x.dtype)
        block = x[tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))]
        return self.xp.take_along_axis(block, index, axis=dim)

    def backward(self, gy):
        (index,) = self.saved_tensors
        # each gradient goes back to where its value was read; repeated reads add up
        zeros = like(gy, gy.backend.zeros(self.shape, gy.array.dtype))
        return ScatterAdd.apply(zeros, index, gy, self.dim), None, None

    def jvp(self, tx, _index, _dim):
        return Gather.apply(tx, *self.primals[1:])  # the tangent read at the same places


class ScatterAdd(Function):
    """y = x, then y[i][index[i][j]] += src[i][j] (dim 1); repeated indices add up."""

    def forward(self, x, index, src, dim):
        self.dim, self.src_shape = dim, src.shape
        self.save_for_backward(index)
        out = self.backend.copy(x)
        if index.size == 0:
            return out
        pos = _flat_positions(self.backend, index, dim, x.shape)
        return self.backend.scatter_flat(out, pos, _leading(src, index.shape), "add")

    def backward(self, gy):
        (index,) = self.saved_tensors
        gsrc = _read_back(gy, index, self.dim, self.src_shape) if self.needs_input_grad[2] else None
        return gy, None, gsrc, None

    def jvp(self, tx, _index, tsrc, _dim):
        x, index, src, dim = self.primals
        if tsrc is None:
            return tx
        return ScatterAdd.apply(_zeros_like(x) if tx is None else tx, index, tsrc, dim)


class Scatter(Function):
    """y = x, then y[i][index[i][j]] = src[i][j] (dim 1); src may be a number. Of repeated indices
    one write wins (which one is unspecified, as in PyTorch)."""

    def forward(self, x, index, src, dim):
        self.dim, self.src_shape = dim, getattr(src, "shape", None)
        self.save_for_backward(index)
        out = self.backend.copy(x)
        if index.size == 0:
            return out
        if self.src_shape is None:
            values = self.backend.full(index.shape, src, self.backend.dtype_of(x))
        else:
            values = _leading(src, index.shape)
        return self.backend.scatter_flat(out, _flat_positions(self.backend, index, dim, x.shape), values)

    def backward(self, gy):
        (index,) = self.saved_tensors
        # what was overwritten has no gradient; a written value gets the gradient where it went
        gx = Scatter.apply(gy, index, 0.0, self.dim) if self.needs_input_grad[0] else None
        gsrc = None
        if self.src_shape is not None and self.needs_input_grad[2]:
            gsrc = _read_back(gy, index, self.dim, self.src_shape)
        return gx, None, gsrc, None

    def jvp(self, tx, _index, tsrc, _dim):
        x, index, src, dim = self.primals  # written places take src's tangent, the rest keep x's
        return Scatter.apply(_zeros_like(x) if tx is None else tx, index, 0.0 if tsrc is None else tsrc, dim)


class ScatterReduce(Function):
    """scatter with reduce="add" or "multiply" (PyTorch's deprecated form): y[..index..] ⊕= src.
    PyTorch has no derivative for it, and neither has tinytensor: backward raises, as there."""

    def forward(self, x, index, src, dim, reduce):
        self.reduce = reduce
        out = self.backend.copy(x)
        if index.size == 0:
            return out
        if not hasattr(src, "shape"):
            values = self.backend.full(index.shape, src, self.backend.dtype_of(x))
        else:
            values = _leading(src, index.shape)
        return self.backend.scatter_flat(out, _flat_positions(self.backend, index, dim, x.shape), values,
                                         reduce)

    def backward(self, gy):
        raise RuntimeError(f"scatter: the derivative of scatter with reduce={self.reduce!r} is not "
                           f"implemented (as in PyTorch); use scatter_add, or tt.where")


def _read_back(gy, index, dim: int, src_shape: tuple):
    """The gradient of a scattered src: gy read at index, zero where src was not used (a src larger
    than the index)."""
    if index.array.size == 0:  # nothing was written (and PyTorch checks no shapes then)
        return like(gy, gy.backend.zeros(src_shape, gy.array.dtype))
    g = Gather.apply(gy, index, dim)
    widths = [w for d in reversed(range(len(src_shape))) for w in (0, src_shape[d] - g.shape[d])]
    return pad(g, widths) if any(widths) else g


def _zeros_like(x):
    """A zero tangent for x (an input of a scatter whose other input has one)."""
    return like(x, x.backend.zeros(x.shape, x.array.dtype))


def _check_index(index, input, op: str, dtypes=_INT_INDEX, cls=RuntimeError) -> None:
    if not isinstance(index, TensorCore):
        raise TypeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index.backend is not input.backend:
        raise RuntimeError(f"{op}: index is on {index.device} but the input is on {input.device}")
    if index.dtype.name not in dtypes:
        raise cls(f"{op}: expected an index of dtype {' or '.join(dtypes)}, got {index.dtype.name}")


def _check_bounds(index, size: int, dim: int, op: str, shape, negative: bool = False, cls=RuntimeError):
    """Every index in [0, size) (in [-size, size) where the op counts from the back too): checked at
    once on the CPU, at the next host sync on a device (backends/deferred.py). Returns the index to
    use: ``index``, or on a device, until the check is read, a copy clipped into range."""
    checked = index.backend.check_range(
        index.array, -size if negative else 0, size, cls,
        lambda bad: f"{op}: index {bad} is out of bounds for dimension {dim} with size {size} (input of "
                    f"shape {tuple(shape)})")
    return index if checked is index.array else like(index, checked)


def _at_least_1d(t):
    return t.reshape(1) if t.ndim == 0 else t


def _check_gather_shapes(x, index, dim: int, op: str, src=None) -> None:
    """PyTorch's rule: index has x's number of dims and is no larger than x apart from dim (and no
    larger than src anywhere)."""
    if index.ndim != x.ndim:
        raise RuntimeError(f"{op}: the index must have as many dimensions as the input, got index of "
                           f"shape {tuple(index.shape)} for input of shape {tuple(x.shape)}")
    if src is not None and src.ndim != index.ndim:
        raise RuntimeError(f"{op}: the index must have as many dimensions as src, got index of shape "
                           f"{tuple(index.shape)} for src of shape {tuple(src.shape)}")
    larger = any(n > m for d, (n, m) in enumerate(zip(index.shape, x.shape)) if d != dim)
    if src is not None:
        larger = larger or any(n > m for n, m in zip(index.shape, src.shape))
    if larger:
        also = "" if src is None else f" and no larger than src {tuple(src.shape)}"
        raise RuntimeError(f"{op}: expected index {tuple(index.shape)} to be no larger than the input "
                           f"{tuple(x.shape)} apart from dimension {dim}{also}")


def gather(input, dim: int, index, *, sparse_grad: bool = False):
    """input read along dim at index: ``y[i][j] = input[i][index[i][j]]`` for dim = 1; y has index's shape."""
    d = normalize_dim(dim, input.ndim, "gather", input.shape)
    if not isinstance(index, TensorCore):
        raise TypeError(f"gather: index must be a Tensor, got {type(index).__name__}")
    x, idx = _at_least_1d(input), _at_least_1d(index)
    if idx.array.size:  # PyTorch checks an empty index for nothing
        _check_index(index, input, "gather")
        _check_gather_shapes(x, idx, d, "gather")
        idx = _check_bounds(idx, x.shape[d], d, "gather", input.shape)
    return Gather.apply(x, idx, d).reshape(index.shape)


def scatter(input, dim: int, index, src=None, value=None, *, reduce: str | None = None):
    """input with src (a tensor, or the number ``value``) written along dim at index:
    ``y[i][index[i][j]] = src[i][j]`` for dim = 1. ``reduce`` "add" or "multiply" combines instead."""
    if src is None:
        src = value
    elif value is not None:
        raise TypeError("scatter: give src or value, not both")
    if src is None:
        raise TypeError("scatter: missing the values to write: src (a Tensor) or value (a number)")
    if reduce not in (None, "add", "multiply"):
        raise RuntimeError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
    return _scatter(input, dim, index, src, reduce, "scatter")


def scatter_add(input, dim: int, index, src):
    """input with src added along dim at index: ``y[i][index[i][j]] += src[i][j]`` for dim = 1
    (repeated indices add up)."""
    if not isinstance(src, TensorCore):
        raise TypeError(f"scatter_add: src must be a Tensor, got {type(src).__name__}")
    return _scatter(input, dim, index, src, "sum", "scatter_add")


def _scatter(input, dim, index, src, reduce, op):
    """scatter (reduce None, "add", "multiply") and scatter_add (reduce "sum") after their checks."""
    d = normalize_dim(dim, input.ndim, op, input.shape)
    if not isinstance(index, TensorCore):
        raise TypeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index.array.size:
        _check_index(index, input, op)
    if isinstance(src, TensorCore):
        if src.backend is not input.backend:
            raise RuntimeError(f"{op}: src is on {src.device} but the input is on {input.device}")
        if src.dtype is not input.dtype:
            raise RuntimeError(f"{op}: expected src of the input's dtype {input.dtype.name}, got "
                               f"{src.dtype.name}")
    elif index.array.size:  # (an empty index writes nothing: PyTorch converts no value then)
        src = as_element(scalar(src, op), input.dtype, op)
    else:
        src = 0
    x, idx = _at_least_1d(input), _at_least_1d(index)
    src_t = _at_least_1d(src) if isinstance(src, TensorCore) else None
    if idx.array.size:  # PyTorch checks an empty index for nothing
        _check_gather_shapes(x, idx, d, op, src_t)
        idx = _check_bounds(idx, x.shape[d], d, op, input.shape)
    s = src if src_t is None else src_t
    if input.dtype is bool_ and reduce is not None:  # or / and of bools: sums and products of 0/1
        s = s if src_t is None else s.to(dtype=int64)
        return _scatter(x.to(dtype=int64), d, idx, s, reduce, op).reshape(input.shape) != 0
    if reduce == "sum":
        out = ScatterAdd.apply(x, idx, s, d)
    elif reduce is None:
        out = Scatter.apply(x, idx, s, d)
    else:
        out = ScatterReduce.apply(x, idx, s, d, reduce)
    return out.reshape(input.shape)


# ---- index_select, index_add, index_fill ------------------------------------------------------

class IndexSelect(Function):
    """y = the slices of x at index along dim (repeats allowed): x[:, index] for dim 1."""

    def forward(self, x, index, dim):
        self.shape, self.dim = x.shape, dim
        self.save_for_backward(index)
        return self.xp.take(x, index, axis=dim)

    def backward(self, gy):
        (index,) = self.saved_tensors
        # each slice of the gradient goes back to the slice it was read from; repeats add up
        zeros = like(gy, gy.backend.zeros(self.shape, gy.array.dtype))
        return IndexAdd.apply(zeros, index, gy, self.dim, 1), None, None

    def jvp(self, tx, _index, _dim):
        return IndexSelect.apply(tx, *self.primals[1:])


class IndexAdd(Function):
    """y = x, then y[:, index[i]] += alpha · source[:, i] for dim 1; repeated indices add up."""

    def forward(self, x, index, source, dim, alpha):
        self.dim, self.alpha = dim, alpha
        self.save_for_backward(index)
        xp = self.xp
        if x.size == 0:  # nothing to add into (PyTorch checks no index then)
            return self.backend.copy(x)
        order = (dim,) + tuple(d for d in range(x.ndim) if d != dim)  # dim first: rows to add into
        back = tuple(order.index(d) for d in range(x.ndim))
        rows = self.backend.add_rows(x.shape[dim], index, xp.permute_dims(source, order))
        rows = xp.permute_dims(rows, back)
        return x + (rows if alpha == 1 else rows * alpha)

    def backward(self, gy):
        (index,) = self.saved_tensors
        gsource = None
        if self.needs_input_grad[2]:
            gsource = IndexSelect.apply(gy, index, self.dim)
            gsource = gsource if self.alpha == 1 else gsource * self.alpha
        return gy, None, gsource, None, None

    def jvp(self, tx, _index, tsource, _dim, _alpha):
        x, index, source, dim, alpha = self.primals
        if tsource is None:
            return tx
        return IndexAdd.apply(_zeros_like(x) if tx is None else tx, index, tsource, dim, alpha)


def index_select(input, dim: int, index):
    """The slices of input at the 1-d index along dim: input[:, index] for dim = 1."""
    d = normalize_dim(dim, input.ndim, "index_select", input.shape)
    _check_index_vector(index, input, "index_select", IndexError)
    if input.ndim == 0 and index.array.size != 1:
        raise RuntimeError(f"index_select: a 0-d input takes an index of one value, got {index.array.size}")
    _check_index(index, input, "index_select")
    x, idx = _at_least_1d(input), _at_least_1d(index)
    idx = _check_bounds(idx, x.shape[d], d, "index_select", input.shape, cls=IndexError)
    out = IndexSelect.apply(x, idx, d)
    return out.reshape(()) if input.ndim == 0 else out


def index_add(input, dim: int, index, source, *, alpha=1):
    """input with alpha · source added at the 1-d index along dim: y[:, index[i]] += alpha · source[:, i]
    for dim = 1 (repeated indices add up)."""
    d = normalize_dim(dim, input.ndim, "index_add", input.shape)
    _check_index_vector(index, input, "index_add", IndexError)
    _check_index(index, input, "index_add")
    if not isinstance(source, TensorCore):
        raise TypeError(f"index_add: source must be a Tensor, got {type(source).__name__}")
    if source.backend is not input.backend:
        raise RuntimeError(f"index_add: source is on {source.device} but the input is on {input.device}")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"index_add: expected source of the input's dtype {input.dtype.name}, got "
                           f"{source.dtype.name}")
    n = index.array.size
    x, idx = _at_least_1d(input), _at_least_1d(index)
    if input.ndim == 0 or source.ndim == 0:
        fits = input.ndim == source.ndim and n == 1
    else:
        fits = source.ndim == input.ndim and source.shape[d] == n and all(
            a == b for k, (a, b) in enumerate(zip(input.shape, source.shape)) if k != d)
    if not fits:
        raise RuntimeError(f"index_add: source must have the input's shape {tuple(input.shape)} apart from "
                           f"dimension {d}, of size {n} (the number of indices), got {tuple(source.shape)}")
    if input.ndim <= 1 or input.array.size:  # PyTorch checks no index into an empty matrix
        idx = _check_bounds(idx, x.shape[d], d, "index_add", input.shape)
    alpha = as_element(scalar(alpha, "index_add"), input.dtype, "index_add")
    if input.dtype is bool_:  # bools add as "or"
        return index_add(input.to(dtype=int64), dim, index, source.to(dtype=int64)) != 0
    out = IndexAdd.apply(x, idx, _at_least_1d(source), d, alpha)
    return out.reshape(input.shape)


def index_fill(input, dim: int, index, value):
    """input with ``value`` (a number or a 0-d tensor) in the slices at the 1-d index along dim; an
    index counts from the back too, as in PyTorch."""
    d = normalize_dim(dim, input.ndim, "index_fill", input.shape)
    _check_index(index, input, "index_fill", ("int64",), IndexError)
    if index.ndim > 1:
        raise RuntimeError(f"index_fill: the index must be a vector or a scalar, got shape {index.shape}")
    if isinstance(value, TensorCore):
        if value.ndim != 0:
            raise RuntimeError(f"index_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        if value.requires_grad and not input.dtype.is_floating_point:
            raise RuntimeError(f"index_fill: the value requires grad, but the result is {input.dtype.name} "
                               f"and cannot carry a gradient (as PyTorch); detach the value")
        value = cast(value, input.dtype)
    else:
        value = as_element(scalar(value, "index_fill"), input.dtype, "index_fill")
    n = input.shape[d] if input.ndim else 1
    idx = _at_least_1d(index)
    if input.array.size:
        idx = _check_bounds(idx, n, d, "index_fill", input.shape, negative=True, cls=IndexError)
    elif not n and idx.array.size and math.prod(input.shape[:d] + input.shape[d + 1:]):
        # an empty tensor is filled without looking at the index (as PyTorch), unless only dim is empty
        raise IndexError(f"index_fill: an index is out of bounds for dimension {d} with size 0 (input of "
                         f"shape {tuple(input.shape)})")
    xp = input.backend.xp
    wrapped = xp.where(idx.array < 0, idx.array + n, idx.array)
    hit = xp.any(xp.reshape(wrapped, (-1, 1)) == xp.reshape(input.backend.arange(n, dtype=wrapped.dtype),
                                                             (1, n)), axis=0)
    along = tuple(n if k == d else 1 for k in range(input.ndim))
    return where(like(input, xp.reshape(hit, along)), value, input)


def _check_index_vector(index, input, op, cls):
    if not isinstance(index, TensorCore):
        raise TypeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index.ndim > 1:
        raise cls(f"{op}: the index must be a vector (or a 0-d tensor), got shape {tuple(index.shape)}")


def take(input, index):
    """input read as a 1-d tensor (C order) at index: the result has index's shape, and negative
    indices count from the back; ``torch.take``."""
    _check_index(index, input, "take", ("int64",))
    return getitem(input.reshape(-1), index)


def take_along_dim(input, indices, dim=None):
    """gather along dim after input and indices broadcast against each other (apart from dim), with
    negative indices counting from the back; without dim, of both flattened (``torch.take_along_dim``,
    which NumPy calls take_along_axis)."""
    _check_index(indices, input, "take_along_dim", ("int64",))
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    if input.ndim == 0:
        raise IndexError(f"take_along_dim: dimension specified as {dim} but the input has no dimensions")
    d = normalize_dim(dim, input.ndim, "take_along_dim", input.shape)
    if indices.ndim != input.ndim:
        raise RuntimeError(f"take_along_dim: input and indices should have the same number of dimensions, "
                           f"got input of shape {tuple(input.shape)} and indices of shape "
                           f"{tuple(indices.shape)}")

    def along(shape, n):  # shape with n at dim d
        return shape[:d] + (n,) + shape[d + 1:]

    n = input.shape[d]
    x = broadcast_to(input, broadcast_shapes(along(indices.shape, n), input.shape, op="take_along_dim"))
    idx = broadcast_to(indices, broadcast_shapes(along(input.shape, indices.shape[d]), indices.shape,
                                                 op="take_along_dim"))
    if idx.array.size:
        idx = _check_bounds(idx, n, d, "take_along_dim", input.shape, negative=True)
        idx = where(idx < 0, idx + n, idx)
    return gather(x, d, idx)


# ---- masks -------------------------------------------------------------------------------------

def masked_select(input, mask):
    """The elements of input where the bool mask is True, as a 1-d tensor (the two broadcast together)."""
    if not isinstance(mask, TensorCore) or mask.dtype is not bool_:
        raise RuntimeError(f"masked_select: expected a bool mask, got {getattr(mask, 'dtype', type(mask))}")
    shape = broadcast_shapes(tuple(input.shape), tuple(mask.shape), op="masked_select")
    return getitem(broadcast_to(input, shape), broadcast_to(mask, shape))


class Nonzero(Function):
    """The coordinates of the nonzero (True, NaN included) elements of x, one row each."""

    differentiable = False

    def forward(self, x):
        xp = self.xp
        coords = xp.nonzero(x)
        return xp.stack([xp.astype(c, xp.int64) for c in coords], axis=1)


def nonzero(input, *, as_tuple: bool = False):
    """(N, ndim) int64 coordinates of the N nonzero elements, in C order; as_tuple: one 1-d tensor
    per dim (a 0-d input counts as 1-d)."""
    rows = Nonzero.apply(_at_least_1d(input))
    if as_tuple:
        return tuple(rows[:, k] for k in range(rows.shape[1]))
    return rows[:, :0] if input.ndim == 0 else rows
