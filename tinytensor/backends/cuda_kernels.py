"""The CUDA sources of the CuPy backend's fused kernels, and how they are launched.

No CuPy import at module level: a kernel object is made (and CuPy imported) the first time the CuPy
backend asks for it, once per kernel and dtype, and cached here; CuPy compiles it on its first launch
on each device and keeps the binary in its kernel cache.

Row kernels (``RawKernel``) work on C-contiguous rows (M, K), the last axis: softmax, log-softmax and
their gradients, attention's masked softmax, layer norm and its gradient. A row goes to one warp when
it is short (K <= 256: eight rows a block) and to one block otherwise (64 to 1024 threads, about eight
values a thread up to K = 8192); the threads stride along the row and meet in warp shuffles and, for a
block, 32 values of shared memory. Every pass reads the row again rather than keeping it, so any K
works; up to a few thousand columns the row is still in the cache for the second and third pass.

Element-wise kernels (``ElementwiseKernel``: erf, Φ, GELU's gradient, where) broadcast their operands
as CuPy does. They are typed by CuPy's ``T``; the row kernels get ``T`` and the math helpers from a
small header per type (float or double). float16 is computed in float32 by the caller.
"""
from __future__ import annotations

import functools

# C type of each dtype the kernels are compiled for (float16 arrays are converted to float32 first)
CTYPES = {"float32": "float", "float64": "double"}

_HEADERS = {
    "float": r"""
typedef float T;
#define T_NEG_INF (-__int_as_float(0x7f800000))
__device__ __forceinline__ T t_exp(T v) { return expf(v); }
__device__ __forceinline__ T t_log(T v) { return logf(v); }
__device__ __forceinline__ T t_sqrt(T v) { return sqrtf(v); }
__device__ __forceinline__ T t_max(T a, T b) { return fmaxf(a, b); }
""",
    "double": r"""
typedef double T;
#define T_NEG_INF (-__longlong_as_double(0x7ff0000000000000LL))
__device__ __forceinline__ T t_exp(T v) { return exp(v); }
__device__ __forceinline__ T t_log(T v) { return log(v); }
__device__ __forceinline__ T t_sqrt(T v) { return sqrt(v); }
__device__ __forceinline__ T t_max(T a, T b) { return fmax(a, b); }
""",
}

# The row kernels. Block shape (32, R): R rows a block, one warp each; or (n, 1): one row a block.
# Every thread of a row's group calls the reductions (no early exit inside a row), and each
# reduction gives its result to all of them. fmax ignores NaN: a NaN in a row still reaches every
# output through the row's sum, as in the reference kernels.
ROWS_SOURCE = r"""
__device__ __forceinline__ long long row_of_thread() {
    return (long long)blockIdx.x * blockDim.y + threadIdx.y;
}

__device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = t_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// the sum over the row's threads, given to each of them; buf: 32 values of shared memory
__device__ T row_sum(T v, T* buf) {
    v = warp_sum(v);
    if (blockDim.x == 32) return v;  // a warp per row
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // the last reduction's reads of buf are done
    if (lane == 0) buf[warp] = v;
    __syncthreads();
    return warp_sum(lane < (int)(blockDim.x >> 5) ? buf[lane] : (T)0);
}

__device__ T row_max(T v, T* buf) {
    v = warp_max(v);
    if (blockDim.x == 32) return v;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) buf[warp] = v;
    __syncthreads();
    return warp_max(lane < (int)(blockDim.x >> 5) ? buf[lane] : T_NEG_INF);
}

#define FOR_ROW(j) for (long long j = threadIdx.x; j < K; j += blockDim.x)

// y = exp(x - max) / sum exp(x - max)
extern "C" __global__ void tt_softmax(const T* __restrict__ x, T* __restrict__ y, long long M,
                                      long long K) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;  // a whole warp of the last block (a warp per row)
    x += row * K;
    y += row * K;
    T m = T_NEG_INF;
    FOR_ROW(j) m = t_max(m, x[j]);
    m = row_max(m, buf);
    T s = 0;
    FOR_ROW(j) s += t_exp(x[j] - m);
    s = row_sum(s, buf);
    FOR_ROW(j) y[j] = t_exp(x[j] - m) / s;
}

// y = (x - max) - log sum exp(x - max)
extern "C" __global__ void tt_log_softmax(const T* __restrict__ x, T* __restrict__ y, long long M,
                                          long long K) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;
    x += row * K;
    y += row * K;
    T m = T_NEG_INF;
    FOR_ROW(j) m = t_max(m, x[j]);
    m = row_max(m, buf);
    T s = 0;
    FOR_ROW(j) s += t_exp(x[j] - m);
    const T lse = t_log(row_sum(s, buf));
    FOR_ROW(j) y[j] = (x[j] - m) - lse;
}

// softmax where a row that is -inf everywhere gives zeros: the shift is 0 when the max is not
// finite (m - m is NaN for +-inf), and a zero sum divides by 1
extern "C" __global__ void tt_masked_softmax(const T* __restrict__ s, T* __restrict__ p, long long M,
                                             long long K) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;
    s += row * K;
    p += row * K;
    T m = T_NEG_INF;
    FOR_ROW(j) m = t_max(m, s[j]);
    m = row_max(m, buf);
    if (!(m - m == (T)0)) m = 0;
    T d = 0;
    FOR_ROW(j) d += t_exp(s[j] - m);
    d = row_sum(d, buf);
    if (d == (T)0) d = 1;
    FOR_ROW(j) p[j] = t_exp(s[j] - m) / d;
}

// gx = y * (gy - sum gy*y)
extern "C" __global__ void tt_softmax_grad(const T* __restrict__ y, const T* __restrict__ gy,
                                           T* __restrict__ gx, long long M, long long K) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;
    y += row * K;
    gy += row * K;
    gx += row * K;
    T d = 0;
    FOR_ROW(j) d += gy[j] * y[j];
    d = row_sum(d, buf);
    FOR_ROW(j) gx[j] = y[j] * (gy[j] - d);
}

// gx = gy - exp(y) * sum gy
extern "C" __global__ void tt_log_softmax_grad(const T* __restrict__ y, const T* __restrict__ gy,
                                               T* __restrict__ gx, long long M, long long K) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;
    y += row * K;
    gy += row * K;
    gx += row * K;
    T s = 0;
    FOR_ROW(j) s += gy[j];
    s = row_sum(s, buf);
    FOR_ROW(j) gx[j] = gy[j] - t_exp(y[j]) * s;
}

// y = (x - mu) * rstd * w + b, mu = mean x, rstd = 1 / sqrt(mean (x - mu)^2 + eps); w, b optional
extern "C" __global__ void tt_layer_norm(const T* __restrict__ x, const T* __restrict__ w,
                                         const T* __restrict__ b, T* __restrict__ y, T* __restrict__ mu,
                                         T* __restrict__ rstd, long long M, long long K, double eps,
                                         bool has_w, bool has_b) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;
    x += row * K;
    y += row * K;
    T s = 0;
    FOR_ROW(j) s += x[j];
    const T mean = row_sum(s, buf) / (T)K;
    T v = 0;
    FOR_ROW(j) {
        const T c = x[j] - mean;
        v += c * c;
    }
    const T r = (T)1 / t_sqrt(row_sum(v, buf) / (T)K + (T)eps);
    if (threadIdx.x == 0) {
        mu[row] = mean;
        rstd[row] = r;
    }
    FOR_ROW(j) {
        T t = (x[j] - mean) * r;
        if (has_w) t *= w[j];
        if (has_b) t += b[j];
        y[j] = t;
    }
}

// gx = rstd * (g - mean g - xhat * mean g*xhat), g = gy * w (or gy), xhat = (x - mu) * rstd
extern "C" __global__ void tt_layer_norm_grad_x(const T* __restrict__ gy, const T* __restrict__ x,
                                                const T* __restrict__ w, const T* __restrict__ mu,
                                                const T* __restrict__ rstd, T* __restrict__ gx,
                                                long long M, long long K, bool has_w) {
    __shared__ T buf[32];
    const long long row = row_of_thread();
    if (row >= M) return;
    gy += row * K;
    x += row * K;
    gx += row * K;
    const T m = mu[row], r = rstd[row];
    T sg = 0, sgx = 0;
    FOR_ROW(j) {
        const T g = has_w ? gy[j] * w[j] : gy[j];
        sg += g;
        sgx += g * ((x[j] - m) * r);
    }
    const T mg = row_sum(sg, buf) / (T)K;
    const T mgx = row_sum(sgx, buf) / (T)K;
    FOR_ROW(j) {
        const T g = has_w ? gy[j] * w[j] : gy[j];
        gx[j] = r * (g - mg - ((x[j] - m) * r) * mgx);
    }
}

// Column sums of gy * xhat (into pw) and gy (into pb) over one chunk of rows: block (32, 8) takes 32
// columns, its 8 rows of threads stride the chunk [blockIdx.y * rows_per_chunk, ...); each chunk
// writes its row of the (chunks, K) partial sums, which the caller adds up (no atomics: the same
// result every run)
extern "C" __global__ void tt_layer_norm_grad_wb(const T* __restrict__ gy, const T* __restrict__ x,
                                                 const T* __restrict__ mu, const T* __restrict__ rstd,
                                                 T* __restrict__ pw, T* __restrict__ pb, long long M,
                                                 long long K, long long rows_per_chunk, bool has_w,
                                                 bool has_b) {
    __shared__ T tw[8][32];
    __shared__ T tb[8][32];
    const long long j = (long long)blockIdx.x * 32 + threadIdx.x;
    const long long r0 = (long long)blockIdx.y * rows_per_chunk;
    const long long r1 = r0 + rows_per_chunk < M ? r0 + rows_per_chunk : M;
    T sw = 0, sb = 0;
    if (j < K) {
        for (long long i = r0 + threadIdx.y; i < r1; i += 8) {
            const T g = gy[i * K + j];
            sb += g;
            sw += g * ((x[i * K + j] - mu[i]) * rstd[i]);
        }
    }
    tw[threadIdx.y][threadIdx.x] = sw;
    tb[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && j < K) {
        T a = 0, c = 0;
        for (int t = 0; t < 8; ++t) {
            a += tw[t][threadIdx.x];
            c += tb[t][threadIdx.x];
        }
        const long long at = (long long)blockIdx.y * K + j;
        if (has_w) pw[at] = a;
        if (has_b) pb[at] = c;
    }
}
"""

ROW_KERNELS = ("softmax", "log_softmax", "masked_softmax", "softmax_grad", "log_softmax_grad",
               "layer_norm", "layer_norm_grad_x", "layer_norm_grad_wb")

# name -> (in_params, out_params, operation) of an ElementwiseKernel; literals cast to T so that float32
# stays float32 (erf and exp of a float are CUDA's erff and expf)
ELEMENTWISE = {
    "erf": ("T x", "T y", "y = erf(x)"),
    # (1 + erf(x/√2)) / 2
    "normal_cdf": ("T x", "T y", "y = (T)0.5 * ((T)1 + erf(x * (T)0.70710678118654752440))"),
    # gy · (Φ(x) + x φ(x)),  φ(x) = e^(-x²/2) / √(2π)
    "gelu_grad": ("T x, T gy, T cdf", "T gx",
                  "gx = (exp(x * x * (T)-0.5) * x * (T)0.39894228040143267794 + cdf) * gy"),
    # a copy of a's or b's value: NaN payloads and -0.0 kept
    "where": ("bool c, T a, T b", "T y", "y = c ? a : b"),
}

WARP_ROWS = 8  # rows a block when a warp takes a row
LN_COLS, LN_ROWS = 32, 8  # tt_layer_norm_grad_wb's block: columns and rows of threads
LN_MAX_CHUNKS = 512  # at most this many partial sums per column


def row_source(ctype: str) -> str:
    """The whole CUDA source of the row kernels for one C type ("float" or "double")."""
    return _HEADERS[ctype] + ROWS_SOURCE


@functools.cache
def row_kernel(name: str, ctype: str):
    """The RawKernel ``tt_<name>`` for C type ``ctype`` (made once; CuPy compiles it on first launch)."""
    import cupy

    return cupy.RawKernel(row_source(ctype), "tt_" + name)


@functools.cache
def elementwise_kernel(name: str):
    """The ElementwiseKernel ``tt_<name>`` (one object; CuPy compiles it once per dtype)."""
    import cupy

    in_params, out_params, operation = ELEMENTWISE[name]
    return cupy.ElementwiseKernel(in_params, out_params, operation, "tt_" + name)


def row_launch(M: int, K: int) -> tuple[tuple, tuple]:
    """(grid, block) for M rows of K values: a warp a row for K <= 256, else a block of 64-1024 threads
    (about K/8, a power of 2) a row."""
    if K <= 256:
        return ((M + WARP_ROWS - 1) // WARP_ROWS,), (32, WARP_ROWS)
    threads = 64
    while threads < 1024 and threads * 8 < K:
        threads *= 2
    return (M,), (threads, 1)


def ln_chunks(M: int) -> tuple[int, int]:
    """(rows per chunk, chunks) for the column sums of layer norm's gw and gb over M rows."""
    rows = max(64, -(-M // LN_MAX_CHUNKS))
    return rows, -(-M // rows)
