"""The reference CPU backend over NumPy; overrides the kernels NumPy does faster."""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys

import numpy as np

from .base import Backend, _is_basic
from .parallel import for_blocks, for_rows

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>
_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_COMPLEX_OF = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128}  # rotary's pairs


def keep_freed_memory(keep: bool = True) -> bool:
    """Let glibc malloc keep freed memory for reuse (the default once the NumPy backend is made), or,
    with keep=False, give large buffers back to the OS again; True if it took effect (glibc only).

    glibc returns buffers over its mmap threshold (128 KiB, raised adaptively up to 32 MiB) to the OS
    when they are freed, and trims the top of its heap; the next training step then page-faults the
    same memory in again. Keeping it raises the threshold to its 32 MiB maximum and stops trimming, so
    that every step reuses the memory of the one before: an attention forward+backward (B=16, T=128,
    d=256) runs about 15% faster (benchmarks/bench_core.py --malloc both). The price: the process
    keeps the memory of its largest step until it exits, as PyTorch's caching allocator does on a GPU.
    """
    path = ctypes.util.find_library("c")
    if path is None or not sys.platform.startswith("linux"):
        return False
    mmap, trim = (32 * 1024 * 1024, 2**31 - 1) if keep else (128 * 1024, 128 * 1024)
    try:
        libc = ctypes.CDLL(path)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap)
        ok = libc.mallopt(_M_TRIM_THRESHOLD, trim) and ok
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(ok)


_POWER_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self):
        super().__init__(np, "cpu")
        keep_freed_memory()  # each training step reuses the memory of the one before

    def from_host(self, a):
        return np.asarray(a)

    scalar_types = frozenset({np.float16, np.float32, np.float64, np.uint8, np.int8, np.int16, np.int32,
                              np.int64, np.bool_})

    def owns(self, a):
        return a.base is None and a.flags.writeable

    def copy(self, a):
        return a.copy()  # C order, also for a broadcast view

    keep_freed_memory = staticmethod(keep_freed_memory)

    # the array methods: np.reshape and np.transpose are Python wrappers around them (~1 µs a call)
    def reshape(self, a, shape):
        return a.reshape(shape)

    def permute_dims(self, a, axes):
        return a.transpose(axes)

    def matmul(self, a, b):
        # a stack times one matrix broadcast to a stack (zero strides in its batch dims: per-sample
        # copies of a weight under func.vmap) is a stack times that one matrix: no copy, one product
        if (b.ndim > 2 and a.ndim == b.ndim and a.shape[:-2] == b.shape[:-2] and b.size
                and not any(b.strides[:-2])):
            b = b[(0,) * (b.ndim - 2)]
        # a stack of outer products ((..., n, 1) @ (..., 1, m): per-sample weight gradients) is a
        # broadcast product, several times faster than one rank-1 BLAS call per matrix
        if a.ndim > 2 and a.shape[-1] == 1 and b.ndim > 2 and b.shape[-2] == 1:
            return a * b
        # BLAS cannot read a broadcast operand (zero strides, e.g. the gradient of a sum); copying it
        # is faster than NumPy's fallback loop
        a = np.ascontiguousarray(a) if 0 in a.strides and not a.flags.c_contiguous else a
        b = np.ascontiguousarray(b) if 0 in b.strides and not b.flags.c_contiguous else b
        # a stack of matrices times one matrix, (..., n, k) @ (k, m), is one (N, k) @ (k, m) product:
        # one large BLAS call instead of one per matrix
        if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:
            rows = math.prod(a.shape[:-1])
            return (a.reshape(rows, a.shape[-1]) @ b).reshape(a.shape[:-1] + b.shape[-1:])
        # a stack of small products (attention's heads): BLAS runs each on one core, so the stack is
        # split across threads, each thread taking a block of its first dim
        if a.ndim > 2 and a.shape[:-2] == b.shape[:-2] and a.shape[0] > 1 and a.dtype == b.dtype:
            out = np.empty(a.shape[:-1] + b.shape[-1:], a.dtype)
            work = out.size * a.shape[-1]  # multiply-adds
            for_blocks(a.shape[0], work // 8, lambda r: np.matmul(a[r], b[r], out=out[r]))
            return out
        return a @ b

    def where(self, cond, a, b):
        # NumPy's where branches on every element: with a mask that is True at random (a ReLU's),
        # mispredictions make it ~10x slower than arithmetic. So the pick is done on the values' bits
        # as unsigned integers, b + (a - b)·cond, which wraps modulo 2^n and so gives a's or b's bit
        # pattern exactly (NaN, inf, -0.0 included). Under 8K elements np.where is faster (measured: 2.6
        # against 13 µs at 256, equal at 16K, 4x slower at 64K)
        if max(cond.size, np.size(a), np.size(b)) < 8192:  # (the largest operand's size, for speed only)
            return np.where(cond, a, b)
        dtype = np.result_type(a, b)
        out = np.empty(np.broadcast_shapes(cond.shape, np.shape(a), np.shape(b)), dtype=dtype)
        bits = _UINT_OF_SIZE.get(dtype.itemsize) if dtype.kind in "fiub" else None
        if bits is None:  # complex128: a copy of b with a written where cond
            np.copyto(out, b)
            np.copyto(out, a, where=cond)
            return out
        ua, ub, uout = np.asarray(a, dtype).view(bits), np.asarray(b, dtype).view(bits), out.view(bits)
        if not ub.ndim and not ub:  # b is +0 (how a gradient is zeroed): a·cond
            np.multiply(ua, cond, out=uout)
        else:
            np.subtract(ua, ub, out=uout)
            uout *= cond
            uout += ub
        return out

    def one_hot(self, index, n, dtype):
        # zeros and one write per row, instead of comparing every index with every class
        index = np.reshape(index, (-1,))
        out = np.zeros((index.shape[0], n), dtype)
        rows = np.arange(index.shape[0])
        if index.size and (index.min() < 0 or index.max() >= n):  # outside [0, n): a row of zeros
            keep = (index >= 0) & (index < n)
            rows, index = rows[keep], index[keep]
        out[rows, index] = 1
        return out

    def power(self, a, b):
        # NumPy's own fast paths are the exponents 0, ±1, 0.5 and 2; every other scalar one calls pow()
        # per element, ~40x the cost of a multiply. PyTorch's CPU kernel writes 3 and -2 as products
        # (x·x·x, 1/(x·x)) and -0.5 as 1/√x, so doing the same here is both fast and PyTorch's numbers
        if type(b) in (int, float) and getattr(a, "dtype", None) in _POWER_FLOATS:
            if b == 3:
                return a * a * a
            if b == -2:
                return np.reciprocal(a * a)
            if b == -0.5:
                return np.reciprocal(np.sqrt(a))
        return a**b

    # ---- fused kernels, row-parallel (backends/parallel.py): the plain kernel on each block of rows
    def softmax(self, x, axis):
        last = axis == x.ndim - 1 and _compiled(x)  # the compiled passes take rows along the last axis
        return _on_rows(_softmax_compiled if last else _softmax, x, axis)

    def softmax_grad(self, y, gy, axis):
        last = axis == y.ndim - 1 and _compiled(y, gy)
        return _on_rows(_softmax_grad_compiled if last else _softmax_grad, y, axis, gy)

    def log_softmax(self, x, axis):
        last = axis == x.ndim - 1 and _compiled(x)
        return _on_rows(_log_softmax_compiled if last else _log_softmax, x, axis)

    def log_softmax_grad(self, y, gy, axis):
        return _on_rows(_log_softmax_grad, y, axis, gy)

    def masked_softmax(self, s):
        if not s.size:
            return np.zeros_like(s)
        out, s2, o2 = _rows_out(s)
        kernel = _masked_softmax_compiled if _compiled(s) else _masked_softmax
        for_rows(len(s2), s.size, lambda r: kernel(s2[r], out=o2[r]))
        return out

    def causal_softmax(self, s):
        if not (s.size and _compiled(s)):
            return Backend.causal_softmax(self, s)
        out, s2, o2 = _rows_out(s)  # row m of s2 is query m mod L: it sees keys 0 .. m mod L
        L = s.shape[-2]
        for_rows(len(s2), s.size,
                 lambda r: _softmax_compiled(s2[r], -1, o2[r], masked=True, causal=(L, r.start)))
        return out

    def layer_norm(self, x, weight, bias, eps):
        M = x.shape[0]
        y, mu, rstd = np.empty(x.shape, x.dtype), np.empty((M, 1), x.dtype), np.empty((M, 1), x.dtype)
        kernel = _layer_norm
        if x.size and (fast := _compiled(x, weight, bias)):  # one pass per row instead of ten
            kernel = fast.layer_norm
        for_rows(M, x.size, lambda r: kernel(x[r], weight, bias, eps, y[r], mu[r], rstd[r]))
        return y, mu, rstd

    def layer_norm_grad(self, gy, x, weight, mu, rstd, need_weight, need_bias):
        gx = np.empty(x.shape, x.dtype)
        sums = {}  # the first row of each chunk -> its (Σ gy·x̂, Σ gy): added in row order below
        fast = _compiled(gy, x, weight, mu, rstd) if x.size else None

        def rows(r):
            if fast:
                K = x.shape[1]
                gw = np.zeros(K, x.dtype) if need_weight else None
                gb = np.zeros(K, x.dtype) if need_bias else None
                fast.layer_norm_grad(gy[r], x[r], weight, mu[r], rstd[r], gx[r], gw, gb)
                sums[r.start] = gw, gb
                return
            sums[r.start] = _layer_norm_grad(gy[r], x[r], weight, mu[r], rstd[r], gx[r], need_weight,
                                             need_bias)

        for_rows(x.shape[0], x.size, rows)
        parts = [sums[k] for k in sorted(sums)]
        gw = sum(p[0] for p in parts) if need_weight else None
        gb = sum(p[1] for p in parts) if need_bias else None
        return gx, gw, gb

    def rotary(self, x, cos, sin):
        # a feature pair is the complex number x_2i + i·x_2i+1, and turning it by θ is a product with
        # cos θ + i·sin θ: one pass over x instead of six over its strided halves
        complex_of = _COMPLEX_OF.get(x.dtype)
        if (complex_of is None or not x.size or x.shape[-1] % 2 or x.strides[-1] != x.itemsize
                or cos.dtype != x.dtype or sin.dtype != x.dtype):
            return Backend.rotary(self, x, cos, sin)
        turn = np.empty(np.broadcast_shapes(cos.shape, sin.shape), complex_of)
        turn.real, turn.imag = cos, sin
        return (x.view(complex_of) * turn).view(x.dtype)

    def exp(self, x):
        return _elementwise(x, "exp", np.exp)

    def tanh(self, x):
        return _elementwise(x, "tanh", np.tanh)

    def relu_grad(self, x, gy):
        if x.shape != gy.shape or not (fast := _compiled(x, gy)):
            return Backend.relu_grad(self, x, gy)
        out, x1, o1 = _flat_out(x)  # one pass, a select per element (the where above is three)
        g1 = _like(gy, x, rows=False)
        for_rows(len(x1), x.size, lambda r: fast.relu_grad(x1[r], g1[r], o1[r]))
        return out

    def normal_cdf(self, x):
        out, x1, o1 = _flat_out(x)
        if fast := _compiled(x):  # one pass instead of erf's 24
            for_rows(len(x1), x.size, lambda r: fast.normal_cdf(x1[r], o1[r]))
            return out
        for_rows(len(x1), x.size, lambda r: o1.__setitem__(r, Backend.normal_cdf(self, x1[r])))
        return out

    def gelu_grad(self, x, gy, cdf):
        out, x1, o1 = _flat_out(x)
        g1, c1 = _like(gy, x, rows=False), _like(cdf, x, rows=False)
        if fast := _compiled(x, gy, cdf):  # three compiled passes instead of seven
            def kernel(r):
                o = o1[r]
                fast.half_neg_square(x1[r], o)
                _ufunc32("exp", np.exp, o, o)
                fast.gelu_grad_from_exp(x1[r], g1[r], c1[r], o)

            for_rows(len(x1), x.size, kernel)
            return out
        for_rows(len(x1), x.size, lambda r: o1.__setitem__(r, Backend.gelu_grad(self, x1[r], g1[r], c1[r])))
        return out

    def gelu_tanh(self, x):
        if not (fast := _compiled(x)):
            return Backend.gelu_tanh(self, x)
        out, x1, o1 = _flat_out(x)

        def kernel(r):  # three compiled passes instead of nine
            o = o1[r]
            fast.gelu_tanh_arg(x1[r], o)
            _ufunc32("tanh", np.tanh, o, o)
            fast.gelu_tanh_from_tanh(x1[r], o)

        for_rows(len(x1), x.size, kernel)
        return out

    def gelu_tanh_grad(self, x, gy):
        if not (fast := _compiled(x, gy)):
            return Backend.gelu_tanh_grad(self, x, gy)
        out, x1, o1 = _flat_out(x)
        g1 = _like(gy, x, rows=False)

        def kernel(r):  # three passes instead of fifteen
            o = o1[r]
            fast.gelu_tanh_arg(x1[r], o)
            _ufunc32("tanh", np.tanh, o, o)
            fast.gelu_tanh_grad_from_tanh(x1[r], g1[r], o)

        for_rows(len(x1), x.size, kernel)
        return out

    def erf(self, x):
        if x.dtype == np.float32:
            return super().erf(x)  # the float32 rational approximation: ~7x faster than SciPy's erf
        try:
            from scipy.special import erf
        except ImportError:
            return super().erf(x)
        return erf(x).astype(x.dtype, copy=False)

    def erfc(self, x):
        try:
            from scipy.special import erfc
        except ImportError:
            return super().erfc(x)
        return erfc(x).astype(x.dtype, copy=False)

    def getitem(self, a, index):
        return a[index]

    def setitem(self, a, index, value):
        a[index] = value

    def index_add(self, out, index, values):
        if _is_basic(index):
            out[index] += values
        else:
            np.add.at(out, index, values)
        return out

    def scatter_flat(self, out, pos, values, reduce=None):
        flat = out.reshape(-1)
        if reduce is None:
            flat[pos.reshape(-1)] = values.reshape(-1)
        else:
            (np.add if reduce == "add" else np.multiply).at(flat, pos.reshape(-1), values.reshape(-1))
        return flat.reshape(out.shape)

    def is_contiguous(self, a):
        return a.flags.c_contiguous

    def scatter_add_flat(self, size, pos, values):
        return np.bincount(pos, weights=values, minlength=size).astype(values.dtype, copy=False)

    def add_rows(self, num_rows, index, grad):
        # rows sorted by their index (stably) and each run of one index summed by reduceat: several
        # times faster than np.add.at, which adds one row at a time
        row = grad.shape[index.ndim:]
        out = np.zeros((num_rows,) + row, dtype=grad.dtype)
        if not index.size:
            return out
        idx = index.reshape(-1)
        if fast := _compiled(grad):  # one pass in order (reduceat needs a sort and a gather first)
            k = math.prod(row)
            fast.add_rows(idx, np.ascontiguousarray(grad).reshape(idx.size, k), out.reshape(num_rows, k))
            return out
        order = np.argsort(idx, kind="stable")
        ids = idx[order]
        starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))  # where each run begins
        out[ids[starts]] = np.add.reduceat(grad.reshape((idx.size,) + row)[order], starts, axis=0)
        return out

    def einsum(self, spec, *operands):
        return np.einsum(spec, *operands, optimize=True)


# ---- the plain NumPy kernels the row-parallel ones run on each block (out=: write there) ------------

def _compiled(*arrays):
    """The Numba kernels (backends/numba_kernels.py) when Numba is installed and enabled and ``arrays``
    (None skipped) share a dtype they take; else None, and the NumPy kernels below serve. Imported on
    first use: Numba's own import takes about half a second."""
    global _numba_kernels
    if _numba_kernels is None:
        _numba_kernels = False
        if os.environ.get("TINYTENSOR_NUMBA", "1") != "0":  # off: Numba is not even imported
            from . import numba_kernels

            _numba_kernels = numba_kernels if numba_kernels.AVAILABLE else False
    if not _numba_kernels:
        return None
    dtype = arrays[0].dtype
    if dtype not in _numba_kernels.DTYPES or any(a is not None and a.dtype != dtype for a in arrays):
        return None
    return _numba_kernels


_numba_kernels = None  # the module, False where unavailable, None before the first look


def _on_rows(kernel, x, axis, *others):
    """``kernel(x, *others, axis)`` along the last axis row-parallel (others broadcast to x's shape),
    along another axis the plain way."""
    if axis != x.ndim - 1:
        return kernel(x, *others, axis)
    out, x2, o2 = _rows_out(x)
    rows = [_like(a, x) for a in others]
    for_rows(len(x2), x.size, lambda r: kernel(x2[r], *(a[r] for a in rows), -1, out=o2[r]))
    return out


def _rows_out(x):
    """A fresh C-ordered output of x's shape, and x and it seen as rows (M, K) over the last axis."""
    out = np.empty(x.shape, x.dtype)
    rows = _rows_shape(x)
    return out, x.reshape(rows), out.reshape(rows)


def _elementwise(x, name: str, numpy_ufunc):
    """numba_kernels' float32 ``name`` (exp, tanh) on x, row-parallel, where it pays (from 8K elements:
    below, its ~6 µs of calls cost more than NumPy's loop saves); else NumPy's ufunc."""
    if x.dtype != np.float32 or x.size < 8192 or not (fast := _compiled(x)):
        return numpy_ufunc(x)
    out, x1, o1 = _flat_out(x)
    kernel = getattr(fast, name)
    for_rows(len(x1), x.size, lambda r: kernel(x1[r], o1[r]))
    return out


def _ufunc32(name: str, numpy_ufunc, x, out) -> None:
    """out = f(x) (out may be x) inside a compiled kernel's passes: numba_kernels' float32 ``name`` (exp,
    tanh; its in-place form when out is x) on C-contiguous arrays, else NumPy's ufunc."""
    if x.dtype == np.float32 and x.flags.c_contiguous and out.flags.c_contiguous:
        if out is x:
            getattr(_numba_kernels, name + "_")(x)
        else:
            getattr(_numba_kernels, name)(x, out)
    else:
        numpy_ufunc(x, out=out)


def _flat_out(x):
    """A fresh output of x's shape, and x and it flattened (for element-wise kernels)."""
    out = np.empty(x.shape, x.dtype)
    return out, np.ascontiguousarray(x).reshape(-1), out.reshape(-1)


def _like(a, x, rows: bool = True):
    """a, broadcast to x's shape if it must be, seen as x's rows (M, K) or, with rows=False, flat."""
    a = np.broadcast_to(a, x.shape) if a.shape != x.shape else a
    return a.reshape(_rows_shape(x)) if rows else a.reshape(-1)


def _rows_shape(x) -> tuple:
    """(M, K): x's elements as rows over its last axis (M counted, not -1: K may be 0)."""
    k = x.shape[-1] if x.ndim else 1
    return (math.prod(x.shape[:-1]), k)


def _softmax(x, axis, out=None):
    """exp(x - max) / Σ exp(x - max) along axis."""
    e = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


# the same three compiled (numba_kernels: one loop over each row before the exp, one after), for rows
# (M, K) along the last axis: three passes instead of five
def _softmax_compiled(x, axis, out=None, masked=False, causal=(0, 0)):
    out = np.empty(x.shape, x.dtype) if out is None else out
    _numba_kernels.shift_rows(x, out, masked, *causal)
    _ufunc32("exp", np.exp, out, out)
    _numba_kernels.divide_rows_by_sums(out, masked)
    return out


def _masked_softmax_compiled(s, out=None):
    return _softmax_compiled(s, -1, out, masked=True)


def _log_softmax_compiled(x, axis, out=None):
    out = np.empty(x.shape, x.dtype) if out is None else out
    _numba_kernels.shift_rows(x, out, False)
    e = np.empty_like(out)
    _ufunc32("exp", np.exp, out, e)
    _numba_kernels.subtract_log_sums(out, e)
    return out


def _softmax_grad_compiled(y, gy, axis, out=None):
    out = np.empty(y.shape, y.dtype) if out is None else out
    _numba_kernels.softmax_grad(y, gy, out)
    return out


def _softmax_grad(y, gy, axis, out=None):
    """y ⊙ (gy - Σ gy⊙y) along axis."""
    s = np.expand_dims(np.vecdot(gy, y, axis=axis), axis)  # Σ gy·y without a temporary product
    out = np.subtract(gy, s, out=out)
    out *= y
    return out


def _log_softmax(x, axis, out=None):
    """(x - m) - log Σ e^(x - m) with m the max along axis."""
    s = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    s -= np.log(np.exp(s).sum(axis=axis, keepdims=True))
    return s


def _log_softmax_grad(y, gy, axis, out=None):
    """gy - e^y Σ gy along axis."""
    e = np.exp(y, out=out)
    e *= gy.sum(axis=axis, keepdims=True)
    np.subtract(gy, e, out=e)
    return e


def _masked_softmax(s, out=None):
    """softmax over the last axis where a row that is -inf everywhere gives zeros (Backend.masked_softmax)."""
    m = s.max(axis=-1, keepdims=True)  # (..., 1)
    np.copyto(m, 0.0, where=~np.isfinite(m))  # an all -inf row: shift by 0, its exps are all 0
    e = np.subtract(s, m, out=out)
    np.exp(e, out=e)
    d = e.sum(axis=-1, keepdims=True)
    np.copyto(d, 1.0, where=d == 0)
    e /= d
    return e


def _layer_norm(x, weight, bias, eps, y, mu, rstd):
    """Backend.layer_norm on rows x (M, K), written into y, mu and rstd."""
    np.add.reduce(x, axis=1, keepdims=True, out=mu)  # np.mean's arithmetic, without its Python layer
    mu /= x.shape[1]
    np.subtract(x, mu, out=y)
    np.divide(np.vecdot(y, y)[:, None], x.shape[1], out=rstd)  # σ²
    rstd += eps
    np.sqrt(rstd, out=rstd)
    np.reciprocal(rstd, out=rstd)
    y *= rstd  # x̂
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias


def _layer_norm_grad(gy, x, weight, mu, rstd, gx, need_weight, need_bias):
    """Backend.layer_norm_grad on rows, gx written into gx; returns this block's (Σ gy·x̂, Σ gy)."""
    xhat = np.subtract(x, mu)
    xhat *= rstd
    gxhat = gy * xhat
    sums = (gxhat.sum(axis=0) if need_weight else None, gy.sum(axis=0) if need_bias else None)
    if weight is None:
        np.copyto(gx, gy)  # g = ∂L/∂x̂
    else:
        np.multiply(gy, weight, out=gx)
        gxhat *= weight  # g·x̂
    K = x.shape[1]
    xhat *= np.add.reduce(gxhat, axis=1, keepdims=True) / K  # x̂·mean(g·x̂)
    gx -= np.add.reduce(gx, axis=1, keepdims=True) / K  # g - mean(g)
    gx -= xhat  # - x̂·mean(g·x̂)
    gx *= rstd
    return sums
