"""The GPU backend over CuPy. CuPy is imported only when this backend is first asked for.

The namespace is ``array_api_compat.cupy`` when that package is installed (the ``cuda12``/``cuda13``
extras bring it): CuPy's own arrays behind the standard's function names on every CuPy version.
Arrays are created on the current CUDA device; one process drives one GPU at a time.
"""
from __future__ import annotations

from .base import Backend, _is_basic

INSTALL_HINT = 'install CuPy with: pip install "tinytensor[cuda12]" (or "tinytensor[cuda13]")'


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, index: int = 0):
        try:
            import cupy
        except ImportError as e:
            raise RuntimeError(f"the cupy backend needs CuPy, which is not installed; {INSTALL_HINT}") from e
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # no driver, no device
            raise RuntimeError(f"the cupy backend found no usable CUDA GPU ({e}); {INSTALL_HINT}") from e
        if not 0 <= index < count:
            raise RuntimeError(f"cuda:{index} does not exist: this machine has {count} CUDA device(s)")
        try:
            import array_api_compat.cupy as xp
        except ImportError:  # CuPy >= 13 mirrors NumPy 2's names in its root namespace
            xp = cupy
        self.cupy = cupy
        self.index = index
        with cupy.cuda.Device(index):
            super().__init__(xp, f"cuda:{index}")

    def device_count(self) -> int:
        return self.cupy.cuda.runtime.getDeviceCount()

    def synchronize(self) -> None:
        self.cupy.cuda.Device(self.index).synchronize()

    def from_host(self, a):
        with self.cupy.cuda.Device(self.index):
            return self.cupy.asarray(a)

    def to_host(self, a):
        return self.cupy.asnumpy(a)

    def owns(self, a):
        return a.base is None

    def copy(self, a):
        return a.copy()

    def getitem(self, a, index):
        return a[index]

    def setitem(self, a, index, value):
        a[index] = value

    def erf(self, x):
        from cupyx.scipy.special import erf

        return erf(x).astype(x.dtype, copy=False)

    def index_add(self, out, index, values):
        import cupyx

        if _is_basic(index):
            out[index] += values
        else:
            cupyx.scatter_add(out, index, values)
        return out

    def scatter_add_flat(self, size, pos, values):
        out = self.cupy.zeros((size,), dtype=values.dtype)
        self.index_add(out, pos, values)
        return out

    def scatter_flat(self, out, pos, values, reduce=None):
        if reduce == "multiply":  # no multiply-at kernel in CuPy: the one-hot product
            return super().scatter_flat(out, pos, values, reduce)
        flat = out.reshape(-1)
        if reduce is None:
            flat[pos.reshape(-1)] = values.reshape(-1)
        else:
            self.index_add(flat, pos.reshape(-1), values.reshape(-1))
        return flat.reshape(out.shape)

    def is_contiguous(self, a):
        return a.flags.c_contiguous

    def add_rows(self, num_rows, index, grad):
        out = self.cupy.zeros((num_rows,) + grad.shape[index.ndim:], dtype=grad.dtype)
        return self.index_add(out, index.reshape(-1), grad.reshape((index.size,) + grad.shape[index.ndim:]))

    def einsum(self, spec, *operands):
        return self.cupy.einsum(spec, *operands)
