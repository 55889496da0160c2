"""Batched tensors: what the function inside ``vmap`` sees instead of the stacked inputs.

A ``BatchedTensor`` is an ordinary tensor (``value``) whose first dims are batch dims, one per vmap
it is batched by (``levels``, newest vmap first), followed by the dims the function sees: its
*logical* shape. ``vmap(vmap(f))(x)`` with x of shape (3, 4, 5) gives f a tensor of logical shape
(5,) whose value has shape (4, 3, 5): the inner vmap's dim first.

Every op goes through ``Function.apply``; while a vmap runs, ``apply`` hands calls with a batched
argument to ``apply_batched``, which runs the op once on the values (the batching rules of
``batching.py``), so the graph for backward and the tangents for forward mode are recorded on
ordinary tensors. An op reading a batched tensor's array directly, outside a Function, gets an
array stand-in that knows only the shape and dtype: anything more raises ``RawAccess``, and vmap
then runs the function once per sample instead (with a warning that says where).
"""
from __future__ import annotations

import sys
from contextvars import ContextVar
from dataclasses import dataclass

from ..tensor import Tensor


@dataclass(frozen=True)
class Level:
    """One running vmap: its id (larger = newer), batch size and randomness mode."""

    id: int
    size: int
    randomness: str


active: ContextVar[tuple] = ContextVar("tinytensor_vmap_levels", default=())  # oldest first


def level_sizes(levels: tuple) -> tuple:
    """The batch sizes of these level ids (in the order given)."""
    sizes = {lv.id: lv.size for lv in active.get()}
    return tuple(sizes[lv] for lv in levels)


class RawAccess(RuntimeError):
    """Code outside a Function read a batched tensor's values: vmap falls back to a loop."""


class _ArrayStandIn:
    """What ``batched.array`` gives: the logical shape, size and dtype, and nothing else."""

    __slots__ = ("shape", "dtype", "ndim", "size", "owner")

    def __init__(self, owner):
        self.owner = owner
        self.shape = owner.shape
        self.dtype = owner.value.array.dtype
        self.ndim = len(self.shape)
        self.size = 1
        for n in self.shape:
            self.size *= n

    def __getattr__(self, name):
        _refuse(f"reads .{name} of it")

    def __repr__(self):
        return f"<the array of a batched tensor of shape {self.shape}>"


def _refuse(what: str):
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    where = "?" if frame is None else f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})"
    raise RawAccess(f"{where} {what}: the values of a batched tensor are not there to read directly")


def _refusing(name):
    def method(self, *args, **kwargs):
        _refuse(f"uses it as an array ({name})")

    return method


for _name in ("__array__", "__array_namespace__", "__array_ufunc__", "__array_function__", "__dlpack__",
              "__bool__", "__float__", "__int__", "__index__", "__len__", "__iter__", "__getitem__",
              "__setitem__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__pow__", "__neg__", "__invert__", "__and__", "__or__",
              "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__matmul__", "__iadd__",
              "__imul__", "__isub__"):
    setattr(_ArrayStandIn, _name, _refusing(_name))


class BatchedTensor(Tensor):
    """A tensor batched by one or more vmaps: ``value``'s first ``len(levels)`` dims are the batch."""

    __slots__ = ("value", "levels")

    def __init__(self, value: Tensor, levels: tuple):
        assert not isinstance(value, BatchedTensor) and value.ndim >= len(levels)
        self.value, self.levels = value, levels
        self.backend = value.backend
        self._requires_grad = False
        self.grad = None
        self._output_nr = 0
        self._version = [0]
        self._hooks = self._post_accumulate_hooks = self._view_src = None

    # ---- what the function sees: the logical tensor --------------------------------------------
    @property
    def array(self):
        return _ArrayStandIn(self)

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape[len(self.levels):])

    @property
    def ndim(self) -> int:
        return self.value.ndim - len(self.levels)

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def requires_grad(self) -> bool:
        return self.value.requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        raise RuntimeError("vmap: requires_grad cannot be set on a batched tensor inside vmap; use "
                           "func.grad or func.vjp inside the vmapped function instead")

    @property
    def grad_fn(self):
        return self.value.grad_fn

    @grad_fn.setter
    def grad_fn(self, node):
        pass  # Tensor.__init__'s assignment; a batched tensor's history is its value's

    @property
    def _fw(self):
        return None  # tangents live on the value (forward_ad.tangent_of asks _tangent_at)

    @_fw.setter
    def _fw(self, tangents):
        pass

    def _tangent_at(self, level: int):
        from ..autograd.forward_ad import tangent_of

        t = tangent_of(self.value, level)
        return None if t is None else BatchedTensor(t, self.levels)

    def numel(self) -> int:
        return _ArrayStandIn(self).size

    def detach(self):
        return BatchedTensor(self.value.detach(), self.levels)

    def contiguous(self, memory_format=None):
        return self

    def requires_grad_(self, requires_grad: bool = True):
        self.requires_grad = requires_grad  # refused, as above

    def backward(self, *args, **kwargs):
        raise RuntimeError("vmap: backward() on a batched tensor inside vmap; use func.grad or func.vjp "
                           "inside the vmapped function (vmap(grad(f)) gives per-sample gradients)")

    def _no_values(self, what):
        raise RuntimeError(
            f"vmap: {what} of a batched tensor (logical shape {self.shape}) inside vmap: its value differs "
            f"from sample to sample, so Python control flow on it cannot be batched; compute it with "
            f"tensor ops (e.g. tt.where instead of if), or run the function outside vmap"
        )

    def item(self):
        self._no_values(".item()")

    def numpy(self):
        self._no_values(".numpy()")

    def tolist(self):
        self._no_values(".tolist()")

    def __bool__(self):
        self._no_values("bool()")

    def __repr__(self) -> str:
        return f"BatchedTensor(logical shape {self.shape}, levels {self.levels}, value={self.value!r})"


def batched_levels(args) -> tuple:
    """The levels (newest first) the batched tensors among ``args`` are batched by."""
    seen = set()
    for a in args:
        if type(a) is BatchedTensor:
            seen.update(a.levels)
    return tuple(sorted(seen, reverse=True))


def align(t, levels: tuple, rank: int | None = None, expand: bool = False):
    """``t`` (batched or not) as an ordinary tensor with one leading dim per level of ``levels`` (a
    superset of its own, newest first), size 1 where it is not batched (its size with expand=True),
    then its logical dims, with size-1 dims added in front of them up to ``rank``."""
    if type(t) is BatchedTensor:
        value, own = t.value, t.levels
    else:
        value, own = t, ()
    logical = tuple(value.shape[len(own):])
    if own != tuple(lv for lv in levels if lv in own):  # not in the levels' order: reorder the batch dims
        order = [own.index(lv) for lv in levels if lv in own]
        value = value.permute(*order, *range(len(own), value.ndim))
        own = tuple(lv for lv in levels if lv in own)
    pad = () if rank is None else (1,) * (rank - len(logical))
    sizes = dict(zip(own, value.shape[:len(own)]))
    shape = tuple(sizes.get(lv, 1) for lv in levels) + pad + logical
    if shape != tuple(value.shape):
        value = value.reshape(shape)
    if expand:
        full = level_sizes(levels) + pad + logical
        if full != tuple(value.shape):
            value = value.expand(*full)
    return value


def wrap(value, levels: tuple):
    """``value`` (an op's result on aligned inputs) as the batched tensor the function sees."""
    if type(value) is tuple:
        return tuple(wrap(v, levels) for v in value)
    if type(value) is list:
        return [wrap(v, levels) for v in value]
    return BatchedTensor(value, levels) if levels else value
