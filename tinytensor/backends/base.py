"""The backend contract: an array namespace ``xp`` plus the kernels the engine calls.

Every kernel is written once here against the Python Array API standard, so any compliant namespace
works. A subclass (NumPy, CuPy) overrides only what it can do faster.
"""
from __future__ import annotations

import math

import numpy as np

from ..device import device as Device
from ..dtypes import DTYPES, DType
from .deferred import DeferredChecks, check_range, flushing


class Backend:
    """Owns ``xp`` and the kernels; one instance serves one device."""

    name = "base"
    scalar_types = frozenset()  # types the namespace returns for 0-d results that are not arrays

    def __init__(self, xp, device: str, array_device=None):
        self.xp = xp
        self.device = Device(device)  # canonical device name, e.g. "cpu", "cuda:0" (a str)
        # the namespace's own device object, passed to every array this backend creates (None:
        # the namespace's default, e.g. NumPy's CPU or CuPy's current device)
        self._place = {} if array_device is None else {"device": array_device}
        self._to_xp = {}
        self._from_xp = {}
        for dt in DTYPES.values():
            xdt = getattr(xp, dt.name, None)
            if xdt is None:
                continue
            self._to_xp[dt] = xdt
            self._from_xp[xp.empty((0,), dtype=xdt).dtype] = dt
        # the array dtypes of floating-point tensors (the ones that can have gradients)
        self.float_dtypes = frozenset(d for d, dt in self._from_xp.items() if dt.is_floating_point)
        self.checks = DeferredChecks(self)  # value checks waiting for the next host sync (deferred.py)

    def __init_subclass__(cls, **kwargs):
        """A subclass's own to_host and synchronize raise the pending value checks first, as these
        do: every way out to the host passes them (backends/deferred.py)."""
        super().__init_subclass__(**kwargs)
        for name in ("to_host", "synchronize"):
            if name in vars(cls):
                setattr(cls, name, flushing(vars(cls)[name]))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} device={self.device!r}>"

    # ---- dtypes and host transfer -------------------------------------------------------------
    def xp_dtype(self, dtype: DType):
        """The array library's dtype for a tinytensor DType; NotImplementedError if the backend lacks it."""
        try:
            return self._to_xp[dtype]
        except KeyError:
            # a declared limitation of this backend, as an unsupported op is (NotImplementedError)
            raise NotImplementedError(
                f"backend {self.name!r} does not support dtype {dtype} (its array library has no such "
                f"type); use one of {sorted(d.name for d in self._to_xp)}"
            ) from None

    def dtype_of(self, a) -> DType:
        """The tinytensor DType of a backend array."""
        return self._from_xp[a.dtype]

    def dtype_of_xp(self, xp_dtype) -> DType:
        """The DType of an array dtype of this namespace."""
        return self._from_xp[xp_dtype]

    def asarray(self, data, dtype: DType | None = None):
        """Make a backend array from host data (lists, scalars, NumPy arrays)."""
        host = np.asarray(data, dtype=None if dtype is None else dtype.name)
        if dtype is None and host.dtype == np.float64 and not isinstance(data, np.ndarray):
            host = host.astype(np.float32)  # Python floats become float32, as in PyTorch
        return self.from_host(host)

    def from_host(self, a: np.ndarray):
        """A backend array on this device from a host NumPy array."""
        return self.xp.asarray(a, **self._place)

    @flushing
    def to_host(self, a) -> np.ndarray:
        """A backend array as a host NumPy array (a copy off the GPU)."""
        return np.asarray(a)

    @flushing
    def synchronize(self) -> None:
        """Wait until the device has finished the work queued on it (nothing to wait for on a CPU)."""

    @property
    def syncs_on_read(self) -> bool:
        """Whether reading a value on the host (bool(), int(), to_host) waits for the device: False for
        NumPy's arrays (host memory), True for others (CuPy's, the strict stand-in's)."""
        return self.xp is not np

    @property
    def defers_checks(self) -> bool:
        """Whether a value check (``check_range``) waits for the next host sync: where reads are syncs."""
        return self.syncs_on_read

    def supports_dlpack(self) -> bool:
        """Whether this backend's arrays go through DLPack (``tt.from_dlpack``, ``__dlpack__``)."""
        return True

    def owns(self, a) -> bool:
        """Whether ``a`` is an array of its own (not a view, writable); False when unknown."""
        return False

    def copy(self, a):
        """A new array with the values of ``a`` (also of a broadcast view), on this device."""
        return self.xp.asarray(a, copy=True)

    # ---- helpers over the standard ------------------------------------------------------------
    def reshape(self, a, shape: tuple):
        """``a`` in ``shape`` (a view where the layout allows; the view ops' kernel)."""
        return self.xp.reshape(a, shape)

    def permute_dims(self, a, axes: tuple):
        """``a`` with its axes reordered, a view (the view ops' kernel)."""
        return self.xp.permute_dims(a, axes)

    def astype(self, a, dtype: DType):
        """``a`` converted to ``dtype`` (``a`` itself if it has it already)."""
        xdt = self.xp_dtype(dtype)
        return a if a.dtype == xdt else self.xp.astype(a, xdt)

    def full(self, shape, value, dtype: DType):
        """An array of ``shape`` filled with ``value``, of ``dtype``, on this device."""
        return self.xp.full(tuple(shape), value, dtype=self.xp_dtype(dtype), **self._place)

    # Kernels create arrays only through these two, so that they land on this backend's device.
    def zeros(self, shape, dtype):
        """Zeros of a namespace dtype (``x.dtype``), on this backend's device."""
        return self.xp.zeros(tuple(shape), dtype=dtype, **self._place)

    def arange(self, n: int, dtype=None):
        """0, 1, ..., n-1 on this device (a namespace dtype, or the library's default integer)."""
        return self.xp.arange(n, dtype=dtype, **self._place)

    def sum_to(self, a, shape: tuple):
        """Sum a broadcast array back down to ``shape`` (the adjoint of broadcasting)."""
        if a.shape == shape:
            return a
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and a.shape[lead + i] != 1
        )
        out = self.xp.sum(a, axis=axes, keepdims=True) if axes else a
        return self.xp.reshape(out, shape)

    def tri_mask(self, n: int, m: int, k: int, lower: bool):
        """The (n, m) bool mask of tril (``col - row <= k``) or triu (``col - row >= k``)."""
        xp = self.xp
        rows = xp.reshape(self.arange(n), (n, 1))
        cols = xp.reshape(self.arange(m), (1, m))
        return (cols - rows <= k) if lower else (cols - rows >= k)

    def matmul(self, a, b):
        """a @ b with NumPy's batching rules."""
        return self.xp.matmul(a, b)

    def where(self, cond, a, b):
        """a where cond, else b (broadcast; a and b arrays or Python numbers)."""
        return self.xp.where(cond, a, b)

    def power(self, a, b):
        """a ** b (arrays or Python numbers, broadcast), with the array library's rules."""
        return a**b

    # ---- fused kernels ------------------------------------------------------------------------
    def softmax(self, x, axis: int):
        """exp(x - max) / Σ exp(x - max) along ``axis`` (the kernel of ``tt.softmax``)."""
        xp = self.xp
        e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
        return e / xp.sum(e, axis=axis, keepdims=True)

    def softmax_grad(self, y, gy, axis: int):
        """dx = y * (gy - sum(gy * y))"""
        return y * (gy - self.xp.sum(gy * y, axis=axis, keepdims=True))

    def masked_softmax(self, s):
        """softmax over the last axis of attention scores, where a row that is -inf everywhere (a query
        with nothing to attend to) gives zeros instead of 0/0 = NaN. NaN scores stay NaN."""
        xp = self.xp
        if s.shape[-1] == 0:
            return xp.zeros_like(s)
        m = xp.max(s, axis=-1, keepdims=True)  # (..., 1)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        e = xp.exp(s - m)  # exp(-inf) = 0 at blocked positions
        d = xp.sum(e, axis=-1, keepdims=True)  # (..., 1)
        return e / xp.where(d == 0, xp.ones_like(d), d)

    def causal_softmax(self, s):
        """masked_softmax of scores s (..., L, S) where query i sees keys j <= i only (``is_causal``,
        top-left aligned): the other keys get weight 0 whatever their scores, NaN included."""
        L, S = s.shape[-2:]
        seen = self.tri_mask(L, S, 0, lower=True)  # (L, S)
        return self.masked_softmax(self.where(seen, s, self.zeros((), s.dtype) - math.inf))

    def layer_norm(self, x, weight, bias, eps: float):
        """Layer norm of the rows of x (M, K): (y, μ, rstd) with y = (x - μ)·rstd·w + b, rstd =
        1/√(σ² + eps) (biased variance), μ and rstd of shape (M, 1); weight and bias (K,) or None."""
        xp = self.xp
        mu = xp.mean(x, axis=1, keepdims=True)
        xc = x - mu
        rstd = 1.0 / xp.sqrt(xp.mean(xc * xc, axis=1, keepdims=True) + eps)
        y = xc * rstd
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
        return y, mu, rstd

    def layer_norm_grad(self, gy, x, weight, mu, rstd, need_weight: bool, need_bias: bool):
        """The gradients (gx, gw, gb) of layer norm's rows from gy (M, K), with x̂ = (x - μ)·rstd and
        g = gy·w:  gx = rstd·(g - mean(g) - x̂·mean(g·x̂)),  gw = Σ_rows gy·x̂,  gb = Σ_rows gy
        (None where not needed)."""
        xp = self.xp
        xhat = (x - mu) * rstd
        g = gy if weight is None else gy * weight
        gx = rstd * (g - xp.mean(g, axis=1, keepdims=True) - xhat * xp.mean(g * xhat, axis=1, keepdims=True))
        gw = xp.sum(gy * xhat, axis=0) if need_weight else None
        gb = xp.sum(gy, axis=0) if need_bias else None
        return gx, gw, gb

    def logsumexp(self, x, axis, keepdims: bool):
        """log Σ exp(x) along ``axis``, computed as m + log Σ exp(x - m) with m the finite max."""
        xp = self.xp
        m = xp.max(x, axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
        return out if keepdims else xp.squeeze(out, axis=axis)

    def log_softmax(self, x, axis: int):
        """(x - m) - log Σ e^(x - m): subtracting m first keeps float32 exact for large logits. A
        row whose max is ±inf is NaN everywhere, as PyTorch's (and as softmax's)."""
        xp = self.xp
        s = x - xp.max(x, axis=axis, keepdims=True)
        return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))

    def log_softmax_grad(self, y, gy, axis: int):
        """dx = gy - exp(y) * sum(gy)"""
        return gy - self.xp.exp(y) * self.xp.sum(gy, axis=axis, keepdims=True)

    def erf(self, x):
        """erf by its Taylor series near 0 and a continued fraction for erfc in the tails; in float32
        by a rational approximation (absolute error below 5e-7, a tenth of the series' cost)."""
        xp = self.xp
        if x.dtype == xp.float32:
            return _erf_float32(xp, x)
        series, tail, small = self._erf_series_and_tail(x)
        return xp.where(small, series, xp.where(x < 0, tail - 1.0, 1.0 - tail))

    def erfc(self, x):
        """1 - erf x without the cancellation of that difference: in the tails it is the continued
        fraction itself (float32 goes through float64, as its erf's absolute error would be relative here)."""
        xp = self.xp
        if x.dtype == xp.float32:
            return xp.astype(self.erfc(xp.astype(x, xp.float64)), xp.float32)
        series, tail, small = self._erf_series_and_tail(x)
        return xp.where(small, 1.0 - series, xp.where(x < 0, 2.0 - tail, tail))

    def _erf_series_and_tail(self, x):
        """(erf x by its Taylor series, erfc |x| by its continued fraction, the mask |x| < 2.5 where the
        series is the one to use); float64."""
        xp = self.xp
        ax = xp.abs(x)
        small = ax < 2.5
        xs = xp.where(small, x, xp.zeros_like(x))
        term, total, x2 = xs, xs, xs * xs
        for n in range(1, 60):
            term = -term * x2 / n
            total = total + term / (2 * n + 1)
        series = total * (2.0 / math.sqrt(math.pi))
        # erfc(z) = exp(-z^2)/sqrt(pi) * 1/(z + 1/2/(z + 1/(z + 3/2/(z + ...)))), evaluated bottom-up
        z = xp.where(small, xp.full(x.shape, 3.0, dtype=x.dtype, **self._place), ax)
        frac = z
        for k in range(60, 0, -1):
            frac = z + (k / 2.0) / frac
        return series, xp.exp(-z * z) / (frac * math.sqrt(math.pi)), small

    def rotary(self, x, cos, sin):
        """Each feature pair (x_2i, x_2i+1) of x (..., D) turned by the angle with this cos and sin
        (..., D/2; broadcast against the pairs): (x_2i cos - x_2i+1 sin, x_2i sin + x_2i+1 cos), the
        kernel of rotary position embedding. Turning back (its gradient) is the same with -sin."""
        xp = self.xp
        x1, x2 = x[..., 0::2], x[..., 1::2]
        y = xp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)  # (..., D/2, 2)
        return xp.reshape(y, y.shape[:-2] + (2 * y.shape[-2],))

    def exp(self, x):
        """e^x element-wise (a backend may have a faster loop than its array library's)."""
        return self.xp.exp(x)

    def tanh(self, x):
        """tanh x element-wise."""
        return self.xp.tanh(x)

    def relu_grad(self, x, gy):
        """gy where x > 0 (or x is NaN), else 0: relu's gradient, selected (inf gy where x <= 0: 0)."""
        return self.where(x <= 0, self.zeros((), gy.dtype), gy)

    def normal_cdf(self, x):
        """Φ(x) = (1 + erf(x/√2))/2, the standard normal distribution function."""
        y = self.erf(x * _SQRT1_2)  # a fresh array: updated in place
        y += 1.0
        y *= 0.5
        return y

    def gelu_grad(self, x, gy, cdf):
        """gy · (Φ(x) + x φ(x)) given cdf = Φ(x), with φ(x) = e^(-x²/2)/√(2π): d/dx xΦ(x), times gy."""
        out = x * x
        out *= -0.5
        out = self.xp.exp(out)
        out *= x
        out *= _INV_SQRT_2PI  # x φ(x)
        out += cdf
        out *= gy
        return out

    def gelu_tanh(self, x):
        """GELU's tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
        return 0.5 * x * (1.0 + self.xp.tanh(_GELU_K * (x + 0.044715 * x * x * x)))

    def gelu_tanh_grad(self, x, gy):
        """gy · d/dx of gelu_tanh: with t = tanh(u), u = √(2/π)·(x + 0.044715·x³),
        0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²)."""
        t = self.xp.tanh(_GELU_K * (x + 0.044715 * x * x * x))
        dt = (1.0 - t * t) * _GELU_K * (1.0 + 3 * 0.044715 * x * x)
        return gy * (0.5 * (1.0 + t) + 0.5 * x * dt)

    def getitem(self, a, index: tuple):
        """a[index]. The standard allows integer arrays only when every axis gets one, so a single
        integer array among slices is done here as a basic index followed by ``take``; a 1-d bool
        mask that is not the sole or leading index is the integer array of its True positions."""
        if len(index) > 1 and _is_bool_array(index[0]) and all(it is Ellipsis for it in index[1:]):
            return self._mask_leading(a, index[0])
        if len(index) > 1 and any(_is_bool_array(it) for it in index):
            index = tuple(self._mask_positions(it) if _is_bool_array(it) else it for it in index)
        arrays = [k for k, it in enumerate(index) if _is_int_array(it)]
        if not arrays:
            return a[index]
        if len(arrays) > 1 or any(isinstance(it, int) for it in index):
            raise NotImplementedError(
                f"backend {self.name!r}: indexing with several integer arrays, or integer arrays "
                f"mixed with integers, is supported on numpy and cupy only"
            )
        (k,) = arrays
        idx = index[k]
        b = a[index[:k] + (slice(None),) + index[k + 1 :]]
        consumed = sum(1 for it in index if it is not None and it is not Ellipsis)
        axis = sum(a.ndim - consumed if it is Ellipsis else 1 for it in index[:k])  # ... spans the rest
        out = self.xp.take(b, self.xp.reshape(idx, (-1,)), axis=axis)
        return self.xp.reshape(out, b.shape[:axis] + tuple(idx.shape) + b.shape[axis + 1 :])

    def _mask_positions(self, mask):
        """The True positions of a 1-d bool mask, as an integer array (what NumPy reads it as)."""
        if mask.ndim != 1:
            raise NotImplementedError(
                f"backend {self.name!r}: a {mask.ndim}-d bool mask among other indices is supported "
                f"on numpy and cupy only; index with it first (x[mask]) or move its dims to the front"
            )
        return self.xp.nonzero(mask)[0]

    def _mask_leading(self, a, mask):
        """a[mask, ...] for a bool mask over the leading dims (the standard allows a mask only as
        the sole index): flatten those dims and take the True positions."""
        xp = self.xp
        k = mask.ndim
        flat = xp.reshape(a, (math.prod(a.shape[:k]),) + tuple(a.shape[k:]))
        (pos,) = xp.nonzero(xp.reshape(mask, (-1,)))
        return xp.take(flat, pos, axis=0)

    def setitem(self, a, index: tuple, value) -> None:
        """a[index] = value in place. A boolean mask goes through ``where``: the standard (and
        array_api_strict off the CPU device) supports array keys for reading only."""
        if not any(hasattr(it, "shape") for it in index):
            if any(it is None for it in index):  # the standard allows no None in assignments
                index, value = self._drop_new_axes(a, index, value)
            a[index] = value
            return
        if "bool" in str(getattr(index[0], "dtype", "")) and all(it is Ellipsis for it in index[1:]):
            mask = self.xp.reshape(index[0], tuple(index[0].shape) + (1,) * (a.ndim - index[0].ndim))
            a[...] = self.xp.where(mask, value, a)
            return
        raise NotImplementedError(
            f"backend {self.name!r}: assignment through integer-array indices is supported on numpy "
            f"and cupy only; use tt.where or index with slices"
        )

    def _drop_new_axes(self, a, index, value):
        """(index, value) for ``a[index] = value`` without the None (new, size-1) axes of a basic
        index: the value, broadcast to the shape a[index] has with them, is reshaped to the one
        it has without."""
        kept = tuple(it for it in index if it is not None)
        if hasattr(value, "shape"):
            xp = self.xp
            value = xp.reshape(xp.broadcast_to(value, a[index].shape), a[kept].shape)
        return kept, value

    def index_add(self, out, index, values):
        """out[index] += values, accumulating repeated indices (the adjoint of indexing)."""
        if _is_basic(index):
            if any(it is None for it in index):  # the standard allows no None in assignments
                index, values = self._drop_new_axes(out, index, values)
            out[index] = out[index] + values
            return out
        xp = self.xp
        n = math.prod(out.shape)
        pos = self.getitem(xp.reshape(self.arange(n), out.shape), index)  # source position of each value
        values = xp.reshape(xp.broadcast_to(values, pos.shape), (-1,))
        flat = self.scatter_add_flat(n, xp.reshape(pos, (-1,)), values)
        return xp.reshape(xp.reshape(out, (-1,)) + flat, out.shape)

    def scatter_add_flat(self, size: int, pos, values):
        """A length-``size`` vector v with v[pos[i]] += values[i] (one-hot product; small sizes)."""
        xp = self.xp
        sums = self._rows_of_sums(pos, size, xp.reshape(values, (-1, 1)))
        return xp.reshape(sums, (size,))

    def scatter_flat(self, out, pos, values, reduce: str | None = None):
        """out with out.flat[pos[i]] = values[i] (``reduce`` None; of repeated positions the last write
        wins here, which one is unspecified elsewhere, as in PyTorch), += values[i] ("add": repeats
        add up) or *= values[i] ("multiply"). ``out`` may be updated in place; ``pos`` (flat
        positions) and ``values`` have one shape. One-hot products here (small sizes)."""
        xp = self.xp
        n = math.prod(out.shape)
        flat, pos, values = xp.reshape(out, (-1,)), xp.reshape(pos, (-1,)), xp.reshape(values, (-1,))
        k = pos.shape[0]
        if k == 0:
            return out
        if reduce == "add":
            return xp.reshape(flat + self.scatter_add_flat(n, pos, values), out.shape)
        hit = xp.reshape(pos, (k, 1)) == xp.reshape(self.arange(n, dtype=pos.dtype), (1, n))  # (k, n)
        if reduce == "multiply":
            factors = xp.where(hit, xp.reshape(values, (k, 1)), xp.ones_like(values[:1]))
            return xp.reshape(flat * xp.prod(factors, axis=0), out.shape)
        # the last write wins: at each position the highest writer number (1-based; 0 for none)
        writer = xp.max(xp.where(hit, xp.reshape(self.arange(k, dtype=pos.dtype) + 1, (k, 1)),
                                 xp.zeros_like(pos[:1])), axis=0)
        written = writer > 0
        picked = xp.take(values, xp.where(written, writer - 1, xp.zeros_like(writer)), axis=0)
        return xp.reshape(xp.where(written, picked, flat), out.shape)

    def is_contiguous(self, a) -> bool:
        """Whether ``a`` is laid out in C order (the standard has no memory layout: True)."""
        return True

    def take_rows(self, weight, index):
        """weight[index] for an integer array of any shape (embedding lookup)."""
        xp = self.xp
        rows = xp.take(weight, xp.reshape(index, (-1,)), axis=0)
        return xp.reshape(rows, tuple(index.shape) + tuple(weight.shape[1:]))

    def add_rows(self, num_rows: int, index, grad):
        """The adjoint of take_rows: rows of grad summed into a (num_rows, ...) array."""
        xp = self.xp
        flat_idx = xp.reshape(index, (-1,))
        row = tuple(grad.shape[index.ndim:])
        g = xp.reshape(grad, (flat_idx.shape[0], math.prod(row)))  # not -1: a row may have size 0
        sums = self._rows_of_sums(flat_idx, num_rows, g)
        return xp.reshape(sums, (num_rows,) + row)

    def _rows_of_sums(self, index, n: int, g):
        """out[r] = Σ_{i: index[i] = r} g[i] for a (len(index), m) array g, as one-hot products.

        A product adds 0 · g[i] for every other row, and 0 · inf is NaN: so the product sums only
        the finite entries, and each row's count of NaN, +inf and -inf entries (products of 0/1
        arrays, always finite) decides where the sum is NaN or ±inf, as a scatter-add would give.
        """
        xp = self.xp
        dt = g.dtype
        onehot_t = xp.matrix_transpose(self.one_hot(index, n, dt))  # (n, len(index))
        finite = xp.isfinite(g)
        total = onehot_t @ xp.where(finite, g, xp.zeros_like(g))
        if not xp.isdtype(dt, "real floating") or (not self.syncs_on_read and bool(xp.all(finite))):
            return total  # (a branch on the values only where reading them is free: no sync)
        nan = onehot_t @ xp.astype(xp.isnan(g), dt) > 0
        pos = onehot_t @ xp.astype(g == xp.inf, dt) > 0
        neg = onehot_t @ xp.astype(g == -xp.inf, dt) > 0
        total = xp.where(pos, xp.full_like(total, xp.inf), total)
        total = xp.where(neg, xp.full_like(total, -xp.inf), total)
        return xp.where(nan | (pos & neg), xp.full_like(total, xp.nan), total)

    def one_hot(self, index, n: int, dtype):
        """(len(index), n) matrix with a 1 at (i, index[i]), in ``dtype``; a row whose index is outside
        [0, n) is all 0."""
        xp = self.xp
        return xp.astype(xp.reshape(index, (-1, 1)) == xp.reshape(self.arange(n), (1, -1)), dtype)

    def einsum(self, spec: str, *operands):
        """``xp.einsum`` where the array library has it; here NotImplementedError (NumPy and CuPy override
        it)."""
        raise NotImplementedError(f"einsum is not available on the {self.name!r} backend")

    def bounds(self, index):
        """(min, max) of an integer array as Python ints (a host read: a sync off the CPU)."""
        return int(self.xp.min(index)), int(self.xp.max(index))

    def check_range(self, values, low: int, high: int, error: type, message):
        """Raise ``error(message(v))`` for a value v of an integer array outside [low, high): at once on
        the CPU, at the next host sync where reading a value is one (backends/deferred.py). Returns
        the values to index with (clipped into range while the check waits)."""
        return check_range(self, values, low, high, error, message)


_SQRT1_2, _INV_SQRT_2PI = 1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0 * math.pi)
_GELU_K = math.sqrt(2.0 / math.pi)

# erf(x) ≈ x·P(x²)/Q(x²) on [-4, 4], where float32's erf reaches ±1: the rational approximation
# Eigen and XLA use for float32. Coefficients from the highest power down.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _erf_float32(xp, x):
    """erf of a float32 array by Horner's rule, in place on fresh arrays (no full-size temporaries
    beyond x², P and Q)."""
    x = xp.clip(x, -4.0, 4.0)
    x2 = x * x
    p = x2 * _ERF_P[0]
    for c in _ERF_P[1:]:
        p += c
        p *= x2 if c is not _ERF_P[-1] else x
    q = x2 * _ERF_Q[0]
    for c in _ERF_Q[1:-1]:
        q += c
        q *= x2
    q += _ERF_Q[-1]
    p /= q
    return p


def _is_int_array(it) -> bool:
    return hasattr(it, "shape") and hasattr(it, "dtype") and "int" in str(it.dtype)


def _is_bool_array(it) -> bool:
    return hasattr(it, "shape") and hasattr(it, "dtype") and "bool" in str(it.dtype)


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)
