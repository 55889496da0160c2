"""Rearranging elements: t (the matrix transpose), flip, roll and repeat (tiling). Each result is a
copy with its own memory, as PyTorch's (t is a view, as there)."""
from __future__ import annotations

import operator

import numpy as np

from ..autograd.function import Function
from .dims import distinct_dims, normalize_dim
from .shape import transpose


def t(input):
    """The transpose of a matrix; a 0-d or 1-d tensor is returned as it is."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D (shape "
                           f"{tuple(input.shape)}); use transpose(dim0, dim1) or mT")
    return transpose(input, 0, 1) if input.ndim == 2 else input


class Flip(Function):
    """y = x with the order along dims reversed; its own adjoint."""

    def forward(self, x, dims):
        self.dims = dims
        return self.backend.copy(self.xp.flip(x, axis=dims) if dims else x)

    def backward(self, gy):
        return Flip.apply(gy, self.dims), None

    def jvp(self, tx, _):
        return Flip.apply(tx, self.dims)


def flip(input, *dims):
    """input with the order of its elements reversed along each of dims: flip(x, (0, 1)) or x.flip(0, 1)."""
    if not dims:
        raise TypeError("flip: missing the dims to flip, e.g. flip(x, (0,)) or x.flip(0)")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    dims = tuple(distinct_dims(dims, input.ndim, "flip", input.shape)) if dims else ()
    return Flip.apply(input, dims if input.ndim else ())


def fliplr(input):
    """input with the order along dim 1 reversed (left-right, for a matrix); ``torch.fliplr``."""
    if input.ndim < 2:
        raise RuntimeError(f"fliplr: input must be >= 2-d, got shape {tuple(input.shape)}")
    return flip(input, 1)


def flipud(input):
    """input with the order along dim 0 reversed (up-down, for a matrix); ``torch.flipud``."""
    if input.ndim < 1:
        raise RuntimeError("flipud: input must be >= 1-d, got a 0-d tensor")
    return flip(input, 0)


def rot90(input, k: int = 1, dims=(0, 1)):
    """input turned k quarter turns in the plane of dims, from the first dim towards the second
    (k < 0 turns the other way); ``torch.rot90``."""
    dims, k = _ints(dims, "rot90", "dims"), operator.index(k) % 4
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {input.ndim} (shape "
                           f"{tuple(input.shape)})")
    d0, d1 = (normalize_dim(d, input.ndim, "rot90", input.shape) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: expected rotation dims to be different, but got dim0 = {dims[0]} and "
                           f"dim1 = {dims[1]}")
    if k == 0:
        return flip(input, ())  # (a copy, as PyTorch's)
    if k == 2:
        return flip(input, (d0, d1))
    return transpose(flip(input, d1 if k == 1 else d0), d0, d1)


class Roll(Function):
    """y_{(i + s) mod n} = x_i along each dim (over the flattened tensor for dims None); the adjoint
    rolls back by -s."""

    def forward(self, x, shifts, dims):
        self.shifts, self.dims = shifts, dims
        if x.size == 0:
            return self.backend.copy(x)
        if dims is None:
            return self.xp.roll(x, shifts[0])
        return self.xp.roll(x, shifts, axis=dims)

    def backward(self, gy):
        return Roll.apply(gy, tuple(-s for s in self.shifts), self.dims), None, None

    def jvp(self, tx, _shifts, _dims):
        return Roll.apply(tx, self.shifts, self.dims)


def roll(input, shifts, dims=None):
    """input with its elements shifted by ``shifts`` along ``dims`` (wrapping around at the end);
    without dims the flattened tensor is rolled and the shape restored."""
    shifts = _ints(shifts, "roll", "shifts")
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:0 (give "
                               f"dims for several shifts)")
        return Roll.apply(input, shifts, None)
    dims = _ints(dims, "roll", "dims")
    if not shifts:
        raise RuntimeError("roll: `shifts` required")
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    if input.ndim == 0:
        raise IndexError(f"roll: Dimension specified as {dims[0]} but tensor has no dimensions")
    if input.array.size == 0:  # nothing to move: PyTorch checks no dim then
        return Roll.apply(input, (0,), None)
    total: dict = {}
    for s, d in zip(shifts, dims):  # a dim named twice rolls by the sum of its shifts
        d = normalize_dim(d, input.ndim, "roll", input.shape)
        total[d] = total.get(d, 0) + s
    return Roll.apply(input, tuple(total.values()), tuple(total))


def _ints(v, op: str, name: str) -> tuple:
    items = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    try:
        return tuple(operator.index(i) for i in items)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {v!r}") from None


class Repeat(Function):
    """y = x tiled: sizes[i] copies of it along dim i (x first gets leading size-1 dims): x of shape
    (a, b) is broadcast as (r0, a, r1, b) and merged to (r0·a, r1·b). The adjoint sums the copies."""

    def forward(self, x, sizes):
        xp = self.xp
        self.in_shape = x.shape
        shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
        self.pairs = tuple(n for r, s in zip(sizes, shape) for n in (r, s))  # (r0, a, r1, b)
        spread = xp.reshape(x, tuple(n for s in shape for n in (1, s)))  # (1, a, 1, b)
        tiled = self.backend.copy(xp.broadcast_to(spread, self.pairs))
        return xp.reshape(tiled, tuple(r * s for r, s in zip(sizes, shape)))

    def backward(self, gy):
        copies = tuple(range(0, len(self.pairs), 2))  # the r axes
        return gy.reshape(self.pairs).sum(dim=copies).reshape(self.in_shape), None

    def jvp(self, tx, _):
        return Repeat.apply(tx, self.primals[1])


def repeat(input, *sizes):
    """input tiled sizes[i] times along dim i (PyTorch's Tensor.repeat; extra sizes add leading dims):
    x.repeat(2, 3)."""
    if not sizes:
        raise TypeError("repeat: missing the sizes, e.g. x.repeat(2, 3) or x.repeat((2, 3))")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = _ints(sizes, "repeat", "sizes")
    if len(sizes) < input.ndim:
        raise RuntimeError(f"repeat: the {len(sizes)} sizes {sizes} cannot be fewer than the {input.ndim} "
                           f"dimensions of a tensor of shape {tuple(input.shape)}")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    if any(n * r < 0 for n, r in zip(shape, sizes)):  # as PyTorch: only a negative result size is an error
        raise RuntimeError(f"repeat: sizes {sizes} give a negative dimension for a tensor of shape "
                           f"{tuple(input.shape)}")
    sizes = tuple(max(r, 0) for r in sizes)  # a negative size left here repeats an empty dim: 0 copies
    return Repeat.apply(input, sizes)


def tile(input, dims):
    """input repeated dims[i] times along dim i; fewer dims than input has are padded with 1s in front
    (where repeat refuses them); ``torch.tile``."""
    dims = _ints(dims, "tile", "dims")
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each entry repeated: ``repeats`` times (an int), or repeats[i] times for entry i (a 1-d integer
    tensor) along dim; without dim, of the flattened input. ``repeat_interleave(counts)`` alone is the
    indices 0, 1, ... each repeated counts[i] times. ``torch.repeat_interleave``; its gradient sums the
    copies (it is an index_select)."""
    from ..creation import arange
    from ._operands import like
    from .indexing import index_select
    from .shape import reshape

    if repeats is None:  # repeat_interleave(counts): the positions of counts, each counts[i] times
        repeats, input = input, arange(input.array.size, device=input.device)
    if dim is None:
        input, d = reshape(input, (-1,)), 0
    elif input.ndim == 0:
        raise IndexError(f"repeat_interleave: dim {dim} given, but the input is 0-d (no dimensions); leave "
                         "dim out to repeat its one element")
    else:
        d = normalize_dim(dim, input.ndim, "repeat_interleave", input.shape)
    n = input.shape[d] if input.ndim else 1
    if hasattr(repeats, "array"):
        if repeats.dtype.is_floating_point or repeats.dtype.name == "bool":
            raise RuntimeError(f"repeat_interleave: repeats must be an integer tensor, got "
                               f"{repeats.dtype.name}")
        if repeats.ndim > 1 or repeats.array.size not in (1, n):
            raise RuntimeError(f"repeat_interleave: repeats must have the shape ({n},) of dim {d} of the "
                               f"input (shape {tuple(input.shape)}) or one element, got shape "
                               f"{tuple(repeats.shape)}")
        counts = np.asarray(repeats.backend.to_host(repeats.array)).reshape(-1)  # they size the output
    else:
        counts = np.array([operator.index(repeats)])
    counts = np.broadcast_to(counts, (n,))  # (one count for every entry, or one for all)
    if (counts < 0).any():
        raise RuntimeError(f"repeat_interleave: repeats must be non-negative, got {counts.tolist()}")
    positions = np.repeat(np.arange(n), counts)
    if output_size is not None and positions.size != output_size:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} is not the {positions.size} "
                           "entries the repeats give")
    index = like(input, input.backend.from_host(positions))
    return index_select(input if input.ndim else reshape(input, (1,)), d, index)


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None):
    """The n-th forward difference along dim, out[i] = x[i + 1] - x[i] applied n times, after
    ``prepend`` and ``append`` are joined on (``torch.diff``). Bool tensors differ by logical xor, as
    PyTorch's; each difference has one entry fewer, down to none."""
    from .elementwise import logical_xor, sub
    from .shape import cat, narrow

    n = operator.index(n)
    if input.ndim == 0:
        raise RuntimeError("diff: expects input to be at least one-dimensional (got a 0-d tensor)")
    if n < 0:
        raise RuntimeError(f"diff: order n must be non-negative, got {n}")
    # PyTorch's order of checks: the dim (unless n = 0), then the dims of prepend and append
    d = normalize_dim(dim, input.ndim, "diff", input.shape) if n else None
    parts = [input]
    for name, extra in (("prepend", prepend), ("append", append)):
        if extra is None:
            continue
        if not hasattr(extra, "array"):
            raise TypeError(f"diff: {name} must be a Tensor, got {type(extra).__name__}")
        if extra.ndim != input.ndim:
            raise RuntimeError(f"diff: {name} must have the input's {input.ndim} dimensions, got shape "
                               f"{tuple(extra.shape)} for input shape {tuple(input.shape)}")
        parts.insert(0 if name == "prepend" else len(parts), extra)
    if n == 0:  # the input itself, whatever dim and the lengths of prepend and append (PyTorch's)
        return input.clone()
    x = cat(parts, d) if len(parts) > 1 else input
    step = logical_xor if x.dtype.name == "bool" else sub
    for _ in range(n):
        length = max(x.shape[d] - 1, 0)
        if length == 0:
            return narrow(x, d, 0, 0)
        x = step(narrow(x, d, 1, length), narrow(x, d, 0, length))
    return x


def cartesian_prod(*tensors):
    """Every combination of one entry from each 1-d tensor, as the rows of an (N, len(tensors)) tensor
    in itertools.product's order; one tensor comes back as itself (``torch.cartesian_prod``)."""
    from .shape import meshgrid, reshape, stack

    for i, t in enumerate(tensors):
        if not hasattr(t, "array") or t.ndim != 1:
            raise RuntimeError(f"cartesian_prod: expects 1-d tensors, got "
                               f"{tuple(t.shape) if hasattr(t, 'shape') else type(t).__name__}"
                               f" at position {i}")
    if len(tensors) == 1:
        return tensors[0]
    return stack([reshape(g, (-1,)) for g in meshgrid(*tensors, indexing="ij")], 1)
