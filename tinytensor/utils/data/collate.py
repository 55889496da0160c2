"""Turning a list of samples into a batch: ``default_collate`` (PyTorch's rules) and ``default_convert``.

``default_collate`` works element-wise through the structure of the first sample:

=====================================  ==============================================================
sample element                         batch
=====================================  ==============================================================
Tensor of shape S                      Tensor of shape (B, *S), stacked on the samples' device
NumPy array / NumPy scalar             tensor of its dtype (as ``tt.tensor`` converts it), stacked
Python float / int / bool              tensor of float64 / int64 / bool (PyTorch's dtypes: *float64*)
str, bytes                             the list of them, unchanged
dict (any Mapping)                     the same type, each key collated
namedtuple                             the same namedtuple, each field collated
tuple / list (any Sequence)            a list of collated positions (a list type is kept)
=====================================  ==============================================================

``collate(batch, collate_fn_map=...)`` with your own ``{type: fn}`` map extends it, as in PyTorch.
"""
from __future__ import annotations

import collections.abc
import copy
import re
from typing import Callable

import numpy as np

from tinytensor import Tensor, stack, tensor
from tinytensor.dtypes import float64

np_str_obj_array_pattern = re.compile(r"[SaUO]")  # NumPy dtypes of strings and objects: not numbers

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def collate(batch, *, collate_fn_map: dict[type | tuple[type, ...], Callable] | None = None):
    """Collate ``batch`` (a list of samples) by the type of its first element: ``collate_fn_map``
    first (exact type, then isinstance in the map's order), then mappings and sequences recursively."""
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type, fn in collate_fn_map.items():
            if isinstance(elem, collate_type):
                return fn(batch, collate_fn_map=collate_fn_map)

    def each(samples):
        return collate(samples, collate_fn_map=collate_fn_map)

    if isinstance(elem, collections.abc.Mapping):
        for i, d in enumerate(batch):
            if lacking := [k for k in elem if k not in d]:
                raise KeyError(f"collate: sample {i} lacks keys {lacking} that sample 0 has; every dict in "
                               f"a batch needs the same keys")
        return _like_mapping(elem, {key: each([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(each(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        sizes = [len(e) for e in batch]
        if any(n != sizes[0] for n in sizes):
            raise RuntimeError(f"each element in list of batch should be of equal size, got sizes {sizes}")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [each(samples) for samples in transposed]  # a list, as PyTorch returns
        return _like_sequence(elem, [each(samples) for samples in transposed])
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def _like_mapping(mapping, items: dict):
    """``items`` in a mapping of ``mapping``'s type: a copy of a mutable one (keeping any attributes it
    carries) updated, another type built from the dict; the dict itself if the type cannot be built."""
    try:
        if isinstance(mapping, collections.abc.MutableMapping):
            clone = copy.copy(mapping)
            clone.update(items)
            return clone
        return type(mapping)(items)
    except TypeError:
        return items


def _like_sequence(seq, items: list):
    """``items`` in a sequence of ``seq``'s type, as PyTorch rebuilds one: a copy of a mutable sequence
    refilled in place, another type built from the list; a plain list if the type cannot be built."""
    try:
        if isinstance(seq, collections.abc.MutableSequence):
            clone = copy.copy(seq)
            for i, item in enumerate(items):
                clone[i] = item
            return clone
        return type(seq)(items)
    except TypeError:
        return items


def collate_tensor_fn(batch, *, collate_fn_map=None):
    """Stack tensors of one shape on one device into a (B, *shape) tensor on that device."""
    elem = batch[0]
    for i, t in enumerate(batch):
        if t.device != elem.device:
            raise RuntimeError(f"default_collate: the samples are on different devices: {elem.device} at "
                               f"entry 0 and {t.device} at entry {i}; move them in the dataset, not in the "
                               f"batch")
        if t.shape != elem.shape:
            raise RuntimeError(
                f"default_collate: stack expects each tensor to be equal size, but got {list(elem.shape)} at "
                f"entry 0 and {list(t.shape)} at entry {i}; pad the samples to one size or pass a collate_fn"
            )
    return stack(batch, 0)


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    if np_str_obj_array_pattern.search(batch[0].dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(batch[0].dtype))
    return collate([tensor(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return tensor(batch)


def collate_float_fn(batch, *, collate_fn_map=None):
    return tensor(batch, dtype=float64)  # float64, as PyTorch's default_collate (not the default dtype)


def collate_int_fn(batch, *, collate_fn_map=None):
    return tensor(batch)  # int64 for ints, bool for bools


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[type | tuple[type, ...], Callable] = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch):
    """A list of samples as one batch: tensors stacked, numbers as tensors, containers element-wise
    (the table in this module's docstring)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """``batch_size=None``'s conversion: NumPy arrays and scalars become tensors, containers are
    converted element-wise, everything else (tensors, Python numbers, strings) is kept."""
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "bytes_"):
        if isinstance(data, np.ndarray) and np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        return tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _like_mapping(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]  # a list, as PyTorch returns
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _like_sequence(data, [default_convert(d) for d in data])
    return data
