"""The NumPy backend's fast kernels against the plain reference kernels they replace.

Every kernel NumpyBackend overrides for speed (row-parallel over threads, in chunks: backends/parallel.py)
must give the reference kernel's result (backends/base.py, written once against the Array API) on any
shape, dtype and thread count, including the rows where the formulas are delicate: -inf, NaN, huge
logits. Splitting is forced on small arrays by lowering the thresholds.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinytensor as tt
from tinytensor.backends import for_device, numpy_backend, parallel
from tinytensor.backends.base import Backend

FAST = for_device("cpu")
REF = Backend(np, "cpu")


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"threads{n}")
def threads(request, monkeypatch):
    """Run with n threads, splitting even tiny arrays into several blocks and chunks."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL", 0)
    monkeypatch.setattr(parallel, "CHUNK", 7)
    before = tt.get_num_threads()
    tt.set_num_threads(request.param)
    yield request.param
    tt.set_num_threads(before)


@pytest.fixture(params=["numba", "numpy"])
def kernels(request, monkeypatch):
    """The NumPy backend's compiled kernels (backends/numba_kernels.py; the test extra installs Numba),
    or its NumPy ones (what runs without Numba, or with TINYTENSOR_NUMBA=0)."""
    if request.param == "numpy":
        monkeypatch.setattr(numpy_backend, "_numba_kernels", False)
    elif numpy_backend._compiled(np.zeros(1, np.float32)) is None:
        if os.environ.get("TINYTENSOR_REQUIRE_NUMBA") == "1":  # CI: the test extra installs it
            pytest.fail("Numba's kernels are unavailable (is numba installed? TINYTENSOR_NUMBA=0?)")
        pytest.skip("Numba is not installed (pip install -e '.[test]' installs it)")
    return request.param


# the fixture holds for every drawn example (a thread count and thresholds, not state the examples change)
shapes = st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple)
dtypes = st.sampled_from([np.float32, np.float64])


def _data(shape, dtype, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _close(a, b, dtype):
    assert a.shape == b.shape and a.dtype == b.dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12  # two roundings of one formula on data of scale 3
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("kernel", ["softmax", "log_softmax"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16))
def test_softmax_kernels_and_their_gradients(threads, kernels, kernel, shape, dtype, seed):
    x, gy = _data(shape, dtype, seed), _data(shape, dtype, seed + 1)
    for axis in range(len(shape)):  # the last axis runs row-parallel, the others the plain way
        y = getattr(FAST, kernel)(x, axis)
        _close(y, getattr(REF, kernel)(x, axis), dtype)
        grad = kernel + "_grad"
        _close(getattr(FAST, grad)(y, gy, axis), getattr(REF, grad)(y, gy, axis), dtype)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16))
def test_masked_softmax(threads, kernels, shape, dtype, seed):
    s = _data(shape, dtype, seed)
    rng = np.random.default_rng(seed)
    s[rng.random(shape) < 0.3] = -np.inf  # blocked positions
    if len(shape) > 1:
        s[0] = -np.inf  # rows with nothing to attend to
    out = FAST.masked_softmax(s)
    _close(out, REF.masked_softmax(s), dtype)
    blocked = np.all(s == -np.inf, axis=-1)
    assert np.all(out[blocked] == 0) and np.allclose(out[~blocked].sum(-1), 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.integers(1, 4), max_size=2).map(tuple), L=st.integers(1, 9), S=st.integers(1, 9),
       dtype=dtypes, seed=st.integers(0, 2**16))
def test_causal_softmax(threads, kernels, batch, L, S, dtype, seed):
    """Query i sees keys j <= i only, whatever the other scores are (NaN, inf); split across threads at
    any row, so a block may start mid-matrix."""
    s = _data(batch + (L, S), dtype, seed)
    future = np.triu(np.ones((L, S), bool), 1)
    rng = np.random.default_rng(seed)
    s[..., future & (rng.random((L, S)) < 0.5)] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
    out = FAST.causal_softmax(s)
    want = REF.masked_softmax(np.where(future, -np.inf, s))
    _close(out, want, dtype)
    assert np.all(out[..., future] == 0) and np.allclose(out.sum(-1), 1)
    _close(REF.causal_softmax(s), want, dtype)


def test_masked_softmax_special_rows(threads, kernels):
    s = np.array([[1e4, 0.0, -1e4], [-np.inf] * 3, [np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0]], np.float32)
    out = FAST.masked_softmax(s)
    np.testing.assert_array_equal(out[0], [1, 0, 0])
    np.testing.assert_array_equal(out[1], [0, 0, 0])  # nothing to attend to: zeros
    assert np.isnan(out[2]).all() and np.isnan(out[3]).any()  # NaN and +inf scores are not hidden
    np.testing.assert_array_equal(FAST.masked_softmax(np.zeros((2, 0), np.float32)), np.zeros((2, 0)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16))
def test_gelu_kernels(threads, kernels, shape, dtype, seed):
    x, gy = _data(shape, dtype, seed), _data(shape, dtype, seed + 1)
    cdf = FAST.normal_cdf(x)
    _close(cdf, REF.normal_cdf(x), dtype)
    _close(FAST.gelu_grad(x, gy, cdf), REF.gelu_grad(x, gy, cdf), dtype)


def test_broadcast_and_strided_operands(threads):
    x = _data((4, 6, 5), np.float32, 0).transpose(1, 0, 2)  # not C-contiguous
    gy = _data((1, 5), np.float32, 1)  # broadcast to x's shape
    y = FAST.softmax(x, 2)
    _close(y, REF.softmax(x, 2), np.float32)
    _close(FAST.softmax_grad(y, gy, 2), REF.softmax_grad(y, gy, 2), np.float32)
    _close(FAST.gelu_grad(x, gy, FAST.normal_cdf(x)), REF.gelu_grad(x, gy, REF.normal_cdf(x)), np.float32)


def test_for_rows_covers_every_row_once_on_several_threads(threads):
    seen, where = np.zeros(1000, int), set()

    def kernel(rows):
        seen[rows] += 1
        where.add(threading.current_thread().name)

    parallel.for_rows(1000, 10**6, kernel)
    assert np.all(seen == 1)
    assert "MainThread" in where and len(where) == threads or (threads > 2 and 2 <= len(where) <= threads)


def test_for_rows_raises_a_blocks_error(threads):
    def kernel(rows):
        if rows.stop == 1000:
            raise ValueError("the last block failed")

    with pytest.raises(ValueError, match="last block"):
        parallel.for_rows(1000, 10**6, kernel)


def test_set_num_threads_checks_its_argument():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            tt.set_num_threads(bad)


@pytest.mark.parametrize("affine", ["weight and bias", "weight", "bias", "none"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 40), k=st.integers(1, 20), dtype=dtypes, seed=st.integers(0, 2**16))
def test_layer_norm_kernels(threads, kernels, affine, rows, k, dtype, seed):
    x, gy = _data((rows, k), dtype, seed), _data((rows, k), dtype, seed + 1)
    w = _data((k,), dtype, seed + 2) if "weight" in affine else None
    b = _data((k,), dtype, seed + 3) if "bias" in affine else None
    fast, ref = FAST.layer_norm(x, w, b, 1e-5), REF.layer_norm(x, w, b, 1e-5)
    for a, r in zip(fast, ref):
        _close(a, r, dtype)
    y, mu, rstd = ref
    fast = FAST.layer_norm_grad(gy, x, w, mu, rstd, w is not None, b is not None)
    ref = REF.layer_norm_grad(gy, x, w, mu, rstd, w is not None, b is not None)
    for a, r in zip(fast, ref):
        assert (a is None) == (r is None)
        if a is not None:
            _close(a, r, dtype)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), n=st.integers(1, 6),
       k=st.integers(1, 6), m=st.integers(1, 6), transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_stacked_matmul_split_across_threads(threads, batch, n, k, m, transposed, seed):
    a = _data(batch + (n, k), np.float32, seed)
    b = _data(batch + (k, m), np.float32, seed + 1)
    if transposed:  # strided operands, as attention's heads are
        a = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    np.testing.assert_array_equal(FAST.matmul(a, b), np.matmul(a, b))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(num_rows=st.integers(1, 9), index_shape=st.lists(st.integers(0, 5), max_size=2).map(tuple),
       row=st.lists(st.integers(0, 4), max_size=2).map(tuple), dtype=dtypes,
       index_dtype=st.sampled_from([np.int64, np.int32]), seed=st.integers(0, 2**16))
def test_add_rows(kernels, num_rows, index_shape, row, dtype, index_dtype, seed):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, num_rows, index_shape).astype(index_dtype)
    grad = _data(index_shape + row, dtype, seed)
    if grad.size:
        grad.reshape(-1)[0] = rng.choice([np.nan, np.inf, -np.inf, 1.0])  # non-finite: as a scatter adds
    _close(FAST.add_rows(num_rows, index, grad), REF.add_rows(num_rows, index, grad), dtype)
    strided = np.swapaxes(grad, 0, -1) if grad.ndim > 1 else grad  # a gradient that is not contiguous
    if strided is not grad and index.ndim == 1 and strided.shape[0] == index.shape[0]:
        _close(FAST.add_rows(num_rows, index, strided), REF.add_rows(num_rows, index, strided), dtype)


@pytest.mark.parametrize("shape", [(3, 0), (0, 4), (0,), (2, 0, 3)])
def test_empty_arrays(threads, shape):
    """The kernels their ops call on empty arrays (softmax's forward is not: it has nothing to do)."""
    x = np.zeros(shape, np.float32)
    axis = x.ndim - 1
    for grad in ("softmax_grad", "log_softmax_grad"):
        _close(getattr(FAST, grad)(x, x, axis), getattr(REF, grad)(x, x, axis), np.float32)
    _close(FAST.masked_softmax(x), REF.masked_softmax(x), np.float32)
    _close(FAST.normal_cdf(x), REF.normal_cdf(x), np.float32)
    _close(FAST.gelu_grad(x, x, x), REF.gelu_grad(x, x, x), np.float32)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), strided=st.booleans())
def test_rotary(shape, dtype, seed, strided):
    """The complex-number kernel (a pair as x_2i + i·x_2i+1) against the pairwise formula, on views
    whose rows are strided (attention's heads) and with inf and NaN features."""
    *lead, T, half = shape if len(shape) >= 2 else (1, *shape)
    x = _data((*lead, T, 2 * half), dtype, seed)
    x.flat[:: 7] = np.inf
    x.flat[3:: 11] = np.nan
    if strided and x.ndim >= 2:
        x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 0, -2)), 0, -2)  # last axis still contiguous
    cos, sin = np.cos(_data((T, half), dtype, seed + 1)), np.sin(_data((T, half), dtype, seed + 1))
    got, want = FAST.rotary(x, cos, sin), REF.rotary(x, cos, sin)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    _close(np.where(finite, got, 0), np.where(finite, want, 0), dtype)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, dtype=st.sampled_from([np.float16, np.float32, np.float64]), seed=st.integers(0, 2**16),
       exponent=st.sampled_from([3, 3.0, -2, -2.0, -0.5, 2, 0.5, -1, 0, 1.5, 4]))
def test_power(shape, dtype, seed, exponent):
    """x ** scalar: the products NumpyBackend writes for 3, -2 and -0.5 against pow(), within an ulp or
    two, with ±0, ±inf, NaN and overflowing bases (the other exponents are pow() itself)."""
    x = _data(shape, dtype, seed)
    x.flat[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, np.finfo(dtype).max][: x.size]
    if exponent == -0.5:
        x = np.abs(x)
    with np.errstate(all="ignore"):
        got, want = FAST.power(x, exponent), REF.power(x, exponent)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)  # inf == inf here


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_and_normal_cdf_special_values(kernels, dtype):
    """Rows with NaN, ±inf, a constant row (σ² = 0, rstd = 1/√eps), a strided view of rows, a row of one
    feature, and Φ at NaN, ±inf and beyond erf's ±4 cut: the reference's values."""
    x = _data((6, 8), dtype, 5)
    x[0, 3], x[1, 2], x[2] = np.nan, np.inf, 1.25  # a NaN row, an inf row, a constant row
    x[3, 4] = -np.inf
    w, b, gy = _data((8,), dtype, 6), _data((8,), dtype, 7), _data((6, 8), dtype, 8)
    with np.errstate(all="ignore"):
        for rows in (x, _data((6, 16), dtype, 9)[:, ::2]):  # C-contiguous, then strided
            fast, ref = FAST.layer_norm(rows, w, b, 1e-5), REF.layer_norm(rows, w, b, 1e-5)
            for a, r in zip(fast, ref):
                np.testing.assert_array_equal(np.isnan(a), np.isnan(r))
                _close(np.nan_to_num(a), np.nan_to_num(r), dtype)
            _, mu, rstd = ref
            for a, r in zip(FAST.layer_norm_grad(gy, rows, w, mu, rstd, True, True),
                            REF.layer_norm_grad(gy, rows, w, mu, rstd, True, True)):
                np.testing.assert_array_equal(np.isnan(a), np.isnan(r))
                _close(np.nan_to_num(a), np.nan_to_num(r), dtype)
        one = np.full((1, 1), 2.5, dtype)  # one feature: x̂ = 0 and g - mean(g) = 0 exactly, though rstd = 316
        _, mu, rstd = FAST.layer_norm(one, w[:1], b[:1], 1e-5)
        gx, gw, gb = FAST.layer_norm_grad(gy[:1, :1], one, w[:1], mu, rstd, True, True)
        assert gx[0, 0] == 0 and gw[0] == 0 and gb[0] == gy[0, 0]
        z = np.array([np.nan, np.inf, -np.inf, 0.0, 7.0, -7.0, 1e30, -1e-30], dtype)
        np.testing.assert_array_equal(FAST.normal_cdf(z), REF.normal_cdf(z))


@settings(max_examples=40, deadline=None)
@given(index=st.lists(st.integers(-3, 9), max_size=12), n=st.integers(0, 7),
       dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
def test_one_hot(index, n, dtype):
    """One write per row against the comparison of every index with every class: an index outside
    [0, n), negative ones too (NumPy would wrap them), gives a row of zeros."""
    index = np.array(index, np.int64)
    got, want = FAST.one_hot(index, n, dtype), REF.one_hot(index, n, dtype)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape == (len(index), n)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_special_rows(kernels, dtype):
    """Rows with NaN, +inf, -inf, all -inf, huge and tiny scores: softmax, log-softmax and masked softmax
    have the reference's NaNs where it has them and its values elsewhere."""
    inf, nan = np.inf, np.nan
    tiny = np.finfo(dtype).smallest_subnormal
    s = np.array([[1e4, 0.0, -1e4, 3.0], [-inf] * 4, [nan, 0.0, 1.0, 2.0], [inf, 0.0, 1.0, -inf],
                  [-inf, 2.0, -inf, 1.0], [inf, inf, 0.0, 0.0], [1e-30, -1e-30, 0.0, tiny]], dtype)
    with np.errstate(all="ignore"):
        pairs = [(FAST.softmax(s, 1), REF.softmax(s, 1)), (FAST.log_softmax(s, 1), REF.log_softmax(s, 1)),
                 (FAST.masked_softmax(s), REF.masked_softmax(s))]
        for got, want in pairs:
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
            finite = np.isfinite(want)
            _close(np.where(finite, got, 0), np.where(finite, want, 0), dtype)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), broadcast=st.booleans())
def test_gelu_tanh_kernels(threads, kernels, shape, dtype, seed, broadcast):
    """GELU's tanh form and its gradient (compiled passes around NumPy's tanh, or NumPy's nine and
    fifteen) against the reference, with NaN and ±inf inputs and a broadcast upstream gradient."""
    x = _data(shape, dtype, seed)
    x.flat[:3] = [np.nan, np.inf, -np.inf][: x.size]
    gy = _data(shape[-1:], dtype, seed + 1) if broadcast else _data(shape, dtype, seed + 1)
    with np.errstate(all="ignore"):
        pairs = [(FAST.gelu_tanh(x), REF.gelu_tanh(x)),
                 (FAST.gelu_tanh_grad(x, gy), REF.gelu_tanh_grad(x, gy))]
        for got, want in pairs:
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            finite = np.isfinite(want)
            np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
            _close(np.where(finite, got, 0), np.where(finite, want, 0), dtype)


def _ulps(got, exact, dtype):
    """|got - exact| in units in the last place of the exact value rounded to dtype (exact: float64)."""
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize("fn", ["exp", "tanh"])
def test_exp_and_tanh_within_ulps_of_exact_over_float32s_range(kernels, fn):
    """float32 exp and tanh (numba_kernels' vectorized loops, or NumPy's) on a dense grid over the whole
    range where the result is a normal float32, against float64's rounded to float32: within 1.5 ulp
    (NumPy's own float32 loops: 2.5 ulp for exp)."""
    lo, hi = (-87.0, 88.7) if fn == "exp" else (-10.0, 10.0)
    x = np.linspace(lo, hi, 2_000_003, dtype=np.float32)
    seam = np.float32(0.625) + np.arange(-50, 50, dtype=np.float32) * np.spacing(np.float32(0.625))  # tanh's
    x = np.concatenate([x, seam, np.geomspace(1e-30, 1, 1000, dtype=np.float32)])  # two branches meet there
    x = np.concatenate([x, -x[-1100:]])
    got = getattr(FAST, fn)(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    exact = getattr(np, fn)(x.astype(np.float64))
    bound = 1.5 if kernels == "numba" else 3.0
    assert _ulps(got, exact, np.float32).max() <= bound


@pytest.mark.parametrize("fn", ["exp", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("repeats", [1, 600], ids=["small", "large"])  # large: over the compiled path's 8K
def test_exp_and_tanh_special_values(threads, kernels, fn, dtype, repeats):
    """inf, NaN, -0.0, underflow and overflow as NumPy gives them (subnormal exps to 2 of the smallest
    subnormal), on strided, 0-d and empty arrays too."""
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-30, -1e-30, 88.72, 88.8, -87.5, -100.0, -103.9,
                  -104.5, -1e4, 1e4, 9.0, -9.0, 20.0, -20.0], dtype)
    x = np.tile(x, repeats)
    tiny, eps = np.finfo(dtype).smallest_subnormal, np.finfo(dtype).eps
    with np.errstate(all="ignore"):
        want = getattr(np, fn)(x)
        got = getattr(FAST, fn)(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_allclose(got, want, rtol=2 * eps, atol=2 * tiny)
    for a in (x[::2], x.reshape(1, -1).T[::3].T, np.array(x[5]), x[:0]):  # strided, 0-d, empty
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(getattr(FAST, fn)(a), getattr(np, fn)(a), rtol=2 * eps, atol=2 * tiny)
            assert getattr(FAST, fn)(a).shape == a.shape
    if kernels == "numba" and dtype == np.float32:  # the loops themselves, on any size, in place too
        from tinytensor.backends import numba_kernels
        out, inplace = np.empty_like(x), x.copy()
        getattr(numba_kernels, fn)(x, out)
        getattr(numba_kernels, fn + "_")(inplace)
        for a in (out, inplace):
            np.testing.assert_array_equal(np.signbit(a), np.signbit(want))
            np.testing.assert_allclose(a, want, rtol=2 * eps, atol=2 * tiny)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16), broadcast=st.booleans())
def test_relu_grad(threads, kernels, shape, dtype, seed, broadcast):
    """gy where x > 0 or x is NaN, else 0 even for an inf or NaN gy; a broadcast gy (a sum's gradient)."""
    x, gy = _data(shape, dtype, seed), _data(shape, dtype, seed + 1)
    x.flat[:4] = [np.nan, 0.0, -0.0, np.inf][: x.size]
    gy.flat[-3:] = [np.inf, np.nan, -np.inf][-gy.size:]
    if broadcast:
        gy = np.broadcast_to(gy.flat[0], shape)
    want = np.where(x <= 0, dtype(0), gy)
    np.testing.assert_array_equal(FAST.relu_grad(x, gy), want)
    np.testing.assert_array_equal(REF.relu_grad(x, gy), want)
