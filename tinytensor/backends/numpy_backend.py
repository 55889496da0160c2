"""The reference CPU backend over NumPy; overrides the kernels NumPy does faster."""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys

import numpy as np

from .base import Backend, _is_basic

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>


class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self):
        super().__init__(np, "cpu")

    def from_host(self, a):
        return np.asarray(a)

    scalar_types = frozenset({np.float16, np.float32, np.float64, np.uint8, np.int8, np.int16, np.int32,
                              np.int64, np.bool_})

    def owns(self, a):
        return a.base is None and a.flags.writeable

    def copy(self, a):
        return a.copy()  # C order, also for a broadcast view

    @staticmethod
    def keep_freed_memory() -> bool:
        """Opt in to glibc malloc keeping freed memory for reuse; True if it took effect (glibc only).

        By default glibc gives buffers over 128 KiB (raised adaptively up to 32 MiB) back to the OS
        when they are freed, and trims the heap top; the next training step then page-faults the
        same memory in again. This raises the mmap threshold to its 32 MiB maximum and turns heap
        trimming off, so that every step reuses the memory of the one before: an attention
        forward+backward (B=16, T=128, d=256) runs about 15% faster (benchmarks/bench_core.py
        --malloc both). The price: the process keeps its peak memory until it exits. It changes
        malloc for the whole process, which is why it is not the default.
        """
        path = ctypes.util.find_library("c")
        if path is None or not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(path)
            ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
            ok = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) and ok
        except (OSError, AttributeError):  # not glibc
            return False
        return bool(ok)

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
        return a @ b

    def where(self, cond, a, b):
        # a copy of b with a written where cond: ~1.7x faster than np.where for a broadcast mask
        shape = np.broadcast_shapes(cond.shape, np.shape(a), np.shape(b))
        out = np.empty(shape, dtype=np.result_type(a, b))
        np.copyto(out, b)
        np.copyto(out, a, where=cond)
        return out

    def softmax(self, x, axis):
        e = x - x.max(axis=axis, keepdims=True)
        np.exp(e, out=e)
        e /= e.sum(axis=axis, keepdims=True)
        return e

    def softmax_grad(self, y, gy, axis):
        s = np.expand_dims(np.vecdot(gy, y, axis=axis), axis)  # Σ gy·y without a temporary product
        out = gy - s
        out *= y
        return out

    def erf(self, x):
        if x.dtype == np.float32:
            return super().erf(x)  # the float32 rational approximation: ~7x faster than SciPy's erf
        try:
            from scipy.special import erf
        except ImportError:
            return super().erf(x)
        return erf(x).astype(x.dtype, copy=False)

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
        out = np.zeros((num_rows,) + grad.shape[index.ndim:], dtype=grad.dtype)
        np.add.at(out, index.reshape(-1), grad.reshape((index.size,) + grad.shape[index.ndim:]))
        return out

    def einsum(self, spec, *operands):
        return np.einsum(spec, *operands, optimize=True)
