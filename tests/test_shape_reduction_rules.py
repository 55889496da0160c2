"""Reductions, shape ops, indexing and the nn ops on the inputs the differential fuzzer found giving a
different answer from PyTorch's: var/std's fused gradient, amax/amin's PyTorch formula, zero-width
embeddings, out-of-range slices and None in assignments on the strict device, repeated or missing dims,
dtype promotion in cat/stack, dropout's dtype and dim=() in reductions. PyTorch is the reference."""
import warnings

import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
from tinytensor.autograd import gradcheck, gradgradcheck

torch = require_torch()
F = torch.nn.functional
inf, nan = float("inf"), float("nan")


def _t(values, device, dtype=tt.float64, requires_grad=False):
    return tt.tensor(np.asarray(values, dtype=dtype.name), dtype=dtype, device=device,
                     requires_grad=requires_grad)


def _grad_both(fn_tt, fn_torch, x, upstream, device):
    """(value, x.grad) after fn(x).backward(upstream), in tinytensor (on device) and in PyTorch."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        a = _t(x, device, requires_grad=True)
        ya = fn_tt(a)
        ya.backward(_t(np.broadcast_to(upstream, ya.shape), device))
        b = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
        yb = fn_torch(b)
        yb.backward(torch.tensor(np.broadcast_to(np.asarray(upstream, dtype=np.float64), yb.shape)))
    return (ya.numpy(), a.grad.numpy()), (yb.detach().numpy(), b.grad.numpy())


def _same(got, want):
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)


def _raises_both(call_tt, call_torch):
    with pytest.raises(Exception) as theirs:
        call_torch()
    with pytest.raises(Exception) as ours:
        call_tt()
    return theirs.value, ours.value


# ---- A2: var and std, one fused Function ---------------------------------------------------------

X3 = [[-1.76], [2.30], [-0.066]]


@pytest.mark.parametrize("name, kw, x, up", [
    # an inf upstream gradient: ±inf as PyTorch (composed, inf - inf gave NaN)
    ("inf_up", dict(dim=None, keepdim=True, correction=1), X3, inf),
    ("inf_up_dim", dict(dim=0, keepdim=False, correction=1), X3, -inf),
    ("nan_up", dict(dim=(0, 1), correction=0), X3, nan),
    # a single element: x - mean = 0, so an inf upstream gives NaN (composed gave 0)
    ("single_0d", dict(dim=0, correction=0), 1.5, -inf),
    ("single_1", dict(dim=0, correction=0), [1.5], inf),
    ("single_finite", dict(dim=0, correction=0), [1.5], 2.0),
    # no degree of freedom left (n <= correction): every element vs listed dims, as PyTorch's formula
    ("n_eq_c_full", dict(correction=1), [2.0], 1.0),
    ("n_lt_c_full", dict(correction=3), [2.0, 3.0], 1.0),
    ("n_eq_c_dim", dict(dim=1, correction=1), [[2.0], [3.0]], 1.0),
    ("n_lt_c_dim", dict(dim=1, correction=3), [[2.0, 1.0], [3.0, 3.0]], 1.0),
    ("0d_c1", dict(correction=1), 2.0, 1.0),
    ("0d_c2_dim", dict(dim=0, correction=2), 2.0, 1.0),
    ("empty_dim", dict(dim=1, correction=1), np.zeros((2, 0)), 1.0),
    ("plain", dict(dim=1, correction=1, keepdim=True), [[1.0, 2.0, 4.0], [0.5, -3.0, 2.0]], 0.7),
])
def test_var_gradient_is_the_fused_formula_as_pytorch(device, name, kw, x, up):
    got, want = _grad_both(lambda a: tt.var(a, **kw), lambda b: torch.var(b, **kw), x, up, device)
    _same(got, want)


@pytest.mark.parametrize("name, kw, x, up", [
    ("var_0", dict(dim=1, correction=1), [[2.0, 2.0], [3.0, 4.0]], inf),  # √ at 0: gradient 0
    ("var_0_c0", dict(dim=1, correction=0), [[2.0, 2.0], [3.0, 4.0]], -inf),
    ("0d", dict(correction=0), 2.0, inf),
    ("single", dict(correction=0), [2.0], -inf),
    ("n_eq_c", dict(dim=1, correction=1), [[2.0], [3.0]], 1.0),
    ("n_lt_c", dict(dim=1, correction=2), [[2.0], [3.0]], 1.0),
    ("inf_up", dict(dim=None, correction=1), X3, inf),
    ("plain", dict(dim=0, correction=1), [[1.0, 2.0], [4.0, -1.0], [0.5, 0.5]], 0.3),
])
def test_std_gradient_as_pytorch_also_where_var_is_zero(device, name, kw, x, up):
    got, want = _grad_both(lambda a: tt.std(a, **kw), lambda b: torch.std(b, **kw), x, up, device)
    _same(got, want)


@pytest.mark.parametrize("name, kw, x, up", [
    ("zero_vector", dict(p=2), [0.0, 0.0, 0.0], 1.0),  # the gradient of ‖x‖ at 0 is 0 (not 0/0)
    ("zero_row", dict(p=2, dim=1), [[0.0, 0.0], [3.0, 4.0]], 0.5),
    ("zero_row_p3", dict(p=3, dim=1, keepdim=True), [[0.0, 0.0], [1.0, -2.0]], 1.0),
    ("fro", dict(p="fro"), [[1.0, -2.0], [0.5, 3.0]], 1.0),
    ("p1_with_zero", dict(p=1), [0.0, -2.0, 1.0], 1.0),
    ("inf", dict(p=float("inf"), dim=0), [[1.0, -4.0], [-3.0, 2.0]], 1.0),
    ("unbiased_false", None, [[1.0, 2.0, 4.0], [0.5, -3.0, 2.0]], 1.0),
])
def test_norm_and_unbiased_as_pytorch(device, name, kw, x, up):
    if kw is None:  # PyTorch's older keyword: var(unbiased=False) is correction 0
        got, want = _grad_both(lambda a: a.var(1, unbiased=False), lambda b: b.var(1, unbiased=False),
                               x, up, device)
    else:
        got, want = _grad_both(lambda a: a.norm(**kw), lambda b: b.norm(**kw), x, up, device)
    _same(got, want)


@pytest.mark.parametrize("kw", [dict(dim=None, correction=1), dict(dim=1, correction=0, keepdim=True),
                                dict(dim=(0, 2), correction=1), dict(dim=-2, correction=2)])
def test_var_and_std_have_exact_second_derivatives(device, kw):
    rng = np.random.default_rng(0)
    x = tt.tensor(rng.standard_normal((3, 4, 2)), device=device, requires_grad=True)
    assert gradcheck(lambda a: tt.var(a, **kw), [x])
    assert gradgradcheck(lambda a: tt.var(a, **kw), [x])
    assert gradgradcheck(lambda a: tt.std(a, **kw), [x])


def test_var_keeps_float32_and_gives_nan_or_inf_without_degrees_of_freedom(device):
    x = tt.tensor(np.array([[1.0, 2.0], [3.0, 3.0]], "float32"), device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = tt.var(x, dim=1, correction=3)
        want = torch.var(torch.tensor(x.numpy()), dim=1, correction=3)
    assert y.dtype is tt.float32
    np.testing.assert_array_equal(y.numpy(), want.numpy())  # [inf, nan]


# ---- A3: amax/amin multiply as PyTorch's formula; max/min without dim select --------------------

@pytest.mark.parametrize("name, fn, x, up", [
    ("losers_inf", lambda m, a: m.amax(a, 0), [[1.0, 2.0], [3.0, 0.0]], inf),
    ("ties", lambda m, a: m.amax(a), [3.0, 1.0, 3.0], inf),
    ("ties_zero_up", lambda m, a: m.amax(a), [3.0, 1.0, 3.0], 0.0),
    ("nan_input", lambda m, a: m.amin(a, 1, keepdim=True), [[-0.5, inf, -0.5], [0.0, 1.0, nan]], 0.8),
    ("nan_input_all", lambda m, a: m.amax(a), [1.0, nan, 3.0], 1.0),
    ("minus_inf", lambda m, a: m.amax(a, 1), [[-inf, -inf]], 1.0),
    ("0d", lambda m, a: m.amin(a), 2.0, inf),
    ("dims", lambda m, a: m.amax(a, (0, 1)), [[1.0, 4.0], [4.0, 0.0]], 0.5),
    # max/min without a dim: PyTorch's evenly_distribute_backward selects, and a NaN max is the NaNs'
    ("max_nan", lambda m, a: m.max(a), [1.0, nan, 3.0, nan], 1.0),
    ("max_ties_inf", lambda m, a: m.max(a), [3.0, 1.0, 3.0], inf),
    ("min_ties", lambda m, a: m.min(a), [[3.0, 1.0], [1.0, 2.0]], -inf),
    ("max_0d", lambda m, a: m.max(a), 2.0, nan),
])
def test_amax_amin_gradients_follow_pytorch_formula(device, name, fn, x, up):
    got, want = _grad_both(lambda a: fn(tt, a), lambda b: fn(torch, b), x, up, device)
    _same(got, want)


def test_amax_has_a_second_derivative(device):
    x = tt.tensor([[1.0, 3.0, 2.5], [2.0, 0.5, -1.0]], dtype=tt.float64, device=device, requires_grad=True)
    assert gradgradcheck(lambda a: tt.amax(a, 1) ** 2, [x])
    assert gradgradcheck(lambda a: tt.max(a) ** 2, [x])


# ---- C8: zero-width embedding and index backward -------------------------------------------------

@pytest.mark.parametrize("wshape, index", [((2, 0), [0, 0, 1]), ((2, 0), [[0], [1]]), ((0, 3), []),
                                           ((2, 3), []), ((3, 0), [])])
def test_embedding_and_index_backward_with_zero_size(device, wshape, index):
    idx = np.asarray(index, dtype=np.int64)
    w = tt.zeros(*wshape, dtype=tt.float32, device=device, requires_grad=True)
    i = tt.tensor(idx, device=device)
    wt = torch.zeros(wshape, requires_grad=True)
    for ours, theirs in ((tt.embedding(i, w), F.embedding(torch.from_numpy(idx), wt)), (w[i], wt[idx])):
        assert ours.shape == tuple(theirs.shape)
        up = np.ones(ours.shape, np.float32)
        (g,) = tt.autograd.grad(ours, w, tt.tensor(up, device=device))
        (gt,) = torch.autograd.grad(theirs, wt, torch.from_numpy(up))
        assert g.shape == wshape and g.dtype is tt.float32
        np.testing.assert_array_equal(g.numpy(), gt.numpy())


def test_a_zero_width_scatter_in_the_backend_kernels(device):
    backend = tt.zeros(1, device=device).backend
    idx = backend.asarray(np.array([0, 0, 1]))
    rows = backend.add_rows(2, idx, backend.asarray(np.zeros((3, 0), np.float32)))
    assert tuple(rows.shape) == (2, 0)
    out = backend.index_add(backend.zeros((2, 0), backend.xp_dtype(tt.float32)), (idx, Ellipsis),
                            backend.asarray(np.zeros((3, 0), np.float32)))
    assert tuple(out.shape) == (2, 0)


# ---- C11, C12: slices clamped before the backend sees them; None in assignments -----------------

SLICES = [
    (slice(-1, -3), slice(1, None, 2)), (slice(4, 3, 2),), (slice(10, None),), (slice(-10, 2),),
    (slice(3, 100),), (slice(None, 100, 3), slice(-5, 1)), (Ellipsis, slice(2, 99)),
    (None, slice(-7, 7), 0), (slice(0, 0),), (slice(5, 1),),
]


@pytest.mark.parametrize("index", SLICES)
def test_out_of_range_slices_read_as_in_pytorch(device, index):
    a = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    x = tt.tensor(a, device=device, requires_grad=True)
    y = x[index]
    want = torch.tensor(a)[index]
    assert y.shape == tuple(want.shape)
    np.testing.assert_array_equal(y.numpy(), want.numpy())
    (g,) = tt.autograd.grad(y, x, tt.ones(*y.shape, dtype=tt.float64, device=device))
    wt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(wt[index], wt, torch.ones(want.shape, dtype=torch.float64))
    np.testing.assert_array_equal(g.numpy(), gt.numpy())


@pytest.mark.parametrize("index", SLICES)
def test_out_of_range_slices_write_as_in_pytorch(device, index):
    x, xt = tt.zeros(2, 3, 4, device=device), torch.zeros(2, 3, 4)
    x[index] = 1.0
    xt[index] = 1.0
    np.testing.assert_array_equal(x.numpy(), xt.numpy())
    x = tt.zeros(2, 3, 4, device=device)
    v = np.arange(int(np.prod(xt[index].shape)), dtype=np.float32).reshape(xt[index].shape)
    x[index] = tt.tensor(v, device=device)
    xt[index] = torch.from_numpy(v)
    np.testing.assert_array_equal(x.numpy(), xt.numpy())


@pytest.mark.parametrize("index", [(None, 0), (0, None), (None, Ellipsis, None), (None, 1, slice(None), None),
                                   (slice(0, 5), None, 0)])
def test_none_in_an_assignment_index(device, index):
    x, xt = tt.zeros(2, 1, 2, device=device), torch.zeros(2, 1, 2)
    x[index] = 3.0
    xt[index] = 3.0
    np.testing.assert_array_equal(x.numpy(), xt.numpy())
    v = np.arange(int(np.prod(xt[index].shape)), dtype=np.float32).reshape(xt[index].shape) + 1
    x[index] = tt.tensor(v, device=device)
    xt[index] = torch.from_numpy(v)
    np.testing.assert_array_equal(x.numpy(), xt.numpy())
    # and recorded under autograd: the write goes through the same kernel
    w = tt.ones(*v.shape, dtype=tt.float32, device=device, requires_grad=True)
    buf = tt.zeros(2, 1, 2, device=device)
    buf[index] = w * 2.0
    buf.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(v.shape, 2.0, np.float32))


# ---- D15-D20: refusals as PyTorch's, and split with no sections -----------------------------------

def test_squeeze_with_a_repeated_dim_raises(device):
    x, xt = tt.zeros(1, 2, 1, device=device), torch.zeros(1, 2, 1)
    for dims in [(-3, 0), (2, -1), (1, 1)]:
        theirs, ours = _raises_both(lambda d=dims: tt.squeeze(x, d), lambda d=dims: torch.squeeze(xt, d))
        assert "appears multiple times" in str(theirs) and "appears multiple times" in str(ours)
    _raises_both(lambda: tt.squeeze(tt.tensor(1.0, device=device), (0, -1)),
                 lambda: torch.squeeze(torch.tensor(1.0), (0, -1)))
    assert tt.squeeze(x, (0, 2)).shape == (2,)
    assert tt.squeeze(x, ()).shape == tuple(torch.squeeze(xt, ()).shape) == (1, 2, 1)  # () squeezes none


def test_one_hot_of_an_empty_tensor_needs_num_classes(device):
    e = tt.zeros(0, dtype=tt.int64, device=device)
    theirs, ours = _raises_both(lambda: tt.one_hot(e), lambda: F.one_hot(torch.zeros(0, dtype=torch.long)))
    assert "infer" in str(ours)
    assert tt.one_hot(tt.zeros(0, 2, dtype=tt.int64, device=device), 3).shape == (0, 2, 3)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2,), ()])
def test_embedding_weight_must_be_2d(device, shape):
    theirs, ours = _raises_both(
        lambda: tt.embedding(tt.tensor([0], device=device), tt.zeros(*shape, device=device)),
        lambda: F.embedding(torch.tensor([0]), torch.zeros(shape)))
    assert "'weight' must be 2-D" in str(theirs) and "'weight' must be 2-D" in str(ours)


def test_expand_without_sizes_is_a_type_error(device):
    x = tt.tensor(1.0, device=device)
    for call_tt, call_torch in [(lambda: x.expand(), lambda: torch.tensor(1.0).expand()),
                                (lambda: tt.ones(2, device=device).expand(), lambda: torch.ones(2).expand())]:
        theirs, ours = _raises_both(call_tt, call_torch)
        assert isinstance(theirs, TypeError) and isinstance(ours, TypeError)
    assert x.expand(()).shape == () and x.expand([]).shape == ()


@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((0, 3), 1), ((2, 3), 0), ((2, 0), 1), ((2, 0), 0)])
@pytest.mark.parametrize("sections", [[], (), 0])
def test_split_with_no_sections_or_split_size_0_as_pytorch(device, shape, dim, sections):
    x, xt = tt.zeros(*shape, device=device), torch.zeros(shape)
    try:
        want = [tuple(t.shape) for t in torch.split(xt, sections, dim)]
    except RuntimeError:
        with pytest.raises(ValueError):
            tt.split(x, sections, dim)
        return
    assert [t.shape for t in tt.split(x, sections, dim)] == want


# ---- E21, E22: dtypes -----------------------------------------------------------------------------

DT = {"bool": (tt.bool, torch.bool), "int32": (tt.int32, torch.int32), "int64": (tt.int64, torch.int64),
      "float32": (tt.float32, torch.float32), "float64": (tt.float64, torch.float64)}


@pytest.mark.parametrize("names", [
    ("bool", "float64", "float32"), ("float64", "float32"), ("float32", "float64"), ("bool", "int32"),
    ("int32", "int64"), ("bool", "int64", "int32"), ("int32", "float32"), ("int64", "float64", "float32"),
    ("float32", "int64"), ("bool", "bool"), ("int32", "bool", "float32", "float64"),
    ("float32", "int64", "bool"),
])
@pytest.mark.parametrize("join", ["cat", "stack"])
def test_cat_and_stack_promote_over_every_tensor(device, names, join):
    ours = [tt.ones(2, dtype=DT[n][0], device=device) for n in names]
    theirs = [torch.ones(2, dtype=DT[n][1]) for n in names]
    got, want = getattr(tt, join)(ours), getattr(torch, join)(theirs)
    assert got.dtype.name == str(want.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(got.numpy(), want.numpy().astype(got.numpy().dtype))


@pytest.mark.parametrize("name", ["bool", "int32", "int64", "float32", "float64"])
def test_dropout_keeps_the_dtype_where_pytorch_does(device, name):
    x, xt = tt.ones(3, dtype=DT[name][0], device=device), torch.ones(3, dtype=DT[name][1])
    for p, training in [(1.0, True), (0.0, True), (0.5, False)]:
        got, want = tt.dropout(x, p, training), F.dropout(xt, p, training)
        assert got.dtype.name == str(want.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    if not x.dtype.is_floating_point:  # 0 < p < 1 scales by 1/(1-p): PyTorch refuses an integer tensor
        _raises_both(lambda: tt.dropout(x, 0.5), lambda: F.dropout(xt, 0.5))


def test_dropout_p1_gradient_as_pytorch(device):
    got, want = _grad_both(lambda a: tt.dropout(a, 1.0), lambda b: F.dropout(b, 1.0), [1.0, -2.0], [inf, 2.0],
                           device)
    _same(got, want)


# ---- E23: dim=() reads as every dim, as in PyTorch ------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3), (4,), (), (0, 3), (1, 1)])
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "var", "std", "logsumexp", "nansum"])
@pytest.mark.parametrize("dim", [(), []])
@pytest.mark.parametrize("keepdim", [False, True])
def test_dim_empty_means_every_dim_as_pytorch(device, shape, op, dim, keepdim):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape)
    kw = dict(dim=dim, keepdim=keepdim)
    if op == "nansum":  # not a tinytensor op: its answer is sum's
        op_tt, op_torch = tt.sum, torch.nansum
    else:
        op_tt, op_torch = getattr(tt, op), getattr(torch, op)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = op_torch(torch.tensor(a), **kw)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            op_tt(tt.tensor(a, device=device), **kw)
        return
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        got = op_tt(tt.tensor(a, device=device), **kw)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "logsumexp"])
def test_dim_empty_gradient_is_every_dims(device, op):
    # (var/std are left out: PyTorch's own var backward for dim=() divides by 1 - correction, not
    # n - correction, which disagrees with its forward; tinytensor's is the gradient of its forward)
    got, want = _grad_both(lambda a: getattr(tt, op)(a, dim=(), keepdim=True),
                           lambda b: getattr(torch, op)(b, dim=(), keepdim=True),
                           [[1.0, 2.0], [4.0, 3.0]], 0.5, device)
    _same(got, want)
    x = tt.tensor([[1.0, 2.0], [4.0, 3.5]], dtype=tt.float64, device=device, requires_grad=True)
    assert gradcheck(lambda a: tt.var(a, dim=()), [x]) and gradcheck(lambda a: tt.std(a, dim=()), [x])
    np.testing.assert_allclose(tt.autograd.grad(tt.var(x, dim=()), x)[0].numpy(),
                               tt.autograd.grad(tt.var(x), x)[0].numpy())


@pytest.mark.parametrize("call", [
    lambda m, x: m.argmax(x, dim=()), lambda m, x: m.argmin(x, dim=(0,)), lambda m, x: m.max(x, dim=()),
    lambda m, x: m.min(x, dim=(1,)), lambda m, x: m.softmax(x, dim=()),
    lambda m, x: m.log_softmax(x, dim=(0,)),
])
def test_single_dim_ops_refuse_a_tuple_as_pytorch(device, call):
    theirs, ours = _raises_both(lambda: call(tt, tt.ones(2, 3, device=device)),
                                lambda: call(torch, torch.ones(2, 3)))
    assert isinstance(theirs, TypeError) and isinstance(ours, TypeError)


def test_amax_of_an_empty_tensor_over_dim_empty_raises_as_over_none(device):
    e = tt.zeros(0, 3, device=device)
    _raises_both(lambda: tt.amax(e, dim=()), lambda: torch.amax(torch.zeros(0, 3), dim=()))
    _raises_both(lambda: tt.amax(e), lambda: torch.amax(torch.zeros(0, 3)))


def test_a_repeated_reduction_dim_is_refused_in_pytorch_words(device):
    x = tt.zeros(2, 3, device=device)
    for op in ["sum", "mean", "amax", "var", "logsumexp"]:
        theirs, ours = _raises_both(lambda op=op: getattr(tt, op)(x, (0, -2)),
                                    lambda op=op: getattr(torch, op)(torch.zeros(2, 3), (0, -2)))
        assert "dim 0 appears multiple times" in str(theirs) and "dim 0 appears multiple times" in str(ours)


@pytest.mark.parametrize("op", ["sum", "amax", "amin", "logsumexp", "var", "std", "mean"])
@pytest.mark.parametrize("dim", [(1,), (0, 1), (-2,), 1])
def test_a_0d_tensor_checks_every_listed_dim(device, op, dim):
    theirs, ours = _raises_both(lambda: getattr(tt, op)(tt.tensor(1.0, device=device), dim=dim),
                                lambda: getattr(torch, op)(torch.tensor(1.0), dim=dim))
    assert isinstance(theirs, IndexError) and isinstance(ours, IndexError)


def test_one_hot_of_an_empty_tensor_with_zero_classes_raises(device):
    e = tt.zeros(1, 0, dtype=tt.int64, device=device)
    _raises_both(lambda: tt.one_hot(e, 0), lambda: F.one_hot(torch.zeros(1, 0, dtype=torch.long), 0))


@pytest.mark.parametrize("op", ["log_softmax", "softmax", "logsumexp"])
def test_rows_with_infinite_or_nan_entries_as_pytorch(device, op):
    rows = [[-inf, -inf], [inf, 1.0], [inf, inf], [-inf, inf], [nan, 1.0], [1.0, 2.0], [-inf, 0.5]]
    with np.errstate(all="ignore"):
        got = getattr(tt, op)(_t(rows, device), 1).numpy()
    want = getattr(torch, op)(torch.tensor(rows, dtype=torch.float64), 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", ["bool", "int32", "int64"])
def test_max_min_prod_of_bool_and_int_tensors_as_pytorch(device, name):
    a = np.array([[True, False, True], [False, False, True]]).astype(name)
    x, xt = tt.tensor(a, device=device), torch.from_numpy(a)
    for op, kw in [("amax", dict(dim=1)), ("amin", dict(dim=0, keepdim=True)), ("amax", {}), ("max", {}),
                   ("min", {}), ("prod", dict(dim=1)), ("prod", {}), ("sum", {})]:
        got, want = getattr(tt, op)(x, **kw), getattr(torch, op)(xt, **kw)
        assert got.dtype.name == str(want.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for op in ["max", "min"]:
        (v, i), want = getattr(tt, op)(x, 1), getattr(torch, op)(xt, 1)
        assert v.dtype.name == str(want.values.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(v.numpy(), want.values.numpy())
        np.testing.assert_array_equal(i.numpy(), want.indices.numpy())


# ---- found by the longer fuzz run: a mask among other indices, and negative padding ---------------

M3, M4 = np.array([True, False, True]), np.array([False, True, True, False])


@pytest.mark.parametrize("index", [
    (slice(None), M3), (Ellipsis, M4), (None, slice(None), M3), (slice(None), slice(None), M4),
    (slice(0, 1), M3, slice(1, 3)), (Ellipsis, np.array([3, 0])), (Ellipsis, np.array([1]), slice(None)),
    (slice(None), Ellipsis, np.array([2, 2])), (None, Ellipsis, np.array([1, 0])),
])
def test_a_mask_or_an_integer_array_after_other_indices(device, index):
    a = np.arange(24.0).reshape(2, 3, 4)
    ours = tuple(tt.tensor(i, device=device) if isinstance(i, np.ndarray) else i for i in index)
    theirs = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)
    x, xt = tt.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, yt = x[ours], xt[theirs]
    assert y.shape == tuple(yt.shape)
    np.testing.assert_array_equal(y.numpy(), yt.detach().numpy())
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_mixed_integer_and_mask_indices_are_a_declared_limitation_off_numpy(device):
    x = tt.zeros(2, 3, 4, device=device)
    index = (slice(None), tt.tensor(M3, device=device), tt.tensor([1], device=device))
    if device == "strict":
        with pytest.raises(NotImplementedError):
            x[index]
    else:
        assert x[index].shape == tuple(torch.zeros(2, 3, 4)[:, torch.from_numpy(M3), [1]].shape)


@pytest.mark.parametrize("widths", [(-1, 0), (-1, 2), (0, -3), (-2, -1), (1, -1, -1, 0), (-4, 0), (-2, -2),
                                    (-1, -1, 2, -2)])
def test_negative_padding_crops_as_pytorch(device, widths):
    a = np.arange(6.0).reshape(2, 3)
    try:
        F.pad(torch.tensor(a), widths, value=9.0)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            tt.pad(tt.tensor(a, device=device), widths, value=9.0)
        return
    got, want = _grad_both(lambda x: tt.pad(x, widths, value=9.0), lambda x: F.pad(x, widths, value=9.0), a,
                           0.5, device)
    _same(got, want)
