"""``Tensor``: the user-facing array with autograd, PyTorch's names and semantics."""
from __future__ import annotations

import numpy as np

from . import compat, ops
from .autograd.grad_mode import is_grad_enabled
from .autograd.tensor_core import TensorCore, refresh_view, replay_view
from .backends import for_device
from .dtypes import (
    DTYPES,
    DType,
    as_dtype,
    bool_,
    default_float,
    float16,
    float32,
    float64,
    int32,
    int64,
    kind,
)
from .ops._operands import as_element, scalar
from .ops.copy import clone, to_backend


def _check_cast(result, target, op: str) -> None:
    """An in-place op keeps its target's dtype: a result of a higher kind (bool < integer < float) is
    refused, as PyTorch does (an int64 tensor += 0.5, a bool tensor += 1)."""
    if kind(result) > kind(target):
        raise RuntimeError(f"{op}: result type {result.name} can't be cast to the tensor's dtype "
                           f"{target.name}")


class Tensor(TensorCore):
    """An n-dimensional array on one device that records the ops applied to it for backward."""

    __slots__ = ()
    __hash__ = object.__hash__  # == is elementwise, so hash by identity (as PyTorch)
    __array_ufunc__ = None  # NumPy scalars and arrays defer to our reflected operators

    @staticmethod
    def _legacy_new(args: tuple):
        return compat.legacy_new(args, default_float())

    # ---- conversion and metadata ----------------------------------------------------------
    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", precision=4)
        extra = [f"dtype={self.dtype.name}"]
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extra)})"

    def size(self, dim: int | None = None):
        """The shape as a tuple, or the size of dimension ``dim``; ``torch.Tensor.size``."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self.array.size)

    def dim(self) -> int:
        """The number of dimensions (``ndim``)."""
        return self.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def item(self):
        """The single value as a Python number."""
        if self.array.size != 1:
            raise RuntimeError(
                f"item(): a tensor with {self.array.size} elements cannot be converted to a scalar"
            )
        return self.numpy().reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def numpy(self) -> np.ndarray:
        """The values as a host NumPy array (copied from the GPU if needed)."""
        return self.backend.to_host(self.array)

    def tolist(self):
        """The values as (nested) Python lists of numbers; a 0-d tensor gives a number."""
        return self.numpy().tolist()

    def __dlpack__(self, *args, **kwargs):
        self.backend.checks.flush()  # the values leave tinytensor: the pending value checks first
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def to(self, *args, dtype=None, device=None):
        """Convert to another dtype and/or device: x.to("cuda"), x.to(tt.float64), x.to(other)."""
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, DType) or a in (float, int, bool) or (
                isinstance(a, str) and a.removeprefix("tinytensor.") in DTYPES
            ):
                dtype = a
            else:
                device = a
        out = self
        if device is not None:
            target = for_device(device)
            out = to_backend(out, target)
        if dtype is not None:
            out = ops.cast(out, as_dtype(dtype))
        return out

    def _to_backend(self, backend):
        return to_backend(self, backend)

    def cpu(self):
        """This tensor on the CPU: ``to("cpu")`` (itself if it is there already)."""
        return self.to("cpu")

    def cuda(self, index: int = 0):
        """This tensor on GPU ``index``: ``to(f"cuda:{index}")``."""
        return self.to(f"cuda:{index}")

    def float(self):
        """``to(tt.float32)``."""
        return self.to(dtype=float32)

    def double(self):
        """``to(tt.float64)``."""
        return self.to(dtype=float64)

    def half(self):
        """``to(tt.float16)``."""
        return self.to(dtype=float16)

    def long(self):
        """``to(tt.int64)``."""
        return self.to(dtype=int64)

    def int(self):
        """``to(tt.int32)``."""
        return self.to(dtype=int32)

    def bool(self):
        """``to(tt.bool)``: nonzero is True."""
        return self.to(dtype=bool_)

    def clone(self):
        """A copy with its own memory; gradients flow through it."""
        return clone(self)

    def __deepcopy__(self, memo):
        """copy.deepcopy (of a tensor, a Module, a state dict): a new leaf with its own copy of the data,
        the same class, device and requires_grad; the backend is shared, never copied."""
        if id(self) in memo:
            return memo[id(self)]
        if not self.is_leaf:
            raise RuntimeError(
                f"deepcopy: only leaf tensors can be deep-copied, this one (shape {self.shape}) was made by "
                f"{self.grad_fn.name()}; use .detach().clone()"
            )
        new = type(self).__new__(type(self))
        TensorCore.__init__(new, self.backend.xp.asarray(self.array, copy=True), self.backend,
                            requires_grad=self.requires_grad)
        memo[id(self)] = new
        if self.grad is not None:
            new.grad = self.grad.__deepcopy__(memo)
        return new

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating-point one (float16, bfloat16, float32, float64)."""
        return self.dtype.is_floating_point

    # ---- in-place updates -------------------------------------------------------------------
    # Outside autograd (no_grad, or nothing involved requires grad) an update writes into the array
    # and bumps the version counter, which makes a backward that saved the old values fail loudly.
    # When autograd is involved it is recorded, as PyTorch does: the tensor takes the place in the
    # graph of the op that computed its new values (acc += w: that Add), or of an IndexPut node for a
    # write of given values (setitem, copy_, fill_: the old history gets no gradient where they went).
    def _records(self, value, op: str) -> bool:
        """Whether writing ``value`` into this tensor must be recorded for backward."""
        if not is_grad_enabled():
            return False
        if self._view_src is not None:
            refresh_view(self)
        if not (self.requires_grad or getattr(value, "requires_grad", False)):
            return False
        if not self.dtype.is_floating_point:  # an integer or bool tensor has no gradient to record
            return False
        if self.requires_grad and self.is_leaf:
            raise RuntimeError(
                f"{op}: in-place update of a leaf tensor that requires grad (shape {self.shape}); wrap it in "
                f"tt.no_grad() or use the out-of-place op"
            )
        base = self._view_src and self._view_src[0]
        if base is not None and self._view_src[1][-1][2] is not None:
            raise RuntimeError(
                f"{op}: in-place update of output {self._view_src[1][-1][2]} of "
                f"{self._view_src[1][-1][0].__name__}, one of several views it returns (as PyTorch, this is "
                f"refused); write it out of place, or index the tensor instead (x[a:b] op= ...)"
            )
        if base is not None and base.is_leaf and base.requires_grad:
            raise RuntimeError(
                f"{op}: in-place update of a view (shape {self.shape}) of a leaf tensor that requires grad "
                f"(shape {base.shape}); wrap it in tt.no_grad(), or update a copy: y = x.clone(); "
                f"y[...] op= ..."
            )
        return True

    def _snapshot(self):
        """This tensor's current values in a copy, in the same place in the graph (for an op that
        reads the tensor it is about to overwrite)."""
        snap = type(self)(self.backend.copy(self.array), self.backend, self.requires_grad, self.grad_fn,
                          self._output_nr)
        snap._fw = self._fw  # and its tangents (forward_ad)
        return snap

    def _update(self, op: str, fn, *args):
        """self ← fn(self, *args) in place."""
        if self._records(next((a for a in args if getattr(a, "requires_grad", False)), None), op):
            new = fn(self._snapshot(), *args)
            self._check_fits(new, op)
            return self._rebase(ops.cast(new, self.dtype))
        new = fn(self, *args)
        self._check_fits(new, op)
        if self._fw or getattr(new, "_fw", None):  # forward_ad: the tangents change with the values
            self._dual_write(new, op)
        return self._write(new, op)

    def _dual_write(self, new, op: str) -> None:
        """A write outside autograd into a tensor with tangents: it takes ``new``'s tangents too."""
        if self._view_src is not None:
            raise RuntimeError(f"{op}: in-place update of a view of a tensor with a tangent (forward_ad), "
                               f"which would leave the base's tangent behind; write out of place")
        self._fw = getattr(new, "_fw", None)

    def _check_fits(self, new, op: str) -> None:
        """An in-place op's result must have this tensor's shape (the target never broadcasts)."""
        if isinstance(new, Tensor) and tuple(new.shape) != self.shape:
            raise RuntimeError(f"{op}: output with shape {self.shape} doesn't match the broadcast shape "
                               f"{tuple(new.shape)}")

    def _write(self, new, op: str):
        """self ← new (a Tensor broadcast to self's shape, or a number) in place, unrecorded."""
        if isinstance(new, Tensor):
            if new.backend is not self.backend:
                raise RuntimeError(f"{op}: source is on {new.device} but this tensor is on {self.device}")
            _check_cast(new.dtype, self.dtype, op)
            new = (new if new.dtype is self.dtype else ops.cast(new, self.dtype)).array
        self.array[...] = new
        self._version[0] += 1
        return self

    def _put(self, value, index: tuple, op: str):
        """self[index] ← value, recorded: the tensor becomes the output of an IndexPut node."""
        if isinstance(value, Tensor):
            value = ops.cast(value, self.dtype)
        return self._rebase(ops.shape.index_put(self, value, index))

    def _rebase(self, out):
        """Take ``out``'s values and its place in the graph (a recorded in-place write). A view passes
        the write on to its base, whose new history it then shares (PyTorch's CopySlices)."""
        if self._view_src is not None:
            return self._rebase_view(out)
        self.array[...] = out.array
        self.grad_fn, self._output_nr, self._requires_grad = out.grad_fn, out._output_nr, True
        self._fw = out._fw  # its tangents (forward_ad), if any
        self._version[0] += 1
        return self

    def _rebase_view(self, out):
        base, chain = self._view_src[:2]
        # which element of the base each element of this view is: the view ops replayed on positions
        n = base.array.size
        positions = Tensor(np.arange(n).reshape(base.shape), for_device("cpu"))
        flat = replay_view(positions, chain).numpy().reshape(-1)
        if np.unique(flat).size != flat.size:
            raise RuntimeError(
                f"in-place update of an expanded view (shape {self.shape}): more than one element refers to "
                f"the same memory; write to a copy (.clone()) or to the tensor before expand"
            )
        written, source = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
        written[flat], source[flat] = True, np.arange(flat.size)
        # base_new = where(written, the view's new values gathered to base order, base)
        on_device = lambda a: Tensor(self.backend.from_host(a), self.backend)  # noqa: E731
        values = ops.reshape(ops.cast(out, base.dtype), (-1,))[on_device(source)]
        new = ops.where(on_device(written), values, ops.reshape(base, (-1,)))
        base._rebase(ops.reshape(new, base.shape))  # writes the base's memory, which this view shares
        self.array[...] = out.array  # (the same values again, unless this "view" is a copy)
        refresh_view(self)
        self._fw = out._fw
        return self

    def add_(self, other, alpha=1):
        """self += alpha · other, in place; returns self."""
        return self._update("add_", ops.add, other if alpha == 1 else ops.mul(other, alpha))

    def sub_(self, other, alpha=1):
        """self -= alpha · other, in place; returns self."""
        return self._update("sub_", ops.sub, other if alpha == 1 else ops.mul(other, alpha))

    def mul_(self, other):
        """self *= other, in place; returns self."""
        return self._update("mul_", ops.mul, other)

    def div_(self, other):
        """self /= other, in place; returns self."""
        return self._update("div_", ops.div, other)

    def clamp_(self, min=None, max=None):
        """`clamp` in place; returns self."""
        return self._update("clamp_", ops.clamp, min, max)

    def masked_fill_(self, mask, value):
        """`masked_fill` in place: ``value`` where ``mask`` is True; returns self."""
        return self._update("masked_fill_", ops.masked_fill, mask, value)

    def fill_(self, value):
        """Set every element to ``value``, in place; returns self."""
        value = as_element(scalar(value, "fill_"), self.dtype, "fill_")
        if self._records(value, "fill_"):
            return self._put(value, (Ellipsis,), "fill_")
        if self._fw:
            self._dual_write(None, "fill_")  # a constant: no tangent
        return self._write(value, "fill_")

    def zero_(self):
        """Set every element to 0, in place; returns self."""
        return self.fill_(0)

    def copy_(self, src):
        """Copy ``src``'s values (broadcast to this shape, cast to this dtype) into self; returns self."""
        if tuple(src.shape) != self.shape and ops.broadcast_shapes(src.shape, self.shape) != self.shape:
            raise ValueError(f"copy_: source shape {src.shape} does not broadcast to {self.shape}")
        if self._records(src, "copy_"):
            return self._put(src, (Ellipsis,), "copy_")
        if self._fw or getattr(src, "_fw", None):  # forward_ad: the tangent is src's
            self._dual_write(ops.shape.index_put(self, ops.cast(src, self.dtype), (Ellipsis,)), "copy_")
        return self._write(ops.cast(src, self.dtype), "copy_")

    def __setitem__(self, index, value):
        index = ops.shape._prepare_index(self, index)
        if isinstance(value, Tensor):
            if value.backend is not self.backend:
                raise RuntimeError(
                    f"__setitem__: value is on {value.device} but this tensor is on {self.device}"
                )
            lead = next((i for i, n in enumerate(value.shape) if n != 1), value.ndim)
            if lead:  # leading size-1 dims of the value are dropped, as PyTorch does
                value = value.reshape(value.shape[lead:])
        else:
            value = as_element(scalar(value, "__setitem__"), self.dtype, "__setitem__")
        if self._records(value, "__setitem__"):
            self._put(value, index, "__setitem__")
            return
        if self._fw or getattr(value, "_fw", None):  # forward_ad: the written part takes value's tangent
            self._dual_write(ops.shape.index_put(self, ops.cast(value, self.dtype) if isinstance(
                value, Tensor) else value, index), "__setitem__")
        if isinstance(value, Tensor):
            value = ops.cast(value, self.dtype).array
        self.backend.setitem(self.array, index, value)
        self._version[0] += 1

    # ---- operators ------------------------------------------------------------------------
    # x + y is ops.add(x, y) itself (no method in between); the reflected ones swap the operands
    __add__, __sub__, __mul__, __truediv__, __pow__ = ops.add, ops.sub, ops.mul, ops.div, ops.pow
    __matmul__, __neg__, __abs__, __getitem__ = ops.matmul, ops.neg, ops.abs, ops.getitem
    __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = ops.eq, ops.ne, ops.lt, ops.le, ops.gt, ops.ge
    __and__, __or__, __xor__, __invert__ = ops.logical_and, ops.logical_or, ops.logical_xor, ops.logical_not
    def __radd__(self, o): return ops.add(o, self)
    def __rsub__(self, o): return ops.sub(o, self)
    def __rmul__(self, o): return ops.mul(o, self)
    def __rtruediv__(self, o): return ops.div(o, self)
    def __rpow__(self, o): return ops.pow(o, self)
    def __rmatmul__(self, o): return ops.matmul(o, self)
    def __floordiv__(self, o): return ops.floor_divide(self, o)
    def __rfloordiv__(self, o): return ops.floor_divide(o, self)
    def __mod__(self, o): return ops.remainder(self, o)
    def __rmod__(self, o): return ops.remainder(o, self)
    def __pos__(self): return self
    def __rand__(self, o): return ops.logical_and(o, self)
    def __ror__(self, o): return ops.logical_or(o, self)
    def __rxor__(self, o): return ops.logical_xor(o, self)
    # x += y updates x in place (allowed under no_grad or on tensors outside any graph)
    def __iadd__(self, o): return self.add_(o)
    def __isub__(self, o): return self.sub_(o)
    def __imul__(self, o): return self.mul_(o)
    def __itruediv__(self, o): return self.div_(o)

    # ---- methods mirroring the functions in tinytensor.ops --------------------------------
    add, sub, mul, div, pow, matmul = ops.add, ops.sub, ops.mul, ops.div, ops.pow, ops.matmul
    maximum, minimum, where_ = ops.maximum, ops.minimum, ops.where
    exp, log, sqrt, rsqrt, sin, cos, tanh = ops.exp, ops.log, ops.sqrt, ops.rsqrt, ops.sin, ops.cos, ops.tanh
    sigmoid, relu, gelu, silu, erf, abs = ops.sigmoid, ops.relu, ops.gelu, ops.silu, ops.erf, ops.abs
    clamp, clip, sign, neg, masked_fill = ops.clamp, ops.clip, ops.sign, ops.neg, ops.masked_fill
    isfinite, isnan, logical_not = ops.isfinite, ops.isnan, ops.logical_not
    logical_and, logical_or, logical_xor = ops.logical_and, ops.logical_or, ops.logical_xor
    eq, ne, lt, le, gt, ge = ops.eq, ops.ne, ops.lt, ops.le, ops.gt, ops.ge
    sum, mean, var, std, prod, logsumexp = ops.sum, ops.mean, ops.var, ops.std, ops.prod, ops.logsumexp
    max, min, amax, amin, argmax, argmin = ops.max, ops.min, ops.amax, ops.amin, ops.argmax, ops.argmin
    reshape, view, flatten = ops.reshape, ops.view, ops.flatten
    permute, transpose = ops.permute, ops.transpose
    swapaxes, unsqueeze, squeeze, expand = ops.swapaxes, ops.unsqueeze, ops.squeeze, ops.expand
    broadcast_to, split, chunk, tril, triu = ops.broadcast_to, ops.split, ops.chunk, ops.tril, ops.triu
    softmax, log_softmax = ops.softmax, ops.log_softmax
    t, flip, roll, repeat = ops.t, ops.flip, ops.roll, ops.repeat
    gather, scatter, scatter_add = ops.gather, ops.scatter, ops.scatter_add
    index_fill, index_add, index_select = ops.index_fill, ops.index_add, ops.index_select
    masked_select, nonzero = ops.masked_select, ops.nonzero
    sort, argsort, topk, cumsum, cumprod = ops.sort, ops.argsort, ops.topk, ops.cumsum, ops.cumprod
    multinomial, bernoulli = ops.multinomial, ops.bernoulli
    log1p, expm1, reciprocal, square, isinf = ops.log1p, ops.expm1, ops.reciprocal, ops.square, ops.isinf
    floor, ceil, trunc, round = ops.floor, ops.ceil, ops.trunc, ops.round
    floor_divide, remainder, norm, unbind = ops.floor_divide, ops.remainder, ops.norm, ops.unbind
    mm, bmm, dot, outer, lerp = ops.mm, ops.bmm, ops.dot, ops.outer, ops.lerp
    isclose, allclose = ops.isclose, ops.allclose
    log2, log10, exp2 = ops.log2, ops.log10, ops.exp2
    tile, narrow, unflatten, repeat_interleave = ops.tile, ops.narrow, ops.unflatten, ops.repeat_interleave
    movedim, moveaxis = ops.movedim, ops.moveaxis
    diagonal, diag, diag_embed, trace = ops.diagonal, ops.diag, ops.diag_embed, ops.trace
    ravel, swapdims, fliplr, flipud, rot90 = ops.ravel, ops.swapdims, ops.fliplr, ops.flipud, ops.rot90
    tensor_split, hsplit, vsplit, dsplit = ops.tensor_split, ops.hsplit, ops.vsplit, ops.dsplit
    take, take_along_dim = ops.take, ops.take_along_dim
    atan2, nan_to_num, diff, unique = ops.atan2, ops.nan_to_num, ops.diff, ops.unique
    hardshrink, prelu = ops.hardshrink, ops.prelu
    addmm, baddbmm, addcmul, addcdiv = ops.addmm, ops.baddbmm, ops.addcmul, ops.addcdiv
    aminmax, nansum, nanmean, count_nonzero = ops.aminmax, ops.nansum, ops.nanmean, ops.count_nonzero
    tan, asin, acos, atan, sinh, cosh = ops.tan, ops.asin, ops.acos, ops.atan, ops.sinh, ops.cosh
    asinh, acosh, atanh, erfc, logit, frac = ops.asinh, ops.acosh, ops.atanh, ops.erfc, ops.logit, ops.frac
    hypot, logaddexp, xlogy, sgn, signbit = ops.hypot, ops.logaddexp, ops.xlogy, ops.sgn, ops.signbit
    isposinf, isneginf, deg2rad, rad2deg = ops.isposinf, ops.isneginf, ops.deg2rad, ops.rad2deg
    arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
    # PyTorch's other names for the same ops
    multiply, subtract, divide, true_divide = ops.mul, ops.sub, ops.div, ops.div
    negative, absolute, fix = ops.neg, ops.abs, ops.trunc
    greater, greater_equal, less, less_equal, not_equal = ops.gt, ops.ge, ops.lt, ops.le, ops.ne
    arctan2 = ops.atan2

    def where(self, condition, other):
        """This tensor where ``condition`` holds, else ``other``: ``where(condition, self, other)``."""
        return ops.where(condition, self, other)

    def reshape_as(self, other):
        """``reshape(other.shape)``."""
        return ops.reshape(self, other.shape)

    def is_contiguous(self, memory_format=None) -> bool:
        """Whether the memory is in C order (always, on a backend without layouts)."""
        return bool(self.backend.is_contiguous(self.array))

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad: bool = False):
        """A new tensor of ``data`` (copied, detached), with this tensor's dtype and device unless given."""
        from .creation import tensor
        if isinstance(data, TensorCore):
            data = data.detach().cpu().numpy()
        return tensor(data, dtype=self.dtype if dtype is None else dtype,
                      device=self.device if device is None else device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False):
        """``new_zeros`` (tinytensor never hands out uninitialised memory)."""
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
        """Fill with N(mean, std²) samples, in place (the stream ``nn.init.normal_`` draws from)."""
        return self._fill_random("normal_", lambda rng: rng.normal(mean, std, self.shape), generator)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
        """Fill with U(a, b) samples, in place (the stream ``nn.init.uniform_`` draws from)."""
        return self._fill_random("uniform_", lambda rng: rng.uniform(a, b, self.shape), generator)

    def _fill_random(self, op: str, draw, generator):
        from .random import host_generator
        if not self.dtype.is_floating_point:
            raise TypeError(f"{op}: needs a floating-point tensor, got {self.dtype.name} (as PyTorch)")
        samples = np.asarray(draw(host_generator(generator)), dtype=self.dtype.name)
        values = Tensor(self.backend.from_host(samples), self.backend)
        return self._update(op, lambda _old: values)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        """self += value · tensor1 · tensor2, in place; returns self."""
        return self._update("addcmul_", lambda t, a, b: ops.addcmul(t, a, b, value=value), tensor1, tensor2)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        """self += value · tensor1 / tensor2, in place; returns self."""
        return self._update("addcdiv_", lambda t, a, b: ops.addcdiv(t, a, b, value=value), tensor1, tensor2)

    def clamp_min(self, min):
        """``clamp(min=min)``."""
        return ops.clamp(self, min=min)

    def clamp_max(self, max):
        """``clamp(max=max)``."""
        return ops.clamp(self, max=max)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False):
        """Zeros of ``size`` with this tensor's dtype and device (unless given)."""
        return self.new_full(_sizes(size), 0, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False):
        """Ones of ``size`` with this tensor's dtype and device (unless given)."""
        return self.new_full(_sizes(size), 1, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False):
        """``fill_value`` in ``size`` with this tensor's dtype and device (unless given)."""
        from .creation import full
        return full(tuple(size), fill_value, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device, requires_grad=requires_grad)

    def nelement(self) -> int:
        """The number of elements (``numel``)."""
        return self.array.size

    def contiguous(self, memory_format=None):
        """This tensor if its memory is in C order (always, on a backend without layouts), else a copy
        that is (PyTorch's rule: writes to the result reach this tensor exactly when PyTorch's do)."""
        return self if self.backend.is_contiguous(self.array) else ops.copy.clone(self)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        """`scatter` in place; returns self."""
        return self._update("scatter_", lambda t, s, v: ops.scatter(t, dim, index, s, v, reduce=reduce),
                            src, value)

    def scatter_add_(self, dim, index, src):
        """`scatter_add` in place; returns self."""
        return self._update("scatter_add_", lambda t, s: ops.scatter_add(t, dim, index, s), src)

    def index_fill_(self, dim, index, value):
        """`index_fill` in place; returns self."""
        if not self.dtype.is_floating_point and isinstance(value, Tensor):  # no gradient to carry
            value = value.detach()
        return self._update("index_fill_", lambda t, v: ops.index_fill(t, dim, index, v), value)

    def index_add_(self, dim, index, source, *, alpha=1):
        """`index_add` in place; returns self."""
        return self._update("index_add_", lambda t, s: ops.index_add(t, dim, index, s, alpha=alpha), source)

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 0/1 samples, 1 with probability p (a number, or a tensor expanding to this shape)."""
        return self._update("bernoulli_", lambda t, q: ops.sampling.bernoulli_fill(t, q, generator), p)

    def all(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Whether every element (over dim, default all) is nonzero: a bool tensor."""
        return self._truth("all", dim, keepdim)

    def any(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Whether any element (over dim, default all) is nonzero: a bool tensor."""
        return self._truth("any", dim, keepdim)

    def _truth(self, name: str, dim, keepdim: bool) -> "Tensor":
        empty = isinstance(dim, (tuple, list)) and not dim  # dim=(): each element alone (PyTorch's all/any,
        dims = () if empty else ops.dims.normalize_dims(dim, self.ndim, name, self.shape)  # unlike sum's)
        return self._wrap(getattr(self.backend.xp, name)(self.array, axis=dims, keepdims=keepdim))

    def view_as(self, other):
        """``reshape(other.shape)``."""
        return ops.reshape(self, other.shape)

    def expand_as(self, other):
        """``broadcast_to(other.shape)``."""
        return ops.broadcast_to(self, other.shape)

    def type(self, dtype=None, non_blocking: bool = False):
        """Without an argument, PyTorch's type string ('torch.FloatTensor'); with a dtype, a TensorType
        (tt.LongTensor) or such a string, the tensor converted to it."""
        if dtype is None:
            return compat.type_name(self.dtype, self.device)
        return self.to(dtype=compat.dtype_of_type(dtype))

    def type_as(self, other):
        """This tensor converted to ``other``'s dtype."""
        return self.to(dtype=other.dtype)

    @property
    def T(self):
        """All dimensions reversed."""
        return ops.permute(self, tuple(range(self.ndim))[::-1])

    @property
    def mT(self):
        """The last two dimensions swapped (batched matrix transpose)."""
        if self.ndim == 0:  # PyTorch returns a 0-d tensor itself
            return self
        if self.ndim == 1:
            raise RuntimeError("mT is only supported on matrices or batches of matrices, got a 1-D tensor")
        return ops.transpose(self, -2, -1)


Tensor._result_cls = Tensor


def _in_place(name: str, op):
    """``x.name_(*args)``: x ← op(x, *args), in place (recorded as PyTorch records it); returns x."""
    def method(self, *args, **kwargs):
        return self._update(f"{name}_", lambda t, *a: op(t, *a, **kwargs), *args)

    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = f"``{name}`` in place; returns self."
    return method


# x.exp_(), x.pow_(2), x.tril_(), ...: every op whose in-place form real code calls; each result keeps
# x's dtype (an int64 tensor's exp_ is refused, as in PyTorch)
for _name in ("abs", "absolute", "neg", "negative", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
              "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf", "reciprocal", "square", "sign",
              "floor", "ceil", "trunc", "fix", "round", "pow", "remainder", "floor_divide", "lerp",
              "clamp_min", "clamp_max", "clip", "tril", "triu", "multiply", "subtract", "divide",
              "true_divide", "atan2", "arctan2", "nan_to_num", "tan", "asin", "acos", "atan", "sinh", "cosh",
              "asinh", "acosh", "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh",
              "erfc", "logit", "frac", "hypot", "xlogy", "sgn", "deg2rad", "rad2deg", "addmm", "baddbmm",
              # comparisons and logic: the bool result converted to x's dtype (1 or 0), as PyTorch
              "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
              "not_equal", "logical_and", "logical_or", "logical_xor", "logical_not"):
    setattr(Tensor, f"{_name}_", _in_place(_name, getattr(Tensor, _name)))
del _name


def _scan_in_place(name: str):
    """x.cumsum_(dim): the running sums in x's own dtype (PyTorch's: no int64 promotion, and another
    ``dtype`` is a bad in-place call)."""
    op = getattr(ops, name)

    def method(self, dim, *, dtype=None):
        ops.dims.normalize_dim(dim, self.ndim, f"{name}_", self.shape)  # a bad dim is the first error
        if dtype is not None and as_dtype(dtype) is not self.dtype:
            raise RuntimeError(f"{name}_: bad in-place call: the tensor's dtype {self.dtype.name} and the "
                               f"result's {as_dtype(dtype).name} must match")
        return self._update(f"{name}_", lambda t: op(t, dim, dtype=self.dtype))

    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = f"``{name}`` along dim in place, in this tensor's dtype; returns self."
    return method


Tensor.cumsum_, Tensor.cumprod_ = _scan_in_place("cumsum"), _scan_in_place("cumprod")


def _sizes(size: tuple) -> tuple:
    """new_zeros(2, 3) and new_zeros((2, 3)) alike."""
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
