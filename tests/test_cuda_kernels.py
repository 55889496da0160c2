"""The CuPy backend's CUDA kernels against the reference kernels of backends/base.py, and the TF32 switch.

Each fused kernel CupyBackend runs as CUDA code of its own (backends/cuda_kernels.py) must give the
reference kernel's result on any row length (K from 1 to 4096: a warp per row up to 256, a block above),
in float32 and float64 (float16 through float32), including the rows where the formulas are delicate:
-inf everywhere, NaN, +inf, huge logits. The same tests run on two executors:

* ``cuda``: the real CupyBackend on a GPU (marked ``cuda``; skipped without a CUDA GPU and CuPy);
* ``emulated``: CupyBackend's own code with NumPy arrays in CuPy's place, and the CUDA sources compiled
  by g++ for the CPU: each CUDA thread a fiber, warp shuffles and ``__syncthreads`` barriers between
  them, a deadlock or a shuffle in a warp with exited lanes an error, every buffer fenced by guard
  values that must survive. It runs the sources' logic (indexing, launch shapes, reductions, special
  values, the arguments' order and C types) where there is no GPU; not CUDA's compiler, math library
  or memory model, which the ``cuda`` runs and the NVRTC compile below are for.

CPU tests also cover the switch ``tinytensor.backends.cuda.matmul.allow_tf32``.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import types
import warnings
import weakref

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.backends import cuda as cuda_switches
from tinytensor.backends import cuda_kernels
from tinytensor.backends.base import Backend
from tinytensor.backends.cupy_backend import CupyBackend

REF = Backend(np, "cpu")
GPU = tt.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs a CUDA GPU and CuPy")
on_gpu = [pytest.mark.cuda, needs_gpu]

# (M rows, K columns): a warp per row up to K = 256 (9 rows: a partly filled last block), a block above
ROW_SHAPES = [(1, 1), (9, 2), (3, 31), (9, 32), (2, 33), (9, 255), (9, 256), (3, 257), (2, 1000),
              (2, 1024), (1, 4096)]
# layer norm's rows; 300 rows: five chunks of partial column sums for gw and gb
LN_SHAPES = [(1, 1), (3, 7), (9, 33), (5, 257), (2, 1024), (1, 4096), (300, 40), (70, 300)]


# ---- the CPU emulator of the CUDA sources --------------------------------------------------------

_RUNTIME = r"""
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>
#include <ucontext.h>
using namespace std;

struct dim3 { unsigned int x, y, z; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  /* one block runs at a time: a static is that block's shared memory */

static inline float __int_as_float(int v) { float f; memcpy(&f, &v, sizeof f); return f; }
static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, sizeof d); return d; }

namespace emu {
const size_t STACK = 64 * 1024;
struct Barrier { int expected, arrived; long generation; };
struct Fiber { ucontext_t ctx; dim3 tid; bool done; };
static ucontext_t scheduler;
static vector<Fiber> fibers;
static vector<vector<char>> stacks;
static int current, error;  // error: 1 deadlock, 2 shuffle in a warp with exited lanes, 3 bad launch
static int schedule;  // 0: each waiting thread in turn; 1, 2: the lowest, highest thread that can go on
static long progress, releases;  // barrier arrivals, barriers passed
static Barrier block_barrier, warp_barriers[32];
static uint64_t exchange[32][32];
static function<void()> kernel;

static void yield() { swapcontext(&fibers[current].ctx, &scheduler); }
static int warp() { return (threadIdx.x + threadIdx.y * blockDim.x) / 32; }
static void wait(Barrier& b) {
    const long g = b.generation;
    ++progress;
    if (++b.arrived == b.expected) { b.arrived = 0; ++b.generation; ++releases; return; }
    while (b.generation == g) yield();
}
static void drop(Barrier& b) {  // an exited thread no longer holds a barrier up
    --b.expected;
    ++progress;
    if (b.arrived > 0 && b.arrived == b.expected) { b.arrived = 0; ++b.generation; ++releases; }
}
static void body() {
    kernel();
    fibers[current].done = true;
    drop(block_barrier);
    drop(warp_barriers[warp()]);
}
static int run(unsigned gx, unsigned gy, unsigned bx, unsigned by, function<void()> k) {
    const unsigned n = bx * by;
    if (!gx || !gy || gy > 65535 || !bx || !by || bx > 1024 || n > 1024 || n % 32) return 3;
    kernel = k;
    error = 0;
    gridDim = {gx, gy, 1};
    blockDim = {bx, by, 1};
    if (stacks.size() < n) stacks.resize(n, vector<char>(STACK));
    fibers.assign(n, Fiber{});
    for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, 0};
        block_barrier = {(int)n, 0, 0};
        for (unsigned w = 0; w < n / 32; ++w) warp_barriers[w] = {32, 0, 0};
        for (unsigned t = 0; t < n; ++t) {
            Fiber& f = fibers[t];
            f.tid = {t % bx, t / bx, 0};
            f.done = false;
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = stacks[t].data();
            f.ctx.uc_stack.ss_size = STACK;
            f.ctx.uc_link = &scheduler;
            makecontext(&f.ctx, body, 0);
        }
        for (unsigned left = n; left;) {
            const long before = progress, released = releases;
            unsigned finished = 0;
            for (unsigned k = 0; k < n; ++k) {
                const unsigned t = schedule == 2 ? n - 1 - k : k;
                if (fibers[t].done) continue;
                current = t;
                threadIdx = fibers[t].tid;
                swapcontext(&scheduler, &fibers[t].ctx);  // until it waits at a barrier, or ends
                if (error) return error;
                finished += fibers[t].done;
                // schedules 1 and 2 go back to their first thread whenever one may go on: a warp runs
                // ahead of the others as far as the barriers let it
                if (schedule && (releases != released || fibers[t].done)) break;
            }
            left -= finished;
            if (!finished && progress == before) return 1;  // every thread waits for another
        }
    }
    return 0;
}
}  // namespace emu

extern "C" void set_schedule(int s) { emu::schedule = s; }

static void __syncthreads() { emu::wait(emu::block_barrier); }

template <class V> static V __shfl_xor_sync(unsigned mask, V v, int lane_mask) {
    static_assert(sizeof(V) <= 8, "a 32- or 64-bit value");
    const int w = emu::warp(), lane = (threadIdx.x + threadIdx.y * blockDim.x) % 32;
    if (mask != 0xffffffffu || emu::warp_barriers[w].expected != 32) { emu::error = 2; emu::yield(); }
    memcpy(&emu::exchange[w][lane], &v, sizeof v);
    emu::wait(emu::warp_barriers[w]);
    V r;
    memcpy(&r, &emu::exchange[w][lane ^ lane_mask], sizeof r);
    emu::wait(emu::warp_barriers[w]);
    return r;
}
"""

_SIGNATURE = re.compile(r'extern "C" __global__ void (tt_\w+)\(([^)]*)\)')


def _params(text: str) -> list[tuple[str, str]]:
    """[(C type, name)] of a parameter list such as 'const T* __restrict__ x, long long M'."""
    out = []
    for p in text.split(","):
        words = p.replace("__restrict__", "").split()
        out.append((" ".join(words[:-1]), words[-1]))
    return out


def _emulator_source(ctype: str) -> str:
    """The runtime, the row kernels for ``ctype`` as they are, a launcher per kernel, and a loop over
    each element-wise body."""
    parts = [_RUNTIME, cuda_kernels.row_source(ctype)]
    for name, params in _SIGNATURE.findall(cuda_kernels.ROWS_SOURCE):
        args = ", ".join(f"*({t}*)a[{i}]" for i, (t, _) in enumerate(_params(params)))
        parts.append(f'extern "C" int launch_{name}(unsigned gx, unsigned gy, unsigned bx, unsigned by, '
                     f'void** a) {{ return emu::run(gx, gy, bx, by, [=] {{ {name}({args}); }}); }}')
    for name, (ins, outs, operation) in cuda_kernels.ELEMENTWISE.items():
        ps = [(t, n, True) for t, n in _params(ins)] + [(t, n, False) for t, n in _params(outs)]
        decl = ", ".join(f"{'const ' if c else ''}{t}* {n}_" for t, n, c in ps)
        refs = " ".join(f"{'const ' if c else ''}{t}& {n} = {n}_[i];" for t, n, c in ps)
        parts.append(f'extern "C" void ew_{name}({decl}, long long n) {{ for (long long i = 0; i < n; ++i) '
                     f'{{ {refs} {operation}; }} }}')
    return "\n".join(parts)


class _EmulatedRawKernel:
    """A stand-in for cupy.RawKernel: checks the arguments against the kernel's C signature (CuPy does
    not), fences each buffer with guard values and runs the emulated launch."""

    PAD = 64

    def __init__(self, lib, name: str, ctype: str):
        self.fn = getattr(lib, f"launch_tt_{name}")
        self.fn.restype = ctypes.c_int
        (params,) = [p for n, p in _SIGNATURE.findall(cuda_kernels.ROWS_SOURCE) if n == f"tt_{name}"]
        self.params, self.name = _params(params), name
        self.dtype = np.dtype({"float": np.float32, "double": np.float64}[ctype])

    def __call__(self, grid, block, args):
        assert len(args) == len(self.params), f"{self.name}: {len(args)} arguments for {self.params}"
        grid, block = tuple(grid) + (1,) * (3 - len(grid)), tuple(block) + (1,) * (3 - len(block))
        assert grid[2] == block[2] == 1
        slots, keep, fenced = (ctypes.c_void_p * len(args))(), [], {}  # id(array) -> (array, its buffer)
        for i, ((ctype, pname), a) in enumerate(zip(self.params, args)):
            if ctype.endswith("*"):
                assert isinstance(a, np.ndarray) and a.dtype == self.dtype and a.flags.c_contiguous, \
                    f"{self.name}: {pname} must be a C-contiguous {self.dtype} array, got {a!r:.80}"
                if id(a) not in fenced:  # an array passed twice (a pointer the kernel skips) is one buffer
                    buf = np.full(a.size + 2 * self.PAD, 1.25e30, a.dtype)
                    buf[self.PAD:self.PAD + a.size] = a.reshape(-1)
                    fenced[id(a)] = (a, buf)
                value = ctypes.c_void_p(fenced[id(a)][1].ctypes.data + self.PAD * a.itemsize)
            elif ctype == "bool":
                assert type(a) is bool, f"{self.name}: {pname} must be a Python bool, got {a!r}"
                value = ctypes.c_bool(a)
            elif ctype == "long long":
                assert type(a) is int, f"{self.name}: {pname} must be a Python int, got {a!r}"
                value = ctypes.c_longlong(a)
            else:
                assert ctype == "double" and type(a) is float, f"{self.name}: {pname} ({ctype}) got {a!r}"
                value = ctypes.c_double(a)
            keep.append(value)
            slots[i] = ctypes.cast(ctypes.pointer(value), ctypes.c_void_p)
        rc = self.fn(*(ctypes.c_uint(v) for v in (grid[0], grid[1], block[0], block[1])), slots)
        assert rc == 0, f"{self.name}: " + {1: "deadlock", 2: "a shuffle in a warp with exited lanes",
                                            3: f"a bad launch {grid} {block}"}[rc]
        for a, buf in fenced.values():
            assert (buf[:self.PAD] == 1.25e30).all() and (buf[self.PAD + a.size:] == 1.25e30).all(), \
                f"{self.name} wrote outside an array"
            a.reshape(-1)[...] = buf[self.PAD:self.PAD + a.size]


class _EmulatedElementwise:
    """A stand-in for cupy.ElementwiseKernel: broadcasts as CuPy does, one loop over the body."""

    def __init__(self, libs, name: str):
        ins, outs, _ = cuda_kernels.ELEMENTWISE[name]
        self.libs, self.name, self.ins, (self.out,) = libs, name, _params(ins), _params(outs)

    def __call__(self, *arrays):
        typed = [a for (t, _), a in zip(self.ins, arrays) if t == "T"]
        dtype = typed[0].dtype
        assert all(a.dtype == dtype for a in typed), f"{self.name}: T must be one dtype"
        run_as = dtype
        if dtype.kind in "iu" and dtype.itemsize in (4, 8) and self.name == "where":
            run_as = np.dtype(np.float32 if dtype.itemsize == 4 else np.float64)  # a copy of the bits
        ctype = {np.float32: "float", np.float64: "double"}.get(run_as.type)
        if ctype is None:
            raise NotImplementedError(f"emulated {self.name}: float32 and float64 only, got {dtype}")
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat = [np.ascontiguousarray(np.broadcast_to(a, shape)) for a in arrays]
        flat = [f.view(run_as) if t == "T" else f for (t, _), f in zip(self.ins, flat)]
        assert all(f.dtype == np.bool_ for (t, _), f in zip(self.ins, flat) if t == "bool")
        out = np.empty(shape, run_as)
        ptrs = [ctypes.c_void_p(a.ctypes.data) for a in (*flat, out)]
        getattr(self.libs[ctype], f"ew_{self.name}")(*ptrs, ctypes.c_longlong(out.size))
        return out.view(dtype)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The two emulator libraries (float, double), built once with g++."""
    if shutil.which("g++") is None:
        pytest.skip("needs g++ to run the CUDA sources on the CPU")
    libs = {}
    for ctype in cuda_kernels.CTYPES.values():
        src = tmp_path_factory.mktemp("emu") / f"kernels_{ctype}.cpp"
        src.write_text(_emulator_source(ctype))
        so = src.with_suffix(".so")
        proc = subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-Wl,-Bsymbolic", str(src),
                               "-o", str(so)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        libs[ctype] = ctypes.CDLL(str(so))
    return libs


class Executor:
    """A CupyBackend and how its arrays go to and from the host."""

    def __init__(self, backend, to_device, to_host):
        self.backend, self.to_device, self.to_host = backend, to_device, to_host

    def run(self, kernel: str, *host_args, **kwargs):
        """backend.<kernel>(*args) on device copies of the host arrays; the results on the host, and the
        inputs checked unchanged."""
        args = [self.to_device(a) if isinstance(a, np.ndarray) else a for a in host_args]
        out = getattr(self.backend, kernel)(*args, **kwargs)
        for a, d in zip(host_args, args):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(self.to_host(d), a, err_msg=f"{kernel} changed an input")
        if isinstance(out, tuple):
            return tuple(None if o is None else self.to_host(o) for o in out)
        return self.to_host(out)


@pytest.fixture(params=["emulated", pytest.param("cuda", marks=on_gpu)])
def fast(request, monkeypatch):
    if request.param == "cuda":
        backend = tt.backends.for_device("cuda:0")
        return Executor(backend, backend.from_host, backend.cupy.asnumpy)
    return _emulated(request.getfixturevalue("emulator"), monkeypatch)


def _emulated(libs, monkeypatch) -> Executor:
    monkeypatch.setattr(cuda_kernels, "row_kernel", lambda name, ctype: _EmulatedRawKernel(libs[ctype], name,
                                                                                          ctype))
    monkeypatch.setattr(cuda_kernels, "elementwise_kernel", lambda name: _EmulatedElementwise(libs, name))
    backend = CupyBackend.__new__(CupyBackend)  # CuPy's part played by NumPy: no GPU, no CuPy
    Backend.__init__(backend, np, "cpu")
    backend.cupy, backend.index, backend._tf32_capable = np, 0, False
    return Executor(backend, np.array, np.asarray)


# ---- helpers -------------------------------------------------------------------------------------

def _data(shape, dtype, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _close(a, b, dtype, tol=None):
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    tol = tol or (2e-5 if dtype == np.float32 else 1e-12)  # two roundings of one formula; NaN == NaN
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ---- row kernels ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", ["softmax", "log_softmax"])
def test_softmax_kernels_and_their_gradients(fast, kernel, dtype):
    for i, shape in enumerate(ROW_SHAPES):
        x, gy = _data(shape, dtype, i), _data(shape, dtype, 100 + i)
        y = fast.run(kernel, x, -1)
        _close(y, getattr(REF, kernel)(x, -1), dtype)
        _close(fast.run(kernel + "_grad", y, gy, 1), getattr(REF, kernel + "_grad")(y, gy, 1), dtype)
    x3 = _data((2, 3, 40), dtype, 7)  # more leading dims are more rows
    _close(fast.run(kernel, x3, 2), getattr(REF, kernel)(x3, 2), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_softmax(fast, dtype):
    for i, shape in enumerate(ROW_SHAPES):
        s = _data(shape, dtype, i)
        rng = np.random.default_rng(i)
        s[rng.random(shape) < 0.3] = -np.inf  # blocked positions
        s[0] = -np.inf  # a query with nothing to attend to
        out = fast.run("masked_softmax", s)
        _close(out, REF.masked_softmax(s), dtype)
        blocked = np.all(s == -np.inf, axis=-1)
        assert np.all(out[blocked] == 0) and np.allclose(out[~blocked].sum(-1), 1)


@pytest.mark.parametrize("K", [5, 300])  # a warp and a block per row
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_rows(fast, dtype, K):
    """-inf everywhere, a NaN, +inf, huge logits, one finite value among -inf: the reference's answers
    (NaN where it gives NaN, zeros for masked_softmax's empty rows)."""
    inf, nan = np.inf, np.nan
    rows = np.zeros((7, K), dtype)
    rows[0] = -inf
    rows[1, 1] = nan
    rows[2, 2] = inf
    rows[3, :2] = [1e4, -1e4]
    rows[4] = -inf
    rows[4, -1] = 3.0
    rows[5] = nan
    rows[6] = np.linspace(-80, 80, K)
    gy = _data(rows.shape, dtype, 1)
    with np.errstate(invalid="ignore"):
        for kernel in ("softmax", "log_softmax"):
            y = fast.run(kernel, rows, -1)
            _close(y, getattr(REF, kernel)(rows, -1), dtype)
            grad = kernel + "_grad"
            _close(fast.run(grad, y, gy, -1), getattr(REF, grad)(y, gy, -1), dtype)
        p = fast.run("masked_softmax", rows)
        _close(p, REF.masked_softmax(rows), dtype)
    np.testing.assert_array_equal(p[0], 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm_and_its_gradient(fast, dtype, affine):
    for i, (M, K) in enumerate(LN_SHAPES):
        x = _data((M, K), dtype, i) + 2.0
        w = None if affine == "none" else _data((K,), dtype, 50 + i)
        b = _data((K,), dtype, 60 + i) if affine == "both" else None
        y, mu, rstd = fast.run("layer_norm", x, w, b, 1e-5)
        ry, rmu, rrstd = REF.layer_norm(x, w, b, 1e-5)
        for got, want in ((y, ry), (mu, rmu), (rstd, rrstd)):
            _close(got, want, dtype, 1e-4 if dtype == np.float32 else None)
        gy = _data((M, K), dtype, 70 + i)
        for need_w, need_b in ((w is not None, b is not None), (True, True), (False, False)):
            got = fast.run("layer_norm_grad", gy, x, w, rmu, rrstd, need_w, need_b)
            want = REF.layer_norm_grad(gy, x, w, rmu, rrstd, need_w, need_b)
            for g, r in zip(got, want):
                assert (g is None) == (r is None)
                if r is not None:  # column sums over up to 1000 rows: float32 rounds a little more
                    _close(g, r, dtype, 1e-4 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("schedule", [1, 2])
def test_block_reductions_when_one_warp_runs_ahead(emulator, monkeypatch, schedule):
    """Under schedules that let the lowest (or highest) warp run as far as the barriers allow, a block's
    reductions still give the reference results: shared memory is not reused before every warp has
    read it."""
    fast = _emulated(emulator, monkeypatch)
    for lib in emulator.values():
        lib.set_schedule(schedule)
    try:
        x, gy = _data((2, 1000), np.float32, 0), _data((2, 1000), np.float32, 1)
        for kernel in ("softmax", "log_softmax"):
            y, grad = fast.run(kernel, x, -1), kernel + "_grad"
            _close(y, getattr(REF, kernel)(x, -1), np.float32)
            _close(fast.run(grad, y, gy, -1), getattr(REF, grad)(y, gy, -1), np.float32)
        _close(fast.run("masked_softmax", x), REF.masked_softmax(x), np.float32)
        w = _data((1000,), np.float32, 2)
        for got, want in zip(fast.run("layer_norm", x, w, w, 1e-5), REF.layer_norm(x, w, w, 1e-5)):
            _close(got, want, np.float32, 1e-4)
        _, mu, rstd = REF.layer_norm(x, w, w, 1e-5)
        for got, want in zip(fast.run("layer_norm_grad", gy, x, w, mu, rstd, True, True),
                             REF.layer_norm_grad(gy, x, w, mu, rstd, True, True)):
            _close(got, want, np.float32, 1e-4)
    finally:
        for lib in emulator.values():
            lib.set_schedule(0)


# ---- element-wise kernels ------------------------------------------------------------------------

_SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, 0.5, -0.5, 5.0, -5.0, 30.0, -30.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_normal_cdf_and_gelu_grad(fast, dtype):
    x = np.concatenate([_data((3, 40), dtype, 0).reshape(-1), np.array(_SPECIAL, dtype)]).reshape(4, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        _close(fast.run("erf", x), REF.erf(x), dtype, 1e-6 if dtype == np.float32 else 1e-13)
        cdf = fast.run("normal_cdf", x)
        _close(cdf, REF.normal_cdf(x), dtype, 1e-6 if dtype == np.float32 else 1e-13)
        for gy in (_data(x.shape, dtype, 1), _data((1, x.shape[1]), dtype, 2)):  # gy broadcast too
            _close(fast.run("gelu_grad", x, gy, cdf), REF.gelu_grad(x, gy, cdf), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_copies_the_bits(fast, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 70)).astype(dtype)
    a[0, :4] = [np.nan, -0.0, np.inf, -np.inf]
    b = np.array(-0.0, dtype)
    cond = rng.random((70,)) < 0.5  # broadcast over the rows
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for c, x, y in ((cond, a, b), (cond, b, a), (np.ones((5, 70), bool), a, a[::-1].copy())):
        out = fast.run("where", c, x, y)
        np.testing.assert_array_equal(out.view(bits), np.where(c, x, y).view(bits))


# ---- what falls back, and float16 ----------------------------------------------------------------

def test_other_axes_layouts_and_dtypes_give_the_reference_result(fast):
    x = _data((6, 5), np.float32, 0)
    _close(fast.run("softmax", x, 0), REF.softmax(x, 0), np.float32)  # another axis: the reference
    xt = np.asfortranarray(x)  # not C-contiguous: copied into rows
    _close(fast.run("log_softmax", xt, 1), REF.log_softmax(x, 1), np.float32)
    gy = _data((5,), np.float32, 1)  # broadcast upstream gradient
    y = REF.softmax(x, 1)
    _close(fast.run("softmax_grad", y, gy, 1), REF.softmax_grad(y, gy, 1), np.float32)
    y64 = _data((6, 5), np.float64, 2)  # mixed dtypes: the reference's promotion
    _close(fast.run("softmax_grad", y64, y, 1), REF.softmax_grad(y64, y, 1), np.float64)
    for shape in ((0, 5), (4, 0)):
        assert fast.run("masked_softmax", np.zeros(shape, np.float32)).shape == shape
        assert fast.run("softmax", np.zeros(shape, np.float32), 1).shape == shape
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(fast.run("where", ints > 2, ints, -ints), np.where(ints > 2, ints, -ints))


def test_float16_computes_in_float32(fast):
    x16 = _data((9, 300), np.float16, 0)
    x32 = x16.astype(np.float32)
    for kernel in ("softmax", "log_softmax"):
        got = fast.run(kernel, x16, 1)
        assert got.dtype == np.float16
        _close(got, getattr(REF, kernel)(x32, 1).astype(np.float16), np.float16, 2e-3)
    _close(fast.run("masked_softmax", x16), REF.masked_softmax(x32).astype(np.float16), np.float16, 2e-3)
    y, mu, rstd = fast.run("layer_norm", x16, None, None, 1e-5)
    _close(y, REF.layer_norm(x32, None, None, 1e-5)[0].astype(np.float16), np.float16, 4e-3)
    _close(fast.run("normal_cdf", x16), REF.normal_cdf(x32).astype(np.float16), np.float16, 2e-3)


# ---- on the GPU only ------------------------------------------------------------------------------

@pytest.mark.cuda
@needs_gpu
def test_no_kernel_waits_for_the_device():
    """Every fused kernel runs without a host synchronisation (CuPy's detector raises on one)."""
    import cupyx

    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no synchronisation detector (cupyx.allow_synchronize)")
    bk = tt.backends.for_device("cuda:0")
    cp = bk.cupy
    x = cp.asarray(_data((64, 512), np.float32, 0))
    w, gy = cp.ones(512, cp.float32), cp.asarray(_data((64, 512), np.float32, 1))
    bk.layer_norm(x, w, w, 1e-5)  # compile outside the check
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the detector is deprecated, and still works
        with cupyx.allow_synchronize(False):
            for k in ("softmax", "log_softmax"):
                y = getattr(bk, k)(x, -1)
                getattr(bk, k + "_grad")(y, gy, -1)
            bk.masked_softmax(x)
            _, mu, rstd = bk.layer_norm(x, w, w, 1e-5)
            bk.layer_norm_grad(gy, x, w, mu, rstd, True, True)
            cdf = bk.normal_cdf(x)
            bk.gelu_grad(x, gy, cdf)
            bk.erf(x)
            bk.where(x > 0, x, gy)
    bk.synchronize()


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("batched", [False, True])
def test_tf32_switch_changes_float32_matmuls_on_the_gpu(batched, tf32_restored):
    """1 + 2^-12 is exact in float32 and rounds to 1 in TF32 (10 bits of mantissa): a sum of 1024 such
    products is 1024.25 in float32 and 1024 with TF32. Needs compute capability 8.0+."""
    bk = tt.backends.for_device("cuda:0")
    if not bk._tf32_capable:
        pytest.skip("TF32 needs compute capability 8.0 or later")
    shape = (4, 256, 1024) if batched else (256, 1024)
    a = tt.full(shape, 1 + 2**-12, dtype=tt.float32, device="cuda")
    b = tt.ones(shape[:-2] + (1024, 64), dtype=tt.float32, device="cuda")
    exact = (a @ b).numpy()
    assert np.all(exact == 1024.25)
    cuda_switches.matmul.allow_tf32 = True
    assert np.all((a @ b).numpy() != 1024.25), "TF32 was not used"
    cuda_switches.matmul.allow_tf32 = False
    assert np.all((a @ b).numpy() == 1024.25), "TF32 was not switched off again"


# ---- the sources compile with NVRTC (CuPy's compiler; no GPU needed) ------------------------------

def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as e:  # no CuPy, or no NVRTC library
        pytest.skip(f"needs CuPy and its NVRTC library ({type(e).__name__})")
    return nvrtc


def _compile(nvrtc, source: str, arch: str) -> None:
    prog = nvrtc.createProgram(source, "tt_kernels.cu", [], [])
    try:  # the options CuPy adds to every compile
        nvrtc.compileProgram(prog, [f"--gpu-architecture={arch}", "-ftz=true",
                                    "--device-as-default-execution-space"])
    except Exception as e:
        raise AssertionError(f"{e}\n{nvrtc.getProgramLog(prog)}") from None


@pytest.mark.cuda
@pytest.mark.parametrize("arch", ["sm_75", "sm_90"])
def test_the_kernel_sources_compile_with_nvrtc(arch):
    nvrtc = _nvrtc()
    for ctype in cuda_kernels.CTYPES.values():
        _compile(nvrtc, cuda_kernels.row_source(ctype), arch)
        for name, (ins, outs, operation) in cuda_kernels.ELEMENTWISE.items():
            # each body inside a loop like the one CuPy writes around it, T typedef'd as CuPy does
            params = [(t, n, True) for t, n in _params(ins)] + [(t, n, False) for t, n in _params(outs)]
            decl = ", ".join(f"{'const ' if c else ''}{t}* {n}_" for t, n, c in params)
            refs = " ".join(f"{'const ' if c else ''}{t}& {n} = {n}_[i];" for t, n, c in params)
            _compile(nvrtc, f'typedef {ctype} T;\nextern "C" __global__ void k_{name}({decl}, long long n) '
                            f'{{ long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; '
                            f'if (i < n) {{ {refs} {operation}; }} }}', arch)


# ---- the TF32 switch (any machine) ----------------------------------------------------------------

@pytest.fixture
def tf32_restored():
    before = cuda_switches.matmul.allow_tf32
    yield
    cuda_switches.matmul.allow_tf32 = before


def test_allow_tf32_is_off_by_default_and_imports_no_cupy():
    code = textwrap.dedent("""
        import sys
        import tinytensor as tt
        before = "cupy" in sys.modules
        print(tt.backends.cuda.matmul.allow_tf32)
        tt.backends.cuda.matmul.allow_tf32 = True
        print(tt.backends.cuda.matmul.allow_tf32, ("cupy" in sys.modules) == before)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]


def test_allow_tf32_is_settable_and_refuses_what_is_not_a_bool(tf32_restored):
    m = tt.backends.cuda.matmul
    assert m is cuda_switches.matmul
    m.allow_tf32 = True
    assert m.allow_tf32 is True and "allow_tf32=True" in repr(m)
    m.allow_tf32 = False
    assert m.allow_tf32 is False
    for wrong in (1, 0, "True", None, np.bool_(True)):
        with pytest.raises(TypeError, match=r"allow_tf32 must be True or False, got "):
            m.allow_tf32 = wrong
    assert m.allow_tf32 is False
    with pytest.raises(AttributeError, match="no setting 'allow_fp16'"):
        m.allow_fp16 = True


def test_allow_tf32_leaves_cpu_matmuls_alone(tf32_restored):
    a, b = tt.randn(64, 300), tt.randn(300, 50)
    before = (a @ b).numpy()
    tt.backends.cuda.matmul.allow_tf32 = True
    np.testing.assert_array_equal((a @ b).numpy(), before)


def test_a_backend_hears_of_every_change(tf32_restored, monkeypatch):
    monkeypatch.setattr(cuda_switches, "_watchers", weakref.WeakSet())
    class Listener:
        def __init__(self):
            self.calls = 0

        def _on_tf32_change(self):
            self.calls += 1

    listener = Listener()
    cuda_switches.watch(listener)
    cuda_switches.matmul.allow_tf32 = True
    cuda_switches.matmul.allow_tf32 = False
    assert listener.calls == 2
    cuda_switches.matmul.allow_tf32 = True
    late = Listener()
    cuda_switches.watch(late)  # watching while TF32 is allowed: told at once
    assert late.calls == 1


def test_the_switch_reaches_cublas_on_the_next_matmul(tf32_restored, monkeypatch):
    """CupyBackend's part, with CuPy's pieces recorded: on a matmul after a change it sets CuPy's float32
    compute type and this handle's cuBLAS math mode, once per handle; below compute capability 8.0,
    nothing."""
    monkeypatch.setattr(cuda_switches, "_watchers", weakref.WeakSet())  # a live GPU backend sits this out
    calls, handle = [], [101]
    cublas = types.SimpleNamespace(setMathMode=lambda h, mode: calls.append(("math mode", h, mode)))
    linalg = types.SimpleNamespace(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7,
                                   set_compute_type=lambda dt, ct: calls.append(("compute type", dt, ct)))
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs", types.SimpleNamespace(cublas=cublas))
    monkeypatch.setitem(sys.modules, "cupy._core", types.SimpleNamespace(_routines_linalg=linalg))
    backend = CupyBackend.__new__(CupyBackend)
    Backend.__init__(backend, np, "cpu")
    backend.cupy = types.SimpleNamespace(float32=np.float32, einsum=np.einsum, cuda=types.SimpleNamespace(
        device=types.SimpleNamespace(get_cublas_handle=lambda: handle[0])))
    backend._tf32_capable, backend._tf32_local = True, threading.local()
    a = np.ones((2, 3), np.float32)

    backend.matmul(a, a.T)
    assert calls == []  # off, as a new handle is
    cuda_switches.matmul.allow_tf32 = True
    backend.matmul(a, a.T)
    backend.einsum("ij,kj->ik", a, a)
    assert calls == [("compute type", np.float32, 7), ("math mode", 101, 3)]
    handle[0] = 202  # another thread's (or device's) handle
    backend.matmul(a, a.T)
    assert calls[-1] == ("math mode", 202, 3) and len(calls) == 4
    cuda_switches.matmul.allow_tf32 = False
    np.testing.assert_array_equal(backend.matmul(a, a.T), a @ a.T)
    assert calls[-2:] == [("compute type", np.float32, 1), ("math mode", 202, 0)]
    backend._tf32_capable = False
    cuda_switches.matmul.allow_tf32 = True
    backend.matmul(a, a.T)
    assert len(calls) == 6
