"""One-pass CPU kernels, compiled by Numba, for the NumPy backend's hottest row-wise ops.

NumPy runs one loop per operation: layer norm is about ten passes over its rows (two of them
reductions over short rows, which NumPy pays for row by row), and float32 erf is 24 (a rational
function by Horner's rule). Written as one loop over each row and compiled, they read their input
once. The arithmetic is the reference kernels' (backends/base.py) in the same order, except that
sums may be reassociated (``fastmath={"reassoc"}``, so that LLVM vectorizes them). No fused
multiply-adds (they would round a product once where the same product is rounded twice elsewhere,
and layer norm's gradient of a constant row would no longer be exactly 0), and no flag that assumes
away NaN or inf: those propagate as they do in the reference. The exceptions are float32 exp and tanh,
which are their own algorithms (Cephes'), with NumPy's ufuncs as their reference.

Numba is optional (``pip install tinytensor[fast]``; the test and examples extras include it).
Without it ``AVAILABLE`` is False and the backend uses its NumPy kernels, as it does with
``TINYTENSOR_NUMBA=0`` in the environment (``numpy_backend._compiled`` reads it before importing this
module); tests/test_parallel_kernels.py checks both kinds against the reference.
Each kernel compiles on first use (about a second; cached on disk after that).
"""
from __future__ import annotations

import math

import numpy as np

from .base import _ERF_P, _ERF_Q

try:
    import numba
except ImportError:  # the NumPy kernels serve
    numba = None

AVAILABLE = numba is not None
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what these kernels take; others use NumPy's


def _jit(fn):
    if numba is None:
        return fn
    return numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc"})(fn)


def _exact(fn):  # no reassociation: the reference's roundings, one by one
    if numba is None:
        return fn
    return numba.njit(nogil=True, cache=True, error_model="numpy")(fn)


# ---- float32 exp and tanh -------------------------------------------------------------------------
# NumPy's float32 exp and tanh took 2.2 and 2.7 ns an element on this project's CPUs (AVX2), about
# twice PyTorch's; these loops vectorize and take 0.65 and 0.9 ns. The algorithms are Cephes' expf and
# tanhf (the C library's are alike): exp(x) = 2^k · e^r with k = round(x/ln 2) and |r| <= ln2/2, e^r a
# degree-7 polynomial, 2^k built in the exponent bits, in two factors so that the results that are
# subnormal (x < -87.3) come out as they should. Within 1 ulp of the exact value (NumPy's: 2.5 ulp),
# exp(-inf) = 0, exp(inf) = inf, NaN stays NaN; tanh within 2 ulp, tanh(±inf) = ±1, tanh(-0.0) = -0.0.
# Fused multiply-adds are allowed here (``contract``): no other kernel's roundings are matched.

F32, I32 = np.float32, np.int32
_ROUND = F32(1.5 * 2**23)  # x + this, minus it: x rounded to an integer (for |x| < 2^22)
_ROUND_BITS = I32(np.array(_ROUND).view(np.int32))  # ... whose low bits then hold that integer


def _jit_contract(fn, **options):
    if numba is None:
        return fn
    return numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"}, **options)(fn)


def _scalar(fn):  # compiled into each loop that calls it (a call per element would stop vectorization)
    return _jit_contract(fn, inline="always")


@_scalar
def _exp_f32(v):
    v = F32(-104.0) if v < F32(-104.0) else v  # exp is 0 below -103.98 and inf above 88.73; NaN passes
    v = F32(89.0) if v > F32(89.0) else v
    u = v * F32(1.44269504088896341) + _ROUND
    k = I32(F32(u).view(np.int32) - _ROUND_BITS)  # round(v / ln 2)
    fk = u - _ROUND
    r = v - fk * F32(0.693359375) - fk * F32(-2.12194440e-4)  # v - k·ln 2 in two parts (Cody-Waite)
    y = F32(1.9875691500e-4)
    y = y * r + F32(1.3981999507e-3)
    y = y * r + F32(8.3334519073e-3)
    y = y * r + F32(4.1665795894e-2)
    y = y * r + F32(1.6666665459e-1)
    y = y * r + F32(5.0000001201e-1)
    y = y * r * r + r + F32(1.0)  # e^r
    h = I32(k >> I32(1))  # 2^k = 2^h · 2^(k-h), each a normal float32
    low = I32(I32(k - h + I32(127)) << I32(23)).view(np.float32)
    low = F32(0.0) if v < F32(-103.98) else low  # 0 by a product with 0: an underflowing one costs 3x
    return y * I32(I32(h + I32(127)) << I32(23)).view(np.float32) * low


# The loops around each scalar function, written out: a factory's closures would not be cached on disk
# (measured: 2.2 s of compiling in every process instead of 0.5 s of loading)

@_jit_contract
def _exp_flat_f32(x, out):
    for i in range(x.size):
        out[i] = _exp_f32(x[i])


@_jit_contract
def _exp_in_place_f32(x):
    for i in range(x.size):
        x[i] = _exp_f32(x[i])


@_scalar
def _tanh_f32(v):
    z = -v if v < F32(0.0) else v
    big = F32(1.0) - F32(2.0) / (_exp_f32(z + z) + F32(1.0))  # |x| >= 0.625: from e^(2|x|)
    big = -big if v < F32(0.0) else big
    s = v * v  # |x| < 0.625: x + x³·P(x²); NaN takes this branch and stays NaN
    p = F32(-5.70498872745e-3)
    p = p * s + F32(2.06390887954e-2)
    p = p * s + F32(-5.37397155531e-2)
    p = p * s + F32(1.33314422036e-1)
    p = p * s + F32(-3.33332819422e-1)
    small = p * s * v + v if z != F32(0.0) else v  # (0 as itself: -0.0 stays -0.0)
    return big if z >= F32(0.625) else small


@_jit_contract
def _tanh_flat_f32(x, out):
    for i in range(x.size):
        out[i] = _tanh_f32(x[i])


@_jit_contract
def _tanh_in_place_f32(x):
    for i in range(x.size):
        x[i] = _tanh_f32(x[i])


def exp(x, out) -> None:
    """out = e^x for distinct float32 arrays of one shape, C-contiguous (``exp_``: in place)."""
    _exp_flat_f32(x.reshape(-1), out.reshape(-1))


def exp_(a) -> None:
    """a = e^a, in place (one array: with two that overlap, LLVM's runtime check finds them overlapping
    and runs the loop unvectorized, 8x slower)."""
    _exp_in_place_f32(a.reshape(-1))


def tanh(x, out) -> None:
    """out = tanh x, as ``exp``."""
    _tanh_flat_f32(x.reshape(-1), out.reshape(-1))


def tanh_(a) -> None:
    """a = tanh a, in place."""
    _tanh_in_place_f32(a.reshape(-1))


# ---- Φ(x) = (1 + erf(x/√2))/2, GELU's ------------------------------------------------------------

P0, P1, P2, P3, P4, P5, P6 = _ERF_P
Q0, Q1, Q2, Q3, Q4 = _ERF_Q
SQRT1_2 = 1 / math.sqrt(2)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
GELU_K = math.sqrt(2 / math.pi)


@_jit
def _normal_cdf_f32(x, out):
    """out = Φ(x) for float32 arrays (flat), with _erf_float32's rational function: erf(z) ≈ z·P(z²)/Q(z²)
    on z clipped to [-4, 4] (float32's erf is ±1 beyond)."""
    for i in range(x.size):
        z = x[i] * np.float32(SQRT1_2)
        if z > 4.0:  # NaN passes both tests, as it passes np.clip
            z = np.float32(4.0)
        elif z < -4.0:
            z = np.float32(-4.0)
        z2 = z * z
        p = np.float32(P0) * z2 + np.float32(P1)
        p = p * z2 + np.float32(P2)
        p = p * z2 + np.float32(P3)
        p = p * z2 + np.float32(P4)
        p = p * z2 + np.float32(P5)
        p = (p * z2 + np.float32(P6)) * z
        q = np.float32(Q0) * z2 + np.float32(Q1)
        q = q * z2 + np.float32(Q2)
        q = q * z2 + np.float32(Q3)
        q = q * z2 + np.float32(Q4)
        out[i] = np.float32(0.5) * (np.float32(1.0) + p / q)


@_jit
def _normal_cdf_f64(x, out):
    """out = Φ(x) for float64 arrays (flat), with the C library's erf."""
    for i in range(x.size):
        out[i] = 0.5 * (1.0 + math.erf(x[i] * SQRT1_2))


def normal_cdf(x, out) -> None:
    """out = Φ(x), both flat and of one dtype in DTYPES."""
    (_normal_cdf_f32 if x.dtype == np.float32 else _normal_cdf_f64)(x, out)


# ---- layer norm over rows ------------------------------------------------------------------------

@_jit
def layer_norm(x, weight, bias, eps, y, mu, rstd):
    """Backend.layer_norm on rows x (M, K): y = (x - μ)·rstd·w + b, μ (M, 1), rstd = 1/√(σ² + eps) (M, 1)
    (biased variance, centred before squaring); weight and bias (K,) or None."""
    M, K = x.shape
    one, zero = x.dtype.type(1), x.dtype.type(0)  # x's precision throughout
    inv_k, eps = x.dtype.type(1 / K), x.dtype.type(eps)
    for m in range(M):
        s = zero
        for k in range(K):
            s += x[m, k]
        mean = s * inv_k
        v = zero
        for k in range(K):
            d = x[m, k] - mean
            v += d * d
        r = one / np.sqrt(v * inv_k + eps)
        mu[m, 0] = mean
        rstd[m, 0] = r
        for k in range(K):
            h = (x[m, k] - mean) * r
            if weight is not None:
                h *= weight[k]
            if bias is not None:
                h += bias[k]
            y[m, k] = h


@_jit
def layer_norm_grad(gy, x, weight, mu, rstd, gx, gw, gb):
    """Backend.layer_norm_grad on rows: gx = rstd·(g - mean(g) - x̂·mean(g·x̂)) with g = gy·w, written
    into gx; Σ_rows gy·x̂ and Σ_rows gy added into gw and gb (zeros, or None where not needed)."""
    M, K = x.shape
    zero, inv_k = x.dtype.type(0), x.dtype.type(1 / K)
    for m in range(M):
        mean, r = mu[m, 0], rstd[m, 0]
        s_g = zero
        s_gx = zero
        for k in range(K):
            xhat = (x[m, k] - mean) * r
            g = gy[m, k]
            if gw is not None:
                gw[k] += g * xhat
            if gb is not None:
                gb[k] += g
            if weight is not None:
                g *= weight[k]
            s_g += g
            s_gx += g * xhat
        s_g *= inv_k
        s_gx *= inv_k
        for k in range(K):
            xhat = (x[m, k] - mean) * r
            g = gy[m, k] if weight is None else gy[m, k] * weight[k]
            gx[m, k] = r * (g - s_g - xhat * s_gx)


# ---- an embedding's gradient ------------------------------------------------------------------------

@_exact
def add_rows(index, grad, out):
    """out[index[i]] += grad[i] for a flat index (N,) and rows grad (N, K), in order: each index's rows
    summed first to last, as the NumPy kernel's sort and reduceat sum them (out holds zeros)."""
    N, K = grad.shape
    for i in range(N):
        r = index[i]
        for k in range(K):
            out[r, k] += grad[i, k]


# ---- softmax's row passes around the exp ----------------------------------------------------------
# The exp is ``exp`` above (a separate pass: it needs FMA contraction, and these sums reassociation,
# which would fold its rounding trick away). These are the passes before and after it, each one loop
# over a row instead of NumPy's reduction plus a broadcast operation, which cost per row as much as per
# element on rows of 64.

@_exact
def shift_rows(x, out, finite_shift, causal_rows=0, first_row=0):
    """out = x - m for rows x (M, K), m the row's max (NaN if the row has one, as np.max). With
    finite_shift, a max that is not finite (a row of -inf, a NaN, +inf) shifts by 0 instead
    (masked_softmax's rule). With causal_rows = L > 0, row m is query i = (first_row + m) mod L of
    attention scores: only its keys k <= i are read, and the others are set to -inf (causal_softmax)."""
    M, K = x.shape
    lowest, zero = x.dtype.type(-np.inf), x.dtype.type(0)  # in x's precision: one rounding, as NumPy's
    for m in range(M):
        n = K if causal_rows == 0 else min((first_row + m) % causal_rows + 1, K)  # the keys it sees
        mx, nan = lowest, False
        for k in range(n):  # (a select and an or, not branches: the loop vectorizes, 3x faster)
            v = x[m, k]
            mx = v if v > mx else mx
            nan |= v != v
        if nan:
            mx = x.dtype.type(np.nan)
        if finite_shift and not np.isfinite(mx):
            mx = zero
        for k in range(n):
            out[m, k] = x[m, k] - mx
        for k in range(n, K):
            out[m, k] = lowest


@_jit
def divide_rows_by_sums(e, zero_as_one):
    """e /= Σ e over each row of e (M, K), in place; with zero_as_one a row summing to 0 (all of it
    masked) is divided by 1, so it stays zeros."""
    M, K = e.shape
    for m in range(M):
        d = e.dtype.type(0)
        for k in range(K):
            d += e[m, k]
        if zero_as_one and d == 0:
            d = e.dtype.type(1)
        for k in range(K):
            e[m, k] /= d


@_jit
def softmax_grad(y, gy, out):
    """out = y ⊙ (gy - Σ gy⊙y) over each row (M, K) of softmax's output y: softmax's backward in one
    pass over the row for the sum and one for the result (NumPy: a gufunc call per row, two broadcast
    operations)."""
    M, K = y.shape
    for m in range(M):
        s = y.dtype.type(0)
        for k in range(K):
            s += gy[m, k] * y[m, k]
        for k in range(K):
            out[m, k] = y[m, k] * (gy[m, k] - s)


@_jit
def subtract_log_sums(out, e):
    """out -= log Σ e over each row (log_softmax's last pass: out = x - m, e = exp(out))."""
    M, K = e.shape
    for m in range(M):
        d = e.dtype.type(0)
        for k in range(K):
            d += e[m, k]
        d = np.log(d)
        for k in range(K):
            out[m, k] -= d


# ---- ReLU's gradient -------------------------------------------------------------------------------

@_exact
def relu_grad(x, gy, out):
    """out = gy where x > 0 (or x is NaN), else 0 (flat arrays): Backend.relu_grad."""
    zero = out.dtype.type(0)
    for i in range(x.size):
        out[i] = zero if x[i] <= 0 else gy[i]


# ---- GELU's gradient around the exp ----------------------------------------------------------------

@_exact
def half_neg_square(x, out):
    """out = x·x·(-0.5) (flat arrays): the exponent of φ(x) = e^(-x²/2)/√(2π)."""
    for i in range(x.size):
        out[i] = x[i] * x[i] * x.dtype.type(-0.5)


@_exact
def gelu_grad_from_exp(x, gy, cdf, out):
    """out = gy·(Φ(x) + x·e^(-x²/2)/√(2π)) given out = e^(-x²/2) (flat arrays): Backend.gelu_grad's
    products in its order."""
    c = x.dtype.type(INV_SQRT_2PI)
    for i in range(x.size):
        out[i] = (out[i] * x[i] * c + cdf[i]) * gy[i]


# ---- GELU's tanh form around the tanh --------------------------------------------------------------

@_exact
def gelu_tanh_arg(x, out):
    """out = √(2/π)·(x + 0.044715·x·x·x) (flat arrays), in Backend.gelu_tanh's order."""
    k, c = x.dtype.type(GELU_K), x.dtype.type(0.044715)
    for i in range(x.size):
        v = x[i]
        out[i] = k * (v + c * v * v * v)


@_exact
def gelu_tanh_from_tanh(x, out):
    """out = 0.5·x·(1 + t) given out = t = tanh(...) (flat arrays)."""
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    for i in range(x.size):
        out[i] = half * x[i] * (one + out[i])


@_exact
def gelu_tanh_grad_from_tanh(x, gy, out):
    """out = gy·(0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²)) given out = t (flat arrays), in
    Backend.gelu_tanh_grad's order."""
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    k, c3 = x.dtype.type(GELU_K), x.dtype.type(3 * 0.044715)
    for i in range(x.size):
        v, t = x[i], out[i]
        dt = (one - t * t) * k * (one + c3 * v * v)
        out[i] = gy[i] * (half * (one + t) + half * v * dt)
