"""Indexing ``x[key]``: basic keys (ints, slices with any step, None, Ellipsis), one integer array,
bool masks, and two broadcasting integer arrays. Index arrays are sample inputs; the key holds a
``Slot`` where each goes."""
from __future__ import annotations

from ..draw import Draw
from .base import OpSpec, Sample, same


class Slot:
    """A placeholder in an index key for the sample's k-th index array (an int or bool tensor)."""

    def __init__(self, k: int):
        self.k = k

    def __repr__(self) -> str:
        return f"<index input {self.k}>"


def _fill(key, idx):
    return tuple(idx[it.k - 1] if isinstance(it, Slot) else it for it in key)


def _index(x, *idx, key):
    return x[_fill(key, idx)]


def _basic_key(d: Draw, shape, negative_steps: bool) -> tuple:
    items = []
    for n in shape:
        kind = d.choice(("int", "slice", "full"))
        if kind == "int":
            items.append(d.integers(-n, n - 1))
        elif kind == "full":
            items.append(slice(None))
        else:
            step = d.choice((1, 2, -1, -2) if negative_steps else (1, 2))
            start = d.choice((None, d.integers(-n, n)))
            stop = d.choice((None, d.integers(-n, n)))
            items.append(slice(start, stop, step))
    how = d.choice(("all", "truncate", "ellipsis"))
    if how == "truncate":  # trailing dims left out, maybe spelled as a trailing Ellipsis
        items = items[: d.integers(0, len(items))] + ([Ellipsis] if d.boolean() else [])
    elif how == "ellipsis":  # a run of dims (possibly none) covered by Ellipsis
        i = d.integers(0, len(items))
        items[i : d.integers(i, len(items))] = [Ellipsis]
    if d.boolean():  # None consumes no dim: anywhere
        items.insert(d.integers(0, len(items)), None)
    return tuple(items)


def _getitem_sample(negative_steps: bool):
    def sample(d: Draw) -> Sample:
        shape = d.shape(min_dims=1)
        x = d.array(shape)
        kind = d.choice(("basic", "basic", "array", "mask", "full_mask"))
        if kind == "basic":
            return Sample((x,), dict(key=_basic_key(d, shape, negative_steps)))
        if kind == "array":  # one integer array (repeats, negatives) among full slices
            k = d.integers(0, len(shape) - 1)
            idx = d.indices(d.shape(0, 2), shape[k], negative=d.boolean())
            key = (slice(None),) * k + (Slot(1),)
            if d.boolean():
                key = key + (Ellipsis,)
            return Sample((x, idx), dict(key=key))
        m = len(shape) if kind == "full_mask" else d.integers(1, len(shape))
        return Sample((x, d.mask(shape[:m])), dict(key=(Slot(1),)))

    return sample


def _getitem_arrays_sample(d: Draw) -> Sample:
    """Two integer arrays that broadcast together (NumPy's advanced indexing)."""
    shape = d.shape(min_dims=2)
    x = d.array(shape)
    sa, sb = d.broadcast_shapes(2, max_dims=2)
    i = d.indices(sa, shape[0], negative=True)
    j = d.indices(sb, shape[1])
    return Sample((x, i, j), dict(key=(Slot(1), Slot(2))))


_GETITEM = "Tensor.__getitem__"

SPECS: list[OpSpec] = [
    # negative slice steps: NumPy has them, PyTorch does not (so no torch_ref)
    OpSpec("getitem", _index, _index, _getitem_sample(negative_steps=True), None, op=_GETITEM),
    OpSpec("getitem_torch", _index, _index, _getitem_sample(negative_steps=False), same(_index),
           op=_GETITEM),
    OpSpec("getitem_arrays", _index, _index, _getitem_arrays_sample, same(_index), optional=True,
           op=_GETITEM),
]
