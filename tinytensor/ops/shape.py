"""Shape ops: reshape, permute, indexing, concatenation, splitting, triangles and padding."""
from __future__ import annotations

import functools
import math
import operator

from ..autograd.function import Function
from ..autograd.tensor_core import TensorCore
from ..dtypes import promote
from ._operands import as_element, like
from .broadcast import broadcast_shapes, broadcast_to, sum_to
from .dims import distinct_dims, normalize_dim


class Reshape(Function):
    is_view = True

    def forward(self, x, shape):
        self.in_shape = x.shape
        return self.backend.reshape(x, shape)

    def backward(self, gy):
        return Reshape.apply(gy, self.in_shape)  # (a shape already checked: not through reshape())

    def jvp(self, tx, _):
        return Reshape.apply(tx, tuple(self.result.shape))


class Permute(Function):
    is_view = True

    def forward(self, x, axes):
        self.axes = axes
        return self.backend.permute_dims(x, axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return Permute.apply(gy, tuple(inverse))

    def jvp(self, tx, _):
        return Permute.apply(tx, self.axes)


def _resolve_shape(shape, numel: int, in_shape) -> tuple:
    try:
        shape = tuple(map(operator.index, shape))  # ints (Python's, NumPy's), not 2.0
    except TypeError:
        shape = tuple(_size(s, shape, in_shape) for s in shape)
    if -1 not in shape and math.prod(shape) == numel:  # the common case, checked at once
        return shape
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or numel % known:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {in_shape} into {shape}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    if math.prod(shape) != numel:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {in_shape} ({numel} elements) into {shape}"
        )
    return shape


def _size(s, shape, in_shape) -> int:
    """An int, or a size given as a 0-d integer tensor (PyTorch takes those); anything else is refused."""
    if hasattr(s, "__index__"):
        return operator.index(s)
    if isinstance(s, TensorCore) and s.ndim == 0 and not s.dtype.is_floating_point and s.dtype.name != "bool":
        return int(s)
    raise TypeError(f"reshape: sizes must be ints, got {type(s).__name__} {s!r} in {shape} "
                    f"(for a tensor of shape {tuple(in_shape)})")


def reshape(x, *shape):
    """The same elements in a new shape (one dimension may be -1)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = _resolve_shape(shape, x.array.size, x.shape)
    return x if shape == tuple(x.shape) else Reshape.apply(x, shape)


view = reshape


def flatten(x, start_dim: int = 0, end_dim: int = -1):
    """Merge dims start_dim..end_dim into one."""
    s = normalize_dim(start_dim, x.ndim, "flatten", x.shape)
    e = normalize_dim(end_dim, x.ndim, "flatten", x.shape)
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {x.shape})")
    if x.ndim == 0:
        return reshape(x, (1,))
    shape = x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :]
    return reshape(x, shape)


def ravel(input):
    """The elements as a 1-d tensor, in C order; ``torch.ravel``."""
    return reshape(input, (-1,))


def permute(x, *dims):
    """Reorder dimensions: y.shape[i] = x.shape[dims[i]]."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim:
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of {x.shape}")
    dims = tuple(distinct_dims(dims, x.ndim, "permute", x.shape))
    return x if dims == tuple(range(x.ndim)) else Permute.apply(x, dims)


def transpose(x, dim0: int, dim1: int):
    """Swap two dimensions."""
    d0 = normalize_dim(dim0, x.ndim, "transpose", x.shape)
    d1 = normalize_dim(dim1, x.ndim, "transpose", x.shape)
    if d0 == d1:
        return x
    axes = list(range(x.ndim))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(x, tuple(axes))


swapaxes = swapdims = transpose


def unsqueeze(x, dim: int):
    """Insert a size-1 dimension at dim."""
    dim = normalize_dim(dim, x.ndim + 1, "unsqueeze", x.shape)
    return Reshape.apply(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None):
    """Remove size-1 dimensions (all of them, or those in dim; dim=() removes none, as PyTorch)."""
    if dim is None:
        dims = [i for i, n in enumerate(x.shape) if n == 1]
    else:
        dims = distinct_dims(dim, x.ndim, "squeeze", x.shape)
    shape = tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1))
    return x if shape == x.shape else Reshape.apply(x, shape)


def expand(x, *sizes):
    """Broadcast to sizes without copying (-1 keeps a dimension)."""
    if not sizes:  # x.expand(()) is the 0-d shape; x.expand() names no shape at all
        raise TypeError(f"expand: missing the sizes to expand a tensor of shape {x.shape} to; "
                        f"give them as x.expand(2, 3) or x.expand((2, 3))")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {sizes}")
    for i, s in enumerate(sizes[:lead]):
        if s < 0:
            raise ValueError(f"expand: size {s} is not allowed in a new leading dimension {i} "
                             f"(expanding {x.shape} to {sizes})")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


# ---- indexing ---------------------------------------------------------------------------------

class Getitem(Function):
    """x[index] with an advanced index (integer arrays, bool masks): a copy."""

    def forward(self, x, index):
        self.in_shape, self.index = x.shape, index
        return self.backend.getitem(x, index)

    def backward(self, gy):
        return IndexAdd.apply(gy, self.in_shape, self.index), None

    def jvp(self, tx, _):
        return type(self).apply(tx, self.index)  # the same reading, of the tangent


class BasicGetitem(Getitem):
    """x[index] with ints, slices, None and Ellipsis only: a view sharing x's memory (and version)."""

    is_view = True

    def forward(self, x, index):
        self.in_shape, self.index = x.shape, index
        if Ellipsis not in index:  # x[0] of a 1-d array is a NumPy scalar (a copy); x[0, ...] a 0-d view
            index = index + (Ellipsis,)
        return self.backend.getitem(x, index)


class IndexAdd(Function):
    """zeros(shape)[index] += g: the adjoint of indexing; repeated indices accumulate."""

    def forward(self, g, shape, index):
        self.index = index
        out = self.backend.zeros(shape, g.dtype)
        return self.backend.index_add(out, index, g)

    def backward(self, gy):
        return _getitem(gy, self.index), None, None

    def jvp(self, tg, _shape, _index):
        return IndexAdd.apply(tg, self.result.shape, self.index)


class IndexPut(Function):
    """x with x[index] = value (a copy): what an in-place write records. The gradient of x is zero
    where value was written, and value's gradient is the upstream gradient there."""

    def forward(self, x, value, index):
        self.index = index
        self.value_shape = getattr(value, "shape", None)
        out = self.backend.copy(x)
        self.backend.setitem(out, index, value)
        return out

    def backward(self, gy):
        gx = IndexPut.apply(gy, 0.0, self.index) if self.needs_input_grad[0] else None
        gv = sum_to(_getitem(gy, self.index), self.value_shape) if self.needs_input_grad[1] else None
        return gx, gv, None

    def jvp(self, tx, tv, _):
        x, value, _ = self.primals
        if tx is None:
            tx = like(self.result, self.backend.zeros(self.result.shape, self.result.array.dtype))
        return IndexPut.apply(tx, 0.0 if tv is None else tv, self.index)


def _or_zeros(tangents, primals) -> list:
    """The tangents of an op's tensor inputs, zeros where one has none (cat and stack need them all)."""
    return [like(x, x.backend.zeros(x.shape, x.array.dtype)) if t is None else t
            for t, x in zip(tangents, primals)]


def index_put(x, value, index: tuple):
    """x with x[index] = value, out of place and differentiable; ``index`` as _prepare_index gives it."""
    return IndexPut.apply(x, value, index)


def getitem(x, index):
    """x[index] with ints, slices, None, Ellipsis, integer tensors and bool masks."""
    return _getitem(x, _prepare_index(x, index))


def _getitem(x, index: tuple):
    basic = all(it is None or it is Ellipsis or isinstance(it, (int, slice)) for it in index)
    return (BasicGetitem if basic else Getitem).apply(x, index)


def _prepare_index(x, index):
    """Backend-array components; integer arrays bounds-checked (CuPy would wrap silently)."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    n_consumed = sum(
        (it.ndim if _is_bool(it) else 1) for it in items
        if it is not None and it is not Ellipsis
    )
    dim = 0
    for it in items:
        if it is Ellipsis:
            out.append(it)
            dim += x.ndim - n_consumed
            continue
        if it is None:
            out.append(it)
            continue
        if isinstance(it, (list, tuple)):
            it = like(x, x.backend.asarray(it))  # a Python list of indices, as NumPy and PyTorch take
        elif not isinstance(it, (int, slice, TensorCore)) and hasattr(it, "shape"):
            if it.shape == () and hasattr(it, "__index__"):
                it = int(it)  # a NumPy integer scalar (np.int64(3)) indexes as an int
            elif hasattr(it, "__array_namespace__"):
                raise TypeError("index: wrap index arrays with tt.tensor(..., device=x.device)")
            else:
                it = like(x, x.backend.asarray(it))
        if isinstance(it, TensorCore):
            if it.backend is not x.backend:
                raise RuntimeError(f"index: index tensor is on {it.device} but the tensor is on {x.device}")
            if _is_bool(it):
                want = x.shape[dim : dim + it.ndim]
                if tuple(it.shape) != want:
                    raise IndexError(
                        f"index: boolean mask of shape {it.shape} does not match the indexed "
                        f"dimensions {want} of a tensor of shape {x.shape}"
                    )
                out.append(it.array)
                dim += it.ndim
                continue
            if it.dtype.is_floating_point:
                raise IndexError(f"index: tensors used as indices must be integer or bool, got {it.dtype}")
            if dim >= x.ndim:
                raise IndexError(f"index: too many indices for a tensor of shape {x.shape}")
            size = x.shape[dim]
            if it.array.size:
                lo, hi = x.backend.bounds(it.array)
                if lo < -size or hi >= size:
                    bad = hi if hi >= size else lo
                    raise IndexError(
                        f"index {bad} is out of bounds for dimension {dim} with size {size} "
                        f"(tensor of shape {x.shape})"
                    )
            out.append(it.array)
            dim += 1
            continue
        if isinstance(it, int) or hasattr(it, "__index__") and not isinstance(it, slice):
            it = int(it)
            if dim >= x.ndim or not -x.shape[dim] <= it < x.shape[dim]:
                raise IndexError(
                    f"index {it} is out of bounds for dimension {dim} of a tensor of shape {x.shape}"
                )
        elif isinstance(it, slice) and dim < x.ndim:
            it = _clamp_slice(it, x.shape[dim])
        out.append(it)
        dim += 1
    if not any(it is Ellipsis for it in items) and n_consumed < x.ndim:
        out.append(Ellipsis)  # the Array API wants the trailing ':'s spelled out
    return tuple(out)


def _clamp_slice(s: slice, n: int) -> slice:
    """A slice with its bounds inside a dimension of size n, selecting what Python's would: the
    Array API leaves out-of-range bounds unspecified, so the backend never sees one."""
    if (s.start is None or -n <= s.start <= n) and (s.stop is None or -n <= s.stop <= n):
        return s  # already in range (the common case)
    start, stop, step = s.indices(n)
    count = len(range(start, stop, step))
    if count == 0:
        return slice(0, 0, 1)
    last = start + (count - 1) * step
    # a negative step ends below 0 with stop None (a stop of -1 would count from the back)
    return slice(start, last + 1 if step > 0 else (last - 1 if last > 0 else None), step)


def _is_bool(it) -> bool:
    return isinstance(it, TensorCore) and it.dtype.name == "bool"


# ---- joining and splitting --------------------------------------------------------------------

class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        return self.xp.concat(arrays, axis=dim)

    def backward(self, gy):
        return tuple(split(gy, self.sizes, dim=self.dim))

    def jvp(self, *tangents):
        return Cat.apply(*_or_zeros(tangents, self.primals), dim=self.dim)


class Stack(Function):
    """Join arrays of one shape along a new dimension; the adjoint takes the slices apart again."""

    def forward(self, *arrays, dim):
        self.dim = dim
        return self.xp.stack(arrays, axis=dim)

    def backward(self, gy):
        n = gy.shape[self.dim]
        return tuple(squeeze(g, self.dim) for g in split(gy, [1] * n, dim=self.dim))

    def jvp(self, *tangents):
        return Stack.apply(*_or_zeros(tangents, self.primals), dim=self.dim)


class Split(Function):
    is_view = True

    def forward(self, x, sizes, dim):
        self.dim = dim
        out, start = [], 0
        for s in sizes:
            idx = (slice(None),) * dim + (slice(start, start + s), Ellipsis)
            out.append(x[idx])
            start += s
        return tuple(out)

    def backward(self, *grads):
        return cat(list(grads), dim=self.dim), None, None

    def jvp(self, tx, _sizes, _dim):
        return Split.apply(tx, *self.primals[1:])


def cat(tensors, dim: int = 0):
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: a 0-d tensor (position {i}) cannot be concatenated; use stack")
    dim = normalize_dim(dim, ref.ndim, "cat", ref.shape)
    for t in tensors[1:]:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != dim):
            raise ValueError(
                f"cat: tensors must match except in dimension {dim}, got shapes "
                + ", ".join(str(x.shape) for x in tensors)
            )
    dt = functools.reduce(promote, (t.dtype for t in tensors))  # promoted over every tensor, as PyTorch
    tensors = [t if t.dtype is dt else t.to(dtype=dt) for t in tensors]
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim: int = 0):
    """Join tensors along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    dim = normalize_dim(dim, tensors[0].ndim + 1, "stack", tensors[0].shape)
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
    dt = functools.reduce(promote, (t.dtype for t in tensors))  # promoted as cat promotes
    tensors = [t if t.dtype is dt else t.to(dtype=dt) for t in tensors]
    return Stack.apply(*tensors, dim=dim)


def split(x, split_size_or_sections, dim: int = 0):
    """Pieces of size split_size (the last may be smaller), or of the listed sizes."""
    if x.ndim == 0:
        raise ValueError("split: a 0-d tensor cannot be split")
    dim = normalize_dim(dim, x.ndim, "split", x.shape)
    n = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step < 0 or step == 0 and n:
            raise ValueError(f"split: split_size must be positive, got {step} (dimension {dim} of {x.shape})")
        # an empty dimension still gives one (empty) piece, as PyTorch (also for split_size 0)
        sizes = [min(step, n - s) for s in range(0, n, step)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n} (dimension {dim} of {x.shape})")
    return list(Split.apply(x, tuple(sizes), dim))


def unbind(x, dim: int = 0):
    """The slices of x along dim, that dim removed, as a tuple (``torch.unbind``)."""
    d = normalize_dim(dim, x.ndim, "unbind", x.shape)
    if x.ndim == 0:
        raise ValueError("unbind: a 0-d tensor has no dimension to unbind")
    lead = (slice(None),) * d
    return tuple(getitem(x, lead + (i,)) for i in range(x.shape[d]))


def chunk(x, chunks: int, dim: int = 0):
    """Split into ``chunks`` pieces of (nearly) equal size."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    if x.ndim == 0:
        raise ValueError("chunk: a 0-d tensor cannot be chunked")
    dim = normalize_dim(dim, x.ndim, "chunk", x.shape)
    n = x.shape[dim]
    if n == 0:  # PyTorch gives `chunks` empty pieces
        return list(Split.apply(x, (0,) * chunks, dim))
    return split(x, -(-n // chunks), dim)


class Tri(Function):
    def forward(self, x, k, lower):
        self.k, self.lower = k, lower
        mask = self.backend.tri_mask(x.shape[-2], x.shape[-1], k, lower)
        return self.xp.where(mask, x, self.xp.zeros_like(x))

    def backward(self, gy):
        return Tri.apply(gy, self.k, self.lower), None, None

    def jvp(self, tx, _k, _lower):
        return Tri.apply(tx, self.k, self.lower)


def tril(x, diagonal: int = 0):
    """Keep the lower triangle (j - i <= diagonal) of the last two dims."""
    _two_dims(x, "tril")
    return Tri.apply(x, diagonal, True)


def triu(x, diagonal: int = 0):
    """Keep the upper triangle (j - i >= diagonal) of the last two dims."""
    _two_dims(x, "triu")
    return Tri.apply(x, diagonal, False)


def _two_dims(x, op):
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a tensor with at least 2 dimensions, got shape {x.shape}")


class Pad(Function):
    def forward(self, x, widths, value):
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        shape = tuple(n + lo + hi for (lo, hi), n in zip(widths, x.shape))
        out = self.backend.full(shape, value, self.backend.dtype_of(x))
        out[self.slices] = x
        return out

    def backward(self, gy):
        return BasicGetitem.apply(gy, self.slices), None, None

    def jvp(self, tx, _widths, _value):
        return Pad.apply(tx, self.primals[1], 0.0)  # the padding is constant


def pad(x, pad, mode: str = "constant", value: float = 0.0):
    """Constant padding; ``pad`` lists (left, right) pairs starting from the last dimension. A negative
    width removes that many elements from that side instead (as PyTorch)."""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    as_element(value, x.dtype, "pad")  # the fill must fit an integer dtype
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected pairs for at most {x.ndim} dims, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if any(p < 0 for p in pad):  # crop first: x[..., -lo : n + hi] where a width is negative
        keep = []
        for d, ((lo, hi), n) in enumerate(zip(widths, x.shape)):
            cut_lo, cut_hi = max(-lo, 0), max(-hi, 0)
            if cut_lo + cut_hi > n:
                raise RuntimeError(f"pad: padding {pad} removes {cut_lo + cut_hi} elements from dim {d} of "
                                   f"size {n} (tensor of shape {x.shape}): the output size would be negative")
            keep.append(slice(cut_lo, n - cut_hi))
        x = BasicGetitem.apply(x, tuple(keep))
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    return Pad.apply(x, tuple(widths), value)



# ---- NumPy-style joining and splitting: atleast_nd, h/v/dstack, tensor_split, h/v/dsplit ----------

def _at_least(op: str, ndim: int, tensors):
    """Each tensor with size-1 dims added until it has ``ndim``: one tensor back for one tensor, a tuple
    for several or for a sequence (PyTorch's reading)."""
    one = len(tensors) == 1 and isinstance(tensors[0], TensorCore)
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if not isinstance(t, TensorCore):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")
        # 0-d -> (1, 1, 1); (n,) -> (1, n) or (1, n, 1); (m, n) -> (m, n, 1)
        shape = {0: (1,) * ndim, 1: (1,) + t.shape + (1,) * (ndim - 2), 2: t.shape + (1,)}.get(t.ndim)
        out.append(reshape(t, shape) if t.ndim < ndim else t)
    return out[0] if one else tuple(out)


def atleast_1d(*tensors):
    """A 0-d tensor as shape (1,), others as they are; ``torch.atleast_1d``."""
    return _at_least("atleast_1d", 1, tensors)


def atleast_2d(*tensors):
    """0-d as (1, 1) and (n,) as (1, n), others as they are; ``torch.atleast_2d``."""
    return _at_least("atleast_2d", 2, tensors)


def atleast_3d(*tensors):
    """0-d as (1, 1, 1), (n,) as (1, n, 1), (m, n) as (m, n, 1), others as they are; ``torch.atleast_3d``."""
    return _at_least("atleast_3d", 3, tensors)


def _stack_list(tensors, op: str) -> list:
    if isinstance(tensors, TensorCore) or not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op}: expected a tuple or list of Tensors, got {type(tensors).__name__}")
    if not tensors:
        raise RuntimeError(f"{op}: expects a non-empty list of tensors")
    return list(tensors)


def hstack(tensors):
    """Join along dim 1 (dim 0 for 1-d tensors), 0-d tensors taken as 1-d; ``torch.hstack``."""
    tensors = atleast_1d(_stack_list(tensors, "hstack"))
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Join along dim 0 after atleast_2d: (n,) tensors become rows; ``torch.vstack``."""
    return cat(atleast_2d(_stack_list(tensors, "vstack")), 0)


row_stack = vstack


def dstack(tensors):
    """Join along dim 2 after atleast_3d; ``torch.dstack``."""
    return cat(atleast_3d(_stack_list(tensors, "dstack")), 2)


def column_stack(tensors):
    """Join as columns: 0-d and 1-d tensors become (n, 1) columns, then hstack; ``torch.column_stack``."""
    tensors = _stack_list(tensors, "column_stack")
    return hstack([reshape(t, (t.array.size, 1)) if t.ndim <= 1 else t for t in tensors])


def tensor_split(input, indices_or_sections, dim: int = 0):
    """Pieces along dim: n sections (the first size % n one longer), or cut before each of the indices,
    as Python slices cut (input[:i0], input[i0:i1], ..., input[ik:]); ``torch.tensor_split``."""
    if input.ndim == 0:
        raise RuntimeError("tensor_split: expected at least a 1-dimensional tensor, but got a tensor with "
                           "0 dims")
    d = normalize_dim(dim, input.ndim, "tensor_split", input.shape)
    cuts = indices_or_sections
    if isinstance(cuts, TensorCore):  # a 0-d int64 tensor is sections, a 1-d one indices
        if cuts.ndim > 1 or cuts.dtype.name != "int64":
            raise RuntimeError(f"tensor_split: expected indices_or_sections to be a 0-d or 1-d int64 "
                               f"tensor, got {cuts.dtype.name} of shape {tuple(cuts.shape)}")
        cuts = int(cuts) if cuts.ndim == 0 else [int(i) for i in cuts.tolist()]
    n = input.shape[d]
    if isinstance(cuts, (tuple, list)):
        bounds = [None, *map(operator.index, cuts), None]
    else:
        sections = operator.index(cuts)
        if sections <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, got {sections}")
        size, extra = divmod(n, sections)
        bounds = [i * size + min(i, extra) for i in range(sections + 1)]
    lead = (slice(None),) * d
    return tuple(getitem(input, lead + (slice(a, b),)) for a, b in zip(bounds, bounds[1:]))


def _split_along(op: str, input, indices_or_sections, dim: int, min_dims: int):
    """hsplit, vsplit and dsplit: tensor_split along dim, where a number of sections must divide it."""
    if input.ndim < min_dims:
        raise RuntimeError(f"{op}: requires a tensor with at least {min_dims} dimension(s), but got a tensor "
                           f"with {input.ndim} dimensions (shape {tuple(input.shape)})")
    if isinstance(indices_or_sections, int) and not isinstance(indices_or_sections, bool):
        n = input.shape[dim]
        if indices_or_sections >= 0 and (indices_or_sections == 0 or n % indices_or_sections):
            raise RuntimeError(f"{op}: attempted to split along dimension {dim}, but the size of the "
                               f"dimension {n} is not divisible by the split_size {indices_or_sections} "
                               f"(shape {tuple(input.shape)})")
    return tensor_split(input, indices_or_sections, dim)


def hsplit(input, indices_or_sections):
    """tensor_split along dim 1 (dim 0 for a 1-d tensor); sections must divide it; ``torch.hsplit``."""
    return _split_along("hsplit", input, indices_or_sections, 1 if input.ndim > 1 else 0, 1)


def vsplit(input, indices_or_sections):
    """tensor_split along dim 0 of a tensor of 2 or more dims; ``torch.vsplit``."""
    return _split_along("vsplit", input, indices_or_sections, 0, 2)


def dsplit(input, indices_or_sections):
    """tensor_split along dim 2 of a tensor of 3 or more dims; ``torch.dsplit``."""
    return _split_along("dsplit", input, indices_or_sections, 2, 3)


# ---- diagonals ----------------------------------------------------------------------------------

def _diagonal_dims(op: str, ndim: int, dim1: int, dim2: int, shape) -> tuple:
    d1, d2 = normalize_dim(dim1, ndim, op, shape), normalize_dim(dim2, ndim, op, shape)
    if d1 == d2:
        raise RuntimeError(f"{op}: diagonal dimensions cannot be identical {dim1}, {dim2} (shape "
                           f"{tuple(shape)})")
    return d1, d2


def _diagonal_length(rows: int, cols: int, offset: int) -> int:
    return max(min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols), 0)


def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """The entries x[..., i, i + offset, ...] of dims dim1 and dim2, as a new last dim (empty where the
    offset is past the matrix); ``torch.diagonal``. Read as a strided slice of the flattened matrix."""
    d1, d2 = _diagonal_dims("diagonal", input.ndim, dim1, dim2, input.shape)
    x = movedim(input, (d1, d2), (-2, -1))  # (..., rows, cols)
    rows, cols = x.shape[-2:]
    length = _diagonal_length(rows, cols, offset)
    start = offset if offset >= 0 else -offset * cols
    flat = reshape(x, x.shape[:-2] + (rows * cols,))  # the diagonal: every (cols + 1)-th from start
    return getitem(flat, (Ellipsis, slice(start, start + length * (cols + 1), cols + 1) if length else
                          slice(0, 0)))


def diag_embed(input, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """Matrices (in dims dim1, dim2 of a result with one dim more) with input's last dim on their
    diagonal ``offset`` and zeros elsewhere; ``torch.diag_embed``."""
    d1, d2 = _diagonal_dims("diag_embed", input.ndim + 1, dim1, dim2, input.shape)
    n = input.shape[-1]
    m = n + abs(offset)
    start = offset if offset >= 0 else -offset * m
    # each entry followed by m zeros, shifted to start: x0 at start, x1 at start + m + 1, ... (of m × m)
    spaced = reshape(pad(unsqueeze(input, -1), (0, m)), input.shape[:-1] + (n * (m + 1),))
    flat = pad(spaced, (start, m * m - start - n * (m + 1)))
    return movedim(reshape(flat, input.shape[:-1] + (m, m)), (-2, -1), (d1, d2))


def diag(input, diagonal: int = 0):
    """A 1-d tensor as the diagonal ``diagonal`` of a square matrix, or a matrix's diagonal as a 1-d
    tensor; ``torch.diag``."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"diag: supports 1-d or 2-d tensors, got {input.ndim}-d (shape "
                           f"{tuple(input.shape)}); use diagonal or diag_embed")
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    return input.diagonal(diagonal)


def trace(input):
    """The sum of a matrix's main diagonal (integers sum to int64); ``torch.trace``."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got a tensor with dim {input.ndim} (shape "
                           f"{tuple(input.shape)})")
    if input.dtype.name == "bool":
        raise NotImplementedError("trace: not implemented for bool tensors (as in PyTorch); convert with "
                                  ".long() first")
    return diagonal(input).sum()


def broadcast_tensors(*tensors):
    """The tensors broadcast to their common shape, as a tuple; ``torch.broadcast_tensors``."""
    for i, t in enumerate(tensors):
        if not isinstance(t, TensorCore):
            raise TypeError(f"broadcast_tensors: expected Tensors, got {type(t).__name__} at position {i}")
    if not tensors:
        return ()
    shape = broadcast_shapes(*(t.shape for t in tensors), op="broadcast_tensors")
    return tuple(broadcast_to(t, shape) for t in tensors)




# ---- PyTorch's other shape helpers: narrow, movedim, unflatten, meshgrid ------------------------

def narrow(x, dim: int, start: int, length: int):
    """``length`` entries of dim from ``start`` on (a negative start counts from the end):
    x[:, start:start + length] for dim = 1; ``torch.narrow``."""
    d = normalize_dim(dim, x.ndim, "narrow", x.shape)
    n = x.shape[d]
    start, length = operator.index(start), operator.index(length)
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dim {d} of size {n} (shape {x.shape})")
    start += n if start < 0 else 0
    if length < 0 or start + length > n:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({n}) of "
                           f"dim {d} (shape {x.shape})")
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def movedim(x, source, destination):
    """Move dims ``source`` to positions ``destination`` (ints or tuples of them), keeping the order of
    the others; ``torch.movedim`` / ``moveaxis``."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} must name as many dims")
    for d in src + dst:  # every dim in range first, then no repeats (PyTorch's order of errors)
        normalize_dim(d, x.ndim, "movedim", x.shape)
    src = distinct_dims(src, x.ndim, "movedim", x.shape)
    dst = distinct_dims(dst, x.ndim, "movedim", x.shape)
    rest = iter(i for i in range(x.ndim) if i not in src)
    placed = dict(zip(dst, src))
    return permute(x, tuple(placed[i] if i in placed else next(rest) for i in range(x.ndim)))


moveaxis = movedim


def unflatten(x, dim: int, sizes):
    """Dim ``dim`` split into ``sizes`` (one of them may be -1): (B, 12) -> (B, 3, 4); ``torch.unflatten``."""
    if not isinstance(sizes, (tuple, list)):
        raise TypeError(f"unflatten: sizes must be a tuple or list of ints, got {type(sizes).__name__}")
    for i, s in enumerate(sizes):
        if not isinstance(s, int) or isinstance(s, bool):
            raise TypeError(f"unflatten: sizes must be ints, but found element of type {type(s).__name__} "
                            f"at pos {i}")
    d = normalize_dim(dim, x.ndim, "unflatten", x.shape)
    n, sizes = x.shape[d], tuple(sizes)
    known = math.prod(s for s in sizes if s != -1)
    fits = n == known if -1 not in sizes else sizes.count(-1) == 1 and known and n % known == 0
    if not sizes or not fits:
        raise RuntimeError(f"unflatten: sizes {list(sizes)} don't multiply up to the size of dim {d} "
                           f"({n}) in the input of shape {x.shape}")
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1:])


def meshgrid(*tensors, indexing: str = "ij"):
    """Coordinate grids of 1-d tensors: output i holds tensors[i] along dim i, repeated along the
    others (indexing="xy" swaps the first two dims, as NumPy's and PyTorch's); ``torch.meshgrid``."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors:
        raise RuntimeError("meshgrid: expects a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, TensorCore):
            raise TypeError(f"meshgrid: expected Tensors, got {type(t).__name__} at position {i}")
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects 0-d or 1-d tensors, got shape {t.shape} at position {i}")
        if t.dtype is not tensors[0].dtype or t.backend is not tensors[0].backend:
            raise RuntimeError(f"meshgrid: expects all tensors to have the same dtype and device, got "
                               f"{tensors[0].dtype.name} on {tensors[0].device} and {t.dtype.name} on "
                               f"{t.device} (position {i})")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        axes[0], axes[1] = 1, 0  # tensors[0] runs along dim 1, tensors[1] along dim 0
    shape = [0] * len(tensors)
    for t, a in zip(tensors, axes):
        shape[a] = t.array.size
    grids = []
    for t, a in zip(tensors, axes):
        ones = [1] * len(tensors)
        ones[a] = t.array.size
        grids.append(broadcast_to(reshape(t, tuple(ones)), tuple(shape)))
    return tuple(grids)
