"""gather/scatter, index_select/index_fill/index_add, masked_select, nonzero, t/flip/roll/repeat,
contiguous, sort/argsort/topk, cumsum/cumprod, multinomial and bernoulli: what the conformance
catalogue does not cover. The errors (PyTorch's, where it raises), the named tuples, the in-place
variants, ties and NaN in sorts, cumprod's gradient at zeros, and the random ops' distributions and
seeds. PyTorch is the reference."""
import math
import warnings

import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
from tinytensor.autograd import gradcheck, gradgradcheck

torch = require_torch()
inf, nan = math.inf, math.nan


def _t(values, device, dtype=None, requires_grad=False):
    a = np.asarray(values)
    dtype = dtype or (tt.float64 if a.dtype.kind == "f" else None)
    return tt.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)


def _both(values, device, dtype="float64", requires_grad=False):
    a = np.asarray(values, dtype=dtype)
    return (tt.tensor(a, device=device, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


# ---- errors: tinytensor raises where PyTorch raises ---------------------------------------------

X = np.arange(6.0).reshape(2, 3)
I22 = np.array([[0, 1], [2, 0]])

# (name, call on (lib, x, idx) -> result); each raises in PyTorch
RAISING = {
    "gather_float_index": lambda m, x, i: m.gather(x, 1, i.float()),
    "gather_bool_index": lambda m, x, i: m.gather(x, 1, i > 0),
    "gather_out_of_range": lambda m, x, i: m.gather(x, 1, i + 2),
    "gather_negative": lambda m, x, i: m.gather(x, 1, i - 1),
    "gather_index_larger": lambda m, x, i: m.gather(x, 1, m.zeros((3, 1), dtype=m.int64)),
    "gather_index_fewer_dims": lambda m, x, i: m.gather(x, 1, i[0]),
    "gather_dim": lambda m, x, i: m.gather(x, 2, i),
    "scatter_src_dtype": lambda m, x, i: m.scatter(x, 1, i, m.ones((2, 2), dtype=m.float32)),
    "scatter_src_smaller": lambda m, x, i: m.scatter(x, 1, i, m.ones((1, 2), dtype=x.dtype)),
    "scatter_negative": lambda m, x, i: m.scatter(x, 1, i - 1, 0.0),
    "scatter_out_of_range": lambda m, x, i: m.scatter(x, 0, i, 0.0),
    "scatter_reduce_name": lambda m, x, i: m.scatter(x, 1, i, 0.0, reduce="sum"),
    "scatter_add_number": lambda m, x, i: m.scatter_add(x, 1, i, 1.0),
    "scatter_add_src_dims": lambda m, x, i: m.scatter_add(x, 1, i, m.ones(4, dtype=x.dtype)),
    "index_select_2d_index": lambda m, x, i: m.index_select(x, 1, i),
    "index_select_negative": lambda m, x, i: m.index_select(x, 1, i[0] - 1),
    "index_select_out_of_range": lambda m, x, i: m.index_select(x, 0, i[1]),
    "index_select_float": lambda m, x, i: m.index_select(x, 1, i[0].float()),
    "index_select_scalar_many": lambda m, x, i: m.index_select(x[0, 0], 0, i[0] * 0),
    "index_fill_int32": lambda m, x, i: m.index_fill(x, 1, i[0].int(), 1.0),
    "index_fill_out_of_range": lambda m, x, i: m.index_fill(x, 1, i[0] - 4, 1.0),
    "index_fill_vector_value": lambda m, x, i: m.index_fill(x, 1, i[0], m.ones(1, dtype=x.dtype)),
    "index_add_dtype": lambda m, x, i: m.index_add(x, 1, i[0], m.ones((2, 2), dtype=m.float32)),
    "index_add_count": lambda m, x, i: m.index_add(x, 1, i[0], m.ones((2, 3), dtype=x.dtype)),
    "index_add_shape": lambda m, x, i: m.index_add(x, 1, i[0], m.ones((3, 2), dtype=x.dtype)),
    "index_add_negative": lambda m, x, i: m.index_add(x, 1, i[0] - 1, m.ones((2, 2), dtype=x.dtype)),
    "masked_select_int_mask": lambda m, x, i: m.masked_select(x, (x > 2).long()),
    "masked_select_shapes": lambda m, x, i: m.masked_select(x, m.ones(2, dtype=m.bool)),
    "t_3d": lambda m, x, i: m.t(x.reshape(1, 2, 3)),
    "repeat_fewer": lambda m, x, i: x.repeat(2),
    "repeat_negative": lambda m, x, i: x.repeat(-1, 1),
    "roll_misaligned": lambda m, x, i: m.roll(x, (1, 2), (0,)),
    "roll_shifts_no_dims": lambda m, x, i: m.roll(x, (1, 2)),
    "roll_dim": lambda m, x, i: m.roll(x, 1, 2),
    "roll_0d_dim": lambda m, x, i: m.roll(x[0, 0], 1, 0),
    "flip_repeated_dim": lambda m, x, i: m.flip(x, (0, -2)),
    "flip_dim": lambda m, x, i: m.flip(x, (2,)),
    "topk_k_large": lambda m, x, i: m.topk(x, 4),
    "topk_k_negative": lambda m, x, i: m.topk(x, -1),
    "topk_bool": lambda m, x, i: m.topk(x > 2, 1),
    "sort_dim": lambda m, x, i: m.sort(x, 2),
    "cumsum_bool_dtype": lambda m, x, i: m.cumsum(x, 0, dtype=m.bool),
    "cumprod_dim": lambda m, x, i: m.cumprod(x, -3),
    "multinomial_3d": lambda m, x, i: m.multinomial(x.reshape(1, 2, 3) + 1, 1),
    "multinomial_int": lambda m, x, i: m.multinomial(i[0], 1),
    "multinomial_zero_samples": lambda m, x, i: m.multinomial(x + 1, 0),
    "multinomial_too_many": lambda m, x, i: m.multinomial(x + 1, 4),
    "multinomial_negative": lambda m, x, i: m.multinomial(x - 1, 1),
    "multinomial_nan": lambda m, x, i: m.multinomial(m.where(x > 4, nan, x), 1),
    "multinomial_inf": lambda m, x, i: m.multinomial(m.where(x > 4, inf, x), 1),
    "multinomial_all_zero": lambda m, x, i: m.multinomial(x * 0, 1, True),
    "bernoulli_p_large": lambda m, x, i: m.bernoulli(x, 1.5),
    "bernoulli_probs_large": lambda m, x, i: m.bernoulli(x),
    "bernoulli_probs_nan": lambda m, x, i: m.bernoulli(m.where(x > 4, nan, 0.5)),
    "bernoulli__p_shape": lambda m, x, i: x.clone().bernoulli_(m.ones(2, dtype=x.dtype)),
    "bernoulli__p_large": lambda m, x, i: x.clone().bernoulli_(1.5),
}


@pytest.mark.parametrize("name", sorted(RAISING))
def test_raises_where_pytorch_raises(device, name):
    call = RAISING[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((RuntimeError, IndexError, TypeError, ValueError, NotImplementedError)):
            call(torch, torch.tensor(X), torch.tensor(I22))
    with pytest.raises((RuntimeError, IndexError, TypeError, ValueError)):
        call(tt, tt.tensor(X, device=device), tt.tensor(I22, device=device))


def test_int32_indices_are_taken_where_pytorch_takes_them(device):
    x, i = tt.tensor(X, device=device), tt.tensor(I22, device=device).int()
    want = torch.gather(torch.tensor(X), 1, torch.tensor(I22))
    np.testing.assert_array_equal(tt.gather(x, 1, i).numpy(), want.numpy())
    np.testing.assert_array_equal(tt.index_select(x, 1, i[0]).numpy(), X[:, [0, 1]])
    np.testing.assert_array_equal(tt.scatter(x, 1, i, 7.0).numpy(),
                                  torch.scatter(torch.tensor(X), 1, torch.tensor(I22), 7.0).numpy())


@pytest.mark.parametrize("call, words", [
    (lambda x, i: tt.gather(x, 1, i + 2), ["gather", "index 4", "dimension 1", "size 3"]),
    (lambda x, i: tt.gather(x, 1, i - 1), ["gather", "index -1", "dimension 1", "size 3"]),
    (lambda x, i: tt.scatter(x, 0, i, 1.0), ["scatter", "index 2", "dimension 0", "size 2"]),
    (lambda x, i: tt.scatter_add(x, 1, i + 1, x[:, :2]), ["scatter_add", "index 3", "dimension 1"]),
    (lambda x, i: tt.index_select(x, 1, i[0] - 1), ["index_select", "index -1", "dimension 1"]),
    (lambda x, i: tt.index_add(x, 0, i[1], x), ["index_add", "index 2", "dimension 0", "size 2"]),
    (lambda x, i: tt.index_fill(x, 1, i[0] - 4, 0.0), ["index_fill", "index -4", "dimension 1", "size 3"]),
])
def test_out_of_range_indices_name_the_op_dim_size_and_index(device, call, words):
    with pytest.raises((RuntimeError, IndexError)) as e:
        call(tt.tensor(X, device=device), tt.tensor(I22, device=device))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_index_fill_counts_negative_indices_from_the_back_as_pytorch(device):
    x, tx = _both(X, device)
    got = tt.index_fill(x, 1, _t([-1, 0], device), 9.0)
    want = torch.index_fill(tx, 1, torch.tensor([-1, 0]), 9.0)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# ---- named tuples -----------------------------------------------------------------------------

def test_sort_and_topk_return_named_tuples(device):
    x = _t([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]], device)
    out = tt.sort(x)
    values, indices = out
    assert isinstance(out, tuple) and out.values is values and out.indices is indices
    assert type(out).__name__ == "SortResult" and "values=" in repr(out)
    assert values.dtype is tt.float64 and indices.dtype is tt.int64
    top = x.topk(2, dim=1)
    assert type(top).__name__ == "TopkResult" and top[0] is top.values and top[1] is top.indices
    np.testing.assert_array_equal(top.values.numpy(), [[3.0, 2.0], [5.0, 0.0]])
    np.testing.assert_array_equal(top.indices.numpy(), [[0, 2], [1, 0]])


# ---- sorting: ties, NaN, stability, sorted=False ------------------------------------------------

@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("stable", [False, True])
def test_sort_keeps_the_order_of_equal_values_and_puts_nan_above_all(device, descending, stable):
    v = [1.0, nan, 0.0, 1.0, -inf, 1.0, nan, inf, 0.0, -0.0]
    x, tx = _both(v, device)
    got = tt.sort(x, descending=descending, stable=stable)
    want = torch.sort(tx, descending=descending, stable=True)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(tt.argsort(x, descending=descending).numpy(), want.indices.numpy())


def test_sort_of_bools_and_integers(device):
    for v in ([True, False, True, False], [3, -1, 3, 0]):
        x, tx = tt.tensor(v, device=device), torch.tensor(v)
        got, want = x.sort(descending=True), torch.sort(tx, descending=True, stable=True)
        assert got.values.dtype.name == str(want.values.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def test_topk_of_equal_values_takes_the_first_ones(device):
    x = _t([1.0, 2.0, 1.0, 2.0, 1.0], device)
    np.testing.assert_array_equal(tt.topk(x, 3).indices.numpy(), [1, 3, 0])
    np.testing.assert_array_equal(tt.topk(x, 4, largest=False).indices.numpy(), [0, 2, 4, 1])


def test_topk_unsorted_gives_the_same_elements_as_pytorch(device):
    rng = np.random.default_rng(0)
    a = rng.permutation(20).astype(np.float64).reshape(4, 5)
    got = tt.topk(_t(a, device), 3, dim=1, sorted=False)
    want = torch.topk(torch.tensor(a), 3, dim=1, sorted=False)
    np.testing.assert_array_equal(np.sort(got.values.numpy(), 1), np.sort(want.values.numpy(), 1))
    np.testing.assert_array_equal(np.take_along_axis(a, got.indices.numpy(), 1), got.values.numpy())


def test_topk_and_sort_of_0d_tensors_as_pytorch(device):
    x = _t(2.5, device)
    for k in (0, 1):
        v, i = tt.topk(x, k)
        assert v.shape == () and v.item() == 2.5 and i.item() == 0
    assert tt.sort(x).values.shape == () and tt.argsort(x).shape == ()


def test_sort_gradient_goes_back_to_where_each_value_came_from(device):
    x, tx = _both([[3.0, -1.0, 2.0], [0.5, 4.0, 1.0]], device, requires_grad=True)
    up = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    tt.sort(x, dim=1, descending=True).values.backward(_t(up, device))
    torch.sort(tx, dim=1, descending=True).values.backward(torch.tensor(up))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    assert not tt.sort(x).indices.requires_grad and not tt.argsort(x).requires_grad


# ---- scatter: repeated indices, reduce, bools ---------------------------------------------------

def test_scatter_with_repeated_indices_writes_one_of_the_values(device):
    x = tt.zeros(1, 3, dtype=tt.float64, device=device)
    out = tt.scatter(x, 1, _t([[1, 1, 1]], device), _t([[5.0, 6.0, 7.0]], device))
    assert out.numpy()[0, 1] in (5.0, 6.0, 7.0) and out.numpy()[0, 0] == out.numpy()[0, 2] == 0.0


def test_scatter_reduce_and_its_missing_derivative_as_pytorch(device):
    x, tx = _both(X, device, requires_grad=True)
    src, tsrc = _both([[2.0, 3.0], [4.0, 5.0]], device)
    for reduce in ("add", "multiply"):
        got = tt.scatter(x, 1, _t(I22, device), src, reduce=reduce)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = torch.scatter(tx, 1, torch.tensor(I22), tsrc, reduce=reduce)
        np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
        assert got.requires_grad and want.requires_grad
        with pytest.raises(RuntimeError, match="derivative"):
            got.sum().backward()
        with pytest.raises(RuntimeError, match="derivative"):
            want.sum().backward()


def test_scatter_add_and_index_add_of_bools_are_or(device):
    b = tt.tensor([[True, False, False]], device=device)
    i = tt.tensor([[0, 0, 1]], device=device)
    want = torch.scatter_add(torch.tensor([[True, False, False]]), 1, torch.tensor([[0, 0, 1]]),
                             torch.tensor([[True, False, False]]))
    np.testing.assert_array_equal(tt.scatter_add(b, 1, i, b).numpy(), want.numpy())
    np.testing.assert_array_equal(tt.index_add(b, 1, i[0], b).numpy(), [[True, False, False]])
    assert tt.index_add(b, 1, i[0], b).dtype is tt.bool


def test_a_src_larger_than_the_index_gets_zero_gradient_outside_it(device):
    x = tt.zeros(2, 3, dtype=tt.float64, device=device, requires_grad=True)
    src = tt.tensor(np.arange(9.0).reshape(3, 3), device=device, requires_grad=True)
    tt.scatter_add(x, 1, _t(I22, device), src).backward(_t(np.arange(6.0).reshape(2, 3), device))
    np.testing.assert_array_equal(src.grad.numpy(), [[0, 1, 0], [5, 3, 0], [0, 0, 0]])


# ---- in place ---------------------------------------------------------------------------------

INPLACE = {
    "scatter_": (lambda t, m: t.scatter_(1, m.tensor(I22), m.tensor([[7.0, 8.0], [9.0, 1.0]],
                                                                     dtype=t.dtype))),
    "scatter_value": lambda t, m: t.scatter_(1, m.tensor(I22), 2.5),
    "scatter_add_": lambda t, m: t.scatter_add_(0, m.tensor([[1, 0, 1]]), m.ones((1, 3), dtype=t.dtype)),
    "index_fill_": lambda t, m: t.index_fill_(1, m.tensor([2, 0]), -1.0),
    "index_add_": lambda t, m: t.index_add_(0, m.tensor([1, 1]), m.ones((2, 3), dtype=t.dtype), alpha=2),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants_write_into_the_tensor_and_bump_its_version(device, name):
    op = INPLACE[name]
    x = tt.tensor(X, device=device)
    before = x._version[0]
    out = op(x, _On(device))
    assert out is x and x._version[0] == before + 1
    want = op(torch.tensor(X), torch)
    np.testing.assert_array_equal(x.numpy(), want.numpy())


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants_are_recorded_under_autograd_as_pytorch(device, name):
    op = INPLACE[name]
    w, tw = _both(X, device, requires_grad=True)
    y, ty = w * 2.0, tw * 2.0
    op(y, _On(device))
    op(ty, torch)
    up = np.arange(1.0, 7.0).reshape(2, 3)
    (y * y).backward(_t(up, device))
    (ty * ty).backward(torch.tensor(up))
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="leaf"):
        op(w, _On(device))


class _On:
    """tt with tensor() and ones() on one device, for the in-place table."""

    def __init__(self, device):
        self.device = device

    def tensor(self, data, dtype=None):
        return tt.tensor(data, dtype=dtype, device=self.device)

    def ones(self, shape, dtype=None):
        return tt.ones(*shape, dtype=dtype, device=self.device)


def test_inplace_scatter_of_a_src_that_requires_grad(device):
    src, tsrc = _both([[7.0, 8.0], [9.0, 1.0]], device, requires_grad=True)
    x, tx = tt.zeros(2, 3, dtype=tt.float64, device=device), torch.zeros(2, 3, dtype=torch.float64)
    x.scatter_(1, _t(I22, device), src)
    tx.scatter_(1, torch.tensor(I22), tsrc)
    assert x.requires_grad and tx.requires_grad
    up = np.arange(6.0).reshape(2, 3)
    x.backward(_t(up, device))
    tx.backward(torch.tensor(up))
    np.testing.assert_array_equal(src.grad.numpy(), tsrc.grad.numpy())


# ---- contiguous, t, repeat ----------------------------------------------------------------------

def test_contiguous_returns_the_tensor_or_a_copy_as_pytorch():
    x = tt.tensor(X)
    row = x[0]
    assert x.contiguous() is x and row.contiguous() is row
    y = x.mT.contiguous()
    assert y is not x.mT and y.shape == (3, 2)
    y[0, 0] = 100.0  # a copy: x keeps its values, as PyTorch's contiguous() of a transpose does
    assert x[0, 0].item() == 0.0
    z = x.reshape(3, 2)
    assert z.contiguous() is z


def test_contiguous_passes_gradients(device):
    x = tt.tensor(X, device=device, requires_grad=True)
    x.mT.contiguous().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))


def test_repeat_copies_and_t_views(device):
    x = tt.tensor([1.0, 2.0], device=device)
    r = x.repeat(3)
    r[0] = 9.0  # repeat's result has its own memory
    assert x[0].item() == 1.0 and r.shape == (6,)
    assert x.repeat(2, 1, 2).shape == (2, 1, 4) and tt.tensor(5.0).repeat(()).shape == ()
    assert tt.t(x) is x
    m = tt.tensor(X, device=device)
    np.testing.assert_array_equal(m.t().numpy(), X.T)


# ---- cumsum / cumprod ---------------------------------------------------------------------------

def test_cumsum_and_cumprod_dtypes_as_pytorch(device):
    for v in ([1, 2, 3], [True, False, True]):
        x, tx = tt.tensor(v, device=device), torch.tensor(v)
        for name in ("cumsum", "cumprod"):
            got, want = getattr(tt, name)(x, 0), getattr(torch, name)(tx, 0)
            assert got.dtype is tt.int64 and str(want.dtype) == "torch.int64"
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    x = tt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = tt.cumsum(x, 0, dtype=tt.float64)
    assert y.dtype is tt.float64
    y.sum().backward()
    assert x.grad.dtype is tt.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 2.0, 1.0])
    assert tt.cumsum(tt.tensor([1.5, 2.5], device=device), 0, dtype=tt.int64).tolist() == [1, 3]


@pytest.mark.parametrize("values", [
    [2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 0.0, 0.0, 1.5], [1.5, -2.0, 0.0], [0.0, 2.0],
    [0.0, 1.5, 0.0, 2.0, 0.0, -1.0],
])
def test_cumprod_gradient_is_exact_where_the_input_has_zeros(device, values):
    x, tx = _both(values, device, requires_grad=True)
    up = np.linspace(-1.0, 2.0, len(values))
    tt.cumprod(x, 0).backward(_t(up, device))
    torch.cumprod(tx, 0).backward(torch.tensor(up))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a: tt.cumprod(a, 0), [x.detach().requires_grad_()])
    assert gradgradcheck(lambda a: tt.cumprod(a, 0), [x.detach().requires_grad_()])


def test_cumprod_gradient_with_inf_and_nan_is_pytorchs(device):
    rng = np.random.default_rng(1)
    for _ in range(40):
        a = rng.choice([0.0, 1.0, 2.0, -1.5, inf, nan], size=(3, 5))
        g = np.where(rng.random((3, 5)) < 0.3, rng.choice([inf, -inf, nan], size=(3, 5)),
                     rng.standard_normal((3, 5)))
        x, tx = _both(a, device, requires_grad=True)
        with np.errstate(all="ignore"):
            tt.cumprod(x, 1).backward(_t(g, device))
        torch.cumprod(tx, 1).backward(torch.tensor(g))
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, equal_nan=True)


# ---- multinomial --------------------------------------------------------------------------------

def test_multinomial_with_replacement_draws_each_category_at_its_rate(device):
    p = np.array([0.1, 0.0, 0.6, 0.3])
    tt.manual_seed(0)
    draws = tt.multinomial(_t(p * 5, device), 20000, replacement=True)  # unnormalised weights
    assert draws.shape == (20000,) and draws.dtype is tt.int64 and not draws.requires_grad
    freq = np.bincount(draws.numpy(), minlength=4) / 20000
    assert freq[1] == 0.0
    np.testing.assert_allclose(freq, p, atol=0.015)


def test_multinomial_without_replacement_draws_distinct_categories_in_order(device):
    p = np.array([[0.5, 0.3, 0.2, 0.0], [0.0, 0.0, 1.0, 3.0]])
    tt.manual_seed(1)
    firsts = []
    for _ in range(300):
        d = tt.multinomial(_t(p, device), 2).numpy()
        assert d.shape == (2, 2)
        assert all(len(set(row)) == 2 for row in d)
        assert 3 not in d[0] and set(d[1]) == {2, 3}
        firsts.append(d[0, 0])
    # the first draw is category c with probability p_c
    np.testing.assert_allclose(np.bincount(firsts, minlength=3) / 300, [0.5, 0.3, 0.2], atol=0.08)


def test_multinomial_refuses_more_draws_than_categories_with_a_nonzero_probability(device):
    with pytest.raises(RuntimeError, match="not enough categories"):
        tt.multinomial(_t([[0.5, 0.0, 0.5]], device), 3)
    assert tt.multinomial(_t([[0.5, 0.0, 0.5]], device), 3, replacement=True).shape == (1, 3)


def test_multinomial_seeds_and_generators(device):
    p = _t([0.2, 0.3, 0.5], device)
    tt.manual_seed(7)
    a = tt.multinomial(p, 50, True).numpy()
    b = tt.multinomial(p, 50, True).numpy()
    tt.manual_seed(7)
    np.testing.assert_array_equal(tt.multinomial(p, 50, True).numpy(), a)
    assert (a != b).any()
    g1, g2 = tt.Generator().manual_seed(3), tt.Generator().manual_seed(3)
    np.testing.assert_array_equal(tt.multinomial(p, 3, generator=g1).numpy(),
                                  p.multinomial(3, generator=g2).numpy())
    assert tt.multinomial(_t(np.ones((0, 3)), device), 2).shape == (0, 2)


# ---- bernoulli ----------------------------------------------------------------------------------

def test_bernoulli_draws_ones_at_the_rate_p(device):
    tt.manual_seed(0)
    p = _t(np.linspace(0.0, 1.0, 5).repeat(4000).reshape(5, 4000), device)
    s = tt.bernoulli(p)
    assert s.dtype is tt.float64 and s.shape == (5, 4000)
    rate = s.numpy().mean(axis=1)
    assert rate[0] == 0.0 and rate[-1] == 1.0
    np.testing.assert_allclose(rate, np.linspace(0.0, 1.0, 5), atol=0.025)
    half = tt.bernoulli(tt.zeros(8000, dtype=tt.int64, device=device), 0.25)
    assert half.dtype is tt.int64 and abs(half.numpy().mean() - 0.25) < 0.02


def test_bernoulli_seeds_generators_and_zero_gradient(device):
    p = _t([0.3, 0.6, 0.9, 0.1], device, requires_grad=True)
    tt.manual_seed(5)
    a = tt.bernoulli(p)
    tt.manual_seed(5)
    np.testing.assert_array_equal(p.bernoulli().numpy(), a.numpy())
    g1, g2 = tt.Generator().manual_seed(2), tt.Generator().manual_seed(2)
    np.testing.assert_array_equal(tt.bernoulli(p, generator=g1).numpy(),
                                  tt.bernoulli(p, generator=g2).numpy())
    assert a.requires_grad  # as PyTorch: a sample's derivative is recorded as zero
    a.backward(_t([inf, nan, 1.0, 2.0], device))
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(4))
    # with p given, x gives the shape and dtype only: its gradient is 0 (PyTorch has none)
    b = tt.bernoulli(p, 0.5)
    b.sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(4))


def test_bernoulli_in_place_with_a_number_or_a_broadcast_tensor(device):
    tt.manual_seed(0)
    x = tt.zeros(2, 3000, device=device)
    assert x.bernoulli_() is x and abs(x.numpy().mean() - 0.5) < 0.03
    x.bernoulli_(_t([[0.0], [1.0]], device))
    np.testing.assert_array_equal(x.numpy(), np.repeat([[0.0], [1.0]], 3000, axis=1))
    b = tt.zeros(4, dtype=tt.bool, device=device).bernoulli_(1.0)
    assert b.dtype is tt.bool and b.numpy().all()
    w = tt.ones(3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.bernoulli_(0.5)
    y = w * 2.0
    y.bernoulli_(1.0)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(3))
