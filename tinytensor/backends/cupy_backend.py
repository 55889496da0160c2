"""The GPU backend over CuPy. CuPy is imported only when this backend is first asked for.

The namespace is ``array_api_compat.cupy`` when that package is installed (the ``cuda12``/``cuda13``
extras bring it): CuPy's own arrays behind the standard's function names on every CuPy version.
Arrays are created on the current CUDA device; one process drives one GPU at a time.

The fused kernels the engine calls (softmax, log-softmax and their gradients, masked softmax, layer
norm and its gradient, erf, Φ, GELU's gradient, where) run as CUDA kernels of their own
(``cuda_kernels.py``) over the last axis in float32 and float64 (float16 through float32); any other
case takes the reference kernel of ``base.py``. None of them reads a value on the host.

Matmuls follow ``tinytensor.backends.cuda.matmul.allow_tf32`` (``cuda.py``): when it is True, float32
products may use TF32 tensor cores (compute capability 8.0 and later).
"""
from __future__ import annotations

import threading

from . import cuda as _switches
from . import cuda_kernels as _k
from .base import Backend, _is_basic

INSTALL_HINT = 'install CuPy with: pip install "tinytensor[cuda12]" (or "tinytensor[cuda13]")'

_KERNEL_DTYPES = frozenset({"float16", "float32", "float64"})  # the fused kernels' dtypes
# cuBLAS math modes (cublasMath_t in cublas_api.h; CuPy's cublas module has no name for the TF32 one)
_CUBLAS_DEFAULT_MATH, _CUBLAS_TF32_TENSOR_OP_MATH = 0, 3


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
            # TF32 exists from compute capability 8.0 (Ampere); elsewhere the switch changes nothing
            self._tf32_capable = int(cupy.cuda.Device(index).compute_capability) >= 80
        self._tf32_local = threading.local()  # .modes: this thread's cuBLAS handle -> allow_tf32 set on it
        _switches.watch(self)

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

    # ---- matmul: the TF32 switch ----------------------------------------------------------------
    def matmul(self, a, b):
        self._apply_tf32()
        return super().matmul(a, b)

    def einsum(self, spec, *operands):
        self._apply_tf32()
        return self.cupy.einsum(spec, *operands)

    def _apply_tf32(self) -> None:
        """Bring CuPy's float32 matmuls on this thread to ``allow_tf32``: CuPy's compute type for float32
        (what CUPY_TF32 sets: 2-d products ask cuBLAS for CUBLAS_COMPUTE_32F_FAST_TF32) and the math mode
        of this thread's cuBLAS handle (CUBLAS_TF32_TENSOR_OP_MATH: the batched products). Host-side
        settings only, and only when the switch differs from what this handle was last given."""
        if not self._tf32_capable:
            return
        want = _switches.matmul.allow_tf32
        cupy = self.cupy
        handle = cupy.cuda.device.get_cublas_handle()
        modes = getattr(self._tf32_local, "modes", None)
        if modes is None:
            modes = self._tf32_local.modes = {}  # a new handle has cuBLAS's default math: no TF32
        if modes.get(handle, False) == want:
            return
        from cupy_backends.cuda.libs import cublas

        try:
            from cupy._core import _routines_linalg as linalg

            compute = linalg.COMPUTE_TYPE_TF32 if want else linalg.COMPUTE_TYPE_DEFAULT
            linalg.set_compute_type(cupy.float32, compute)
        except (ImportError, AttributeError):  # a CuPy without it: the math mode alone
            pass
        cublas.setMathMode(handle, _CUBLAS_TF32_TENSOR_OP_MATH if want else _CUBLAS_DEFAULT_MATH)
        modes[handle] = want

    _on_tf32_change = _apply_tf32  # called by the switch when it is set (cuda.py)

    # ---- fused kernels (cuda_kernels.py): rows over the last axis, element-wise maps ---------------
    def _rows(self, name, axis, x, *more):
        """Row kernel ``name`` over the last axis of x and of ``more`` (arrays of x's dtype, broadcast to
        its shape): a new array of x's shape, or None where the kernel does not apply (another axis, a
        0-d array, another dtype)."""
        cp = self.cupy
        if (x.ndim == 0 or axis not in (-1, x.ndim - 1) or x.dtype.name not in _KERNEL_DTYPES
                or any(getattr(a, "dtype", None) != x.dtype for a in more)):
            return None
        if x.size == 0:
            return cp.empty(x.shape, x.dtype)
        work = _work_dtype(cp, x.dtype)
        ins = [cp.ascontiguousarray(a if a.shape == x.shape else cp.broadcast_to(a, x.shape), dtype=work)
               for a in (x, *more)]
        K = x.shape[-1]
        M = x.size // K
        out = cp.empty(x.shape, work)
        grid, block = _k.row_launch(M, K)
        _k.row_kernel(name, _k.CTYPES[work.name])(grid, block, (*ins, out, M, K))
        return out.astype(x.dtype, copy=False)

    def _map(self, name, *arrays):
        """Element-wise kernel ``name`` on arrays of one float dtype (broadcast), or None if they are not."""
        x = arrays[0]
        if not all(isinstance(a, self.cupy.ndarray) for a in arrays) or x.dtype.name not in _KERNEL_DTYPES \
                or any(a.dtype != x.dtype for a in arrays):
            return None
        work = _work_dtype(self.cupy, x.dtype)
        out = _k.elementwise_kernel(name)(*(a.astype(work, copy=False) for a in arrays))
        return out.astype(x.dtype, copy=False)

    def softmax(self, x, axis):
        out = self._rows("softmax", axis, x)
        return super().softmax(x, axis) if out is None else out

    def softmax_grad(self, y, gy, axis):
        out = self._rows("softmax_grad", axis, y, gy)
        return super().softmax_grad(y, gy, axis) if out is None else out

    def log_softmax(self, x, axis):
        out = self._rows("log_softmax", axis, x)
        return super().log_softmax(x, axis) if out is None else out

    def log_softmax_grad(self, y, gy, axis):
        out = self._rows("log_softmax_grad", axis, y, gy)
        return super().log_softmax_grad(y, gy, axis) if out is None else out

    def masked_softmax(self, s):
        out = self._rows("masked_softmax", -1, s)
        return super().masked_softmax(s) if out is None else out

    def layer_norm(self, x, weight, bias, eps):
        if not _ln_applies(x, weight, bias):
            return super().layer_norm(x, weight, bias, eps)
        cp = self.cupy
        M, K = x.shape
        work = _work_dtype(cp, x.dtype)
        x2 = cp.ascontiguousarray(x, dtype=work)
        w2, b2 = (x2 if p is None else cp.ascontiguousarray(p, dtype=work) for p in (weight, bias))
        y, mu, rstd = cp.empty((M, K), work), cp.empty((M, 1), work), cp.empty((M, 1), work)
        grid, block = _k.row_launch(M, K)
        _k.row_kernel("layer_norm", _k.CTYPES[work.name])(
            grid, block, (x2, w2, b2, y, mu, rstd, M, K, float(eps), weight is not None, bias is not None))
        return tuple(a.astype(x.dtype, copy=False) for a in (y, mu, rstd))

    def layer_norm_grad(self, gy, x, weight, mu, rstd, need_weight, need_bias):
        M, K = x.shape if x.ndim == 2 else (0, 0)
        if (not _ln_applies(x, weight, None) or getattr(gy, "shape", None) != x.shape or gy.dtype != x.dtype
                or any(a.shape != (M, 1) or a.dtype != x.dtype for a in (mu, rstd))):
            return super().layer_norm_grad(gy, x, weight, mu, rstd, need_weight, need_bias)
        cp = self.cupy
        work = _work_dtype(cp, x.dtype)
        ctype = _k.CTYPES[work.name]
        gy2, x2, mu2, rstd2 = (cp.ascontiguousarray(a, dtype=work) for a in (gy, x, mu, rstd))
        w2 = x2 if weight is None else cp.ascontiguousarray(weight, dtype=work)
        gx = cp.empty((M, K), work)
        grid, block = _k.row_launch(M, K)
        _k.row_kernel("layer_norm_grad_x", ctype)(grid, block, (gy2, x2, w2, mu2, rstd2, gx, M, K,
                                                               weight is not None))
        gw = gb = None
        if need_weight or need_bias:
            rows, chunks = _k.ln_chunks(M)
            shape = (chunks, K) if chunks > 1 else (K,)  # partial sums of each chunk of rows
            pw = cp.empty(shape, work) if need_weight else gx  # (gx: a pointer the kernel leaves alone)
            pb = cp.empty(shape, work) if need_bias else gx
            _k.row_kernel("layer_norm_grad_wb", ctype)(
                (-(-K // _k.LN_COLS), chunks), (_k.LN_COLS, _k.LN_ROWS),
                (gy2, x2, mu2, rstd2, pw, pb, M, K, rows, need_weight, need_bias))
            gw = (pw.sum(axis=0) if chunks > 1 else pw) if need_weight else None
            gb = (pb.sum(axis=0) if chunks > 1 else pb) if need_bias else None
        return tuple(None if a is None else a.astype(x.dtype, copy=False) for a in (gx, gw, gb))

    def erf(self, x):
        out = self._map("erf", x)
        return super().erf(x) if out is None else out

    def normal_cdf(self, x):
        out = self._map("normal_cdf", x)
        return super().normal_cdf(x) if out is None else out

    def gelu_grad(self, x, gy, cdf):
        out = self._map("gelu_grad", x, gy, cdf)
        return super().gelu_grad(x, gy, cdf) if out is None else out

    def where(self, cond, a, b):
        cp = self.cupy
        if (isinstance(cond, cp.ndarray) and cond.dtype == cp.bool_ and isinstance(a, cp.ndarray)
                and isinstance(b, cp.ndarray) and a.dtype == b.dtype):
            return _k.elementwise_kernel("where")(cond, a, b)  # any dtype: a copy of a's or b's value
        return super().where(cond, a, b)

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


def _work_dtype(cupy, dtype):
    """The dtype a fused kernel computes in: float16 in float32, the others in their own."""
    return cupy.dtype(cupy.float32) if dtype == cupy.float16 else dtype


def _ln_applies(x, weight, bias) -> bool:
    """Whether the layer norm kernels serve rows x (M, K) with this weight and bias (K,) or None."""
    return (x.ndim == 2 and x.size > 0 and x.dtype.name in _KERNEL_DTYPES
            and all(p is None or (p.shape == x.shape[1:] and p.dtype == x.dtype) for p in (weight, bias)))
