"""The core's rules, one mechanism each, checked on the inputs that used to give silent wrong answers:
dims, the gradient contract, masks that select, differentiability by dtype, in-place writes under
autograd, indexing views, einsum's diagonals, scatters with NaN/inf, dtype rules, size-0 and 0-d
edges, and forward errors. PyTorch is the reference wherever it has an answer."""
import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
from tinytensor.autograd import Function, gradcheck, gradgradcheck

torch = require_torch()
inf, nan = float("inf"), float("nan")


def _t(values, device, dtype=tt.float64, requires_grad=False):
    return tt.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device,
                     requires_grad=requires_grad)


def _grad_both(fn_tt, fn_torch, x, upstream, device):
    """x.grad after fn(x).backward(upstream) in tinytensor (on device) and in PyTorch (float64)."""
    a = _t(x, device, requires_grad=True)
    fn_tt(a).backward(_t(upstream, device))
    b = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    fn_torch(b).backward(torch.tensor(np.asarray(upstream, dtype=np.float64)))
    return a.grad.numpy(), b.grad.numpy()


# ---- 1. dims: one normalizer, IndexError, never wrapped ------------------------------------------

@pytest.mark.parametrize("call", [
    lambda m, x: m.cat([x, x], 2), lambda m, x: m.cat([x, x], -3),
    lambda m, x: x.split(1, 2), lambda m, x: x.chunk(2, -3), lambda m, x: x.flatten(0, 2),
    lambda m, x: x.flatten(2), lambda m, x: x.permute(0, 2), lambda m, x: x.transpose(0, 2),
    lambda m, x: x.unsqueeze(3), lambda m, x: x.unsqueeze(-4), lambda m, x: x.squeeze(2),
    lambda m, x: x.sum(2), lambda m, x: x.softmax(-3), lambda m, x: m.stack([x, x], 3),
    lambda m, x: x.amax(5), lambda m, x: x.max(2), lambda m, x: x.argmax(-3),
])
def test_an_out_of_range_dim_is_an_index_error_as_in_pytorch(device, call):
    with pytest.raises(IndexError):
        call(torch, torch.zeros(2, 3))
    with pytest.raises(IndexError, match="Dimension out of range"):
        call(tt, tt.zeros(2, 3, device=device))


def test_dims_that_pytorch_accepts_or_refuses_otherwise(device):
    x = tt.zeros(2, 3, 4, device=device)
    with pytest.raises(RuntimeError, match="start_dim"):
        x.flatten(2, 1)  # used to add a dimension
    with pytest.raises(ValueError, match="new leading dimension"):
        tt.zeros(3, device=device).expand(-1, 3)
    with pytest.raises(ValueError, match="repeat"):
        x.permute(0, 1, 1)
    s = tt.tensor(2.0, device=device)
    assert s.transpose(0, 0).shape == () and s.transpose(-1, 0).shape == ()
    assert s.flatten(0, -1).shape == (1,) and s.sum(0).shape == () and s.unsqueeze(-1).shape == (1,)
    with pytest.raises(IndexError):
        s.transpose(0, 1)


# ---- 2. the gradient contract ---------------------------------------------------------------------

class _WrongShape(Function):
    def forward(self, x):
        return x * 1

    def backward(self, gy):
        return gy[:1]


class _Unreduced(Function):
    """Backward forgets to sum a broadcast gradient back down: the engine does it."""

    def forward(self, x, y):
        return x + y

    def backward(self, gy):
        return gy, gy


class _IntGrad(Function):
    def forward(self, x):
        return x * 1

    def backward(self, gy):
        return (gy * 3).long()


def test_a_wrong_gradient_shape_from_a_backward_is_an_error_naming_it(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"_WrongShape.backward.*\(1,\).*\(2,\)"):
        _WrongShape.apply(x).sum().backward()


def test_a_broadcast_gradient_is_summed_to_the_input_shape(device):
    x = _t([[1.0, 2.0]], device, requires_grad=True)
    y = _t([[1.0], [2.0], [3.0]], device, requires_grad=True)
    _Unreduced.apply(x, y).sum().backward()
    assert x.grad.shape == (1, 2) and y.grad.shape == (3, 1)
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 3.0]])
    np.testing.assert_array_equal(y.grad.numpy(), [[2.0], [2.0], [2.0]])


def test_a_gradient_of_another_dtype_is_cast_to_the_inputs(device):
    x = _t([1.0, 2.0], device, dtype=tt.float32, requires_grad=True)
    _IntGrad.apply(x).sum().backward()
    assert x.grad.dtype is tt.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_a_hook_returning_a_wrong_shape_is_an_error(device):
    w = _t([1.0, 2.0], device, requires_grad=True)
    w.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"hook.*\(\).*\(2,\)"):
        (w * 2).sum().backward()
    v = _t([1.0, 2.0], device, requires_grad=True)
    h = v * 2
    h.register_hook(lambda g: g.reshape(2, 1) * tt.ones(1, 3, dtype=tt.float64, device=device))
    with pytest.raises(RuntimeError, match="hook on Mul"):
        h.sum().backward()


def test_leaf_gradients_are_arrays_of_their_own(device):
    w1 = _t([1.0, 2.0], device, requires_grad=True)
    w2 = _t([3.0, 4.0], device, requires_grad=True)
    (w1 + w2).sum().backward()  # one broadcast array of ones for both, before
    assert w1.grad.array is not w2.grad.array
    w1.grad *= 3.0  # in place: used to fail on a read-only broadcast view
    np.testing.assert_array_equal(w1.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(w2.grad.numpy(), [1.0, 1.0])
    if device == "cpu":
        assert w1.grad.array.flags.writeable and w1.grad.array.base is None
    g = _t([5.0, 6.0], device)
    w3 = _t([1.0, 2.0], device, requires_grad=True)
    w3.backward(g)  # the gradient passed in stays the caller's
    w3.grad.zero_()
    np.testing.assert_array_equal(g.numpy(), [5.0, 6.0])


def test_clip_grad_norm_after_shared_gradients():
    from tinytensor_nn.utils import clip_grad_norm_

    w1, w2 = tt.ones(3, requires_grad=True), tt.ones(3, requires_grad=True)
    (w1 + w2).sum().backward()
    clip_grad_norm_([w1, w2], max_norm=1.0)
    np.testing.assert_allclose(w1.grad.numpy(), [1 / 6**0.5] * 3, rtol=1e-6)
    np.testing.assert_allclose(w2.grad.numpy(), [1 / 6**0.5] * 3, rtol=1e-6)


# ---- 3. masks select, never multiply --------------------------------------------------------------

@pytest.mark.parametrize("name, fn_tt, fn_torch, x, up", [
    ("relu", tt.relu, torch.relu, [-1.0, 2.0], [inf, 1.0]),
    ("sqrt_relu", lambda x: tt.relu(x).sqrt(), lambda x: torch.relu(x).sqrt(), [-1.0, 4.0], [1.0, 1.0]),
    ("clamp", lambda x: x.clamp(0.0, 1.0), lambda x: x.clamp(0.0, 1.0), [-1.0, 2.0], [inf, nan]),
    ("clamp_min", lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0), [-1.0, 2.0], [nan, 1.0]),
    ("maximum", lambda x: tt.maximum(x, tt.zeros_like(x)), lambda x: torch.maximum(x, torch.zeros_like(x)),
     [-1.0, 0.0, 2.0], [inf, 2.0, 1.0]),
    ("minimum", lambda x: tt.minimum(x, tt.zeros_like(x)), lambda x: torch.minimum(x, torch.zeros_like(x)),
     [-1.0, 0.0, 2.0], [1.0, 2.0, -inf]),
    ("max_dim", lambda x: x.max(0)[0], lambda x: x.max(0).values, [[1.0, 2.0], [3.0, 0.0]], [inf, nan]),
    ("min_dim", lambda x: x.min(1)[0], lambda x: x.min(1).values, [[1.0, 2.0], [3.0, 0.0]], [inf, nan]),
    ("where", lambda x: tt.where(x > 0, x, 0.0), lambda x: torch.where(x > 0, x, 0.0), [-1.0, 2.0], [inf, 1]),
    ("pow0", lambda x: x**0, lambda x: x**0, [0.0, 2.0], [1.0, 1.0]),
    ("pow0_tensor", lambda x: x ** tt.zeros_like(x), lambda x: x ** torch.zeros_like(x), [0.0, 2.0], [1, 1]),
    ("tril", lambda x: x.tril(), lambda x: x.tril(), [[1.0, 2.0], [3.0, 4.0]], [[1.0, inf], [1.0, 1.0]]),
])
def test_zeroed_gradients_stay_zero_for_inf_and_nan_upstream(device, name, fn_tt, fn_torch, x, up):
    got, want = _grad_both(fn_tt, fn_torch, x, up, device)
    np.testing.assert_array_equal(got, want)


def test_where_pytorch_formula_multiplies_tinytensor_follows_it(device):
    # abs (grad · sign(x)) and amax/amin (grad / count · (x == y)) multiply in PyTorch: 0 · inf is a
    # loud NaN there, and tinytensor gives the same (tests/test_elementwise_rules.py,
    # tests/test_shape_reduction_rules.py). Where PyTorch selects, the masks above select.
    got, want = _grad_both(lambda x: x.amax(0), lambda x: x.amax(0), [[1.0, 2.0], [3.0, 0.0]], [inf, inf],
                           device)
    np.testing.assert_array_equal(got, want)  # [[nan, inf], [inf, nan]]


# ---- 4. differentiability follows dtype -----------------------------------------------------------

def test_casting_to_an_integer_dtype_cuts_the_graph(device):
    w = _t([0.26, 0.71], device, requires_grad=True)
    n = (w * 10).long()
    assert not n.requires_grad and n.grad_fn is None and n.dtype is tt.int64
    assert not (w > 0.5).requires_grad and not w.argmax().requires_grad
    y = (w * n).sum()  # the integer factor is a constant
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 7.0])


# ---- in-place writes under autograd: recorded, never dropped --------------------------------------

@pytest.mark.parametrize("write", ["setitem", "iadd", "copy_", "mul_", "masked_fill_"])
def test_an_in_place_write_of_a_value_that_requires_grad_is_recorded(device, write):
    def run(m, w, buf):
        if write == "setitem":
            buf[1:] = w * 7
        elif write == "iadd":
            buf += w * 7
        elif write == "copy_":
            buf.copy_(w * 7)
        elif write == "mul_":
            buf.mul_(w * 7)
        else:
            buf.masked_fill_(buf > 100, 0.0)
            buf += w
        (buf * buf).sum().backward()
        return w.grad

    shape = (3,) if write == "setitem" else (2,)
    w_tt = tt.ones(2, dtype=tt.float64, device=device, requires_grad=True)
    w_torch = torch.ones(2, dtype=torch.float64, requires_grad=True)
    got = run(tt, w_tt, tt.full(shape, 2.0, dtype=tt.float64, device=device))
    want = run(torch, w_torch, torch.full(shape, 2.0, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-15)


def test_an_in_place_write_into_a_non_leaf_overwrites_its_gradient(device):
    w = _t([1.0, 2.0, 3.0], device, requires_grad=True)
    y = w * 2
    y[0] = 5.0
    y[tt.tensor([False, True, False], device=device)] = 0.0
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 0.0, 2.0])

    def f(w):
        buf = tt.zeros(3, 2, dtype=tt.float64, device=device)
        buf[1:] = w * w
        buf[0] = w[0]
        return buf

    x = _t(np.random.default_rng(0).standard_normal((2, 2)), device, requires_grad=True)
    assert gradcheck(f, [x]) and gradgradcheck(f, [x])


def test_in_place_writes_that_cannot_be_recorded_raise(device):
    w = _t([1.0, 2.0], device, requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: in-place update of a leaf"):
        w.add_(1.0)
    base = tt.zeros(3, dtype=tt.float64, device=device)
    view = base[:2]
    view += w  # recorded on the base too, as PyTorch's CopySlices (tests/test_inplace_views.py)
    (base * base).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    n = tt.zeros(3, dtype=tt.int64, device=device)
    with pytest.raises(RuntimeError, match="float32 can't be cast to the tensor's dtype int64"):
        n += 0.5


def test_an_advanced_index_is_a_copy_not_a_view(device):
    x = _t([1.0, 2.0, 3.0], device, requires_grad=True)
    h = x * 2
    y = h[tt.tensor([0, 2], device=device)]
    with tt.no_grad():
        h.add_(1)  # y does not share h's memory: its backward is still valid
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 0.0, 24.0])
    z = x * 2
    v = z[1:]  # a real view shares the version: the check still fires
    e = v * v  # Mul saves v
    with tt.no_grad():
        z.add_(1)
    with pytest.raises(RuntimeError, match="modified in place"):
        e.sum().backward()


# ---- einsum with repeated indices -----------------------------------------------------------------

@pytest.mark.parametrize("spec, shapes", [
    ("ii->", [(3, 3)]), ("ii->i", [(3, 3)]), ("iji->j", [(2, 3, 2)]), ("ii,i->", [(3, 3), (3,)]),
    ("iij->ij", [(2, 2, 4)]), ("iii->", [(2, 2, 2)]),
])
def test_einsum_gradients_with_repeated_indices(spec, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(lambda *a: tt.einsum(spec, *a), xs)
    assert gradgradcheck(lambda *a: tt.einsum(spec, *a), xs)
    tt.einsum(spec, *xs).sum().backward()
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch.einsum(spec, *ts).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


# ---- scatters keep NaN and inf in their own rows --------------------------------------------------

@pytest.mark.parametrize("kind", ["embedding", "int_index", "mask"])
def test_index_backward_keeps_nonfinite_upstream_in_its_row(device, kind):
    weight = np.arange(8.0).reshape(4, 2)
    ups = {"embedding": [[inf, 1.0], [1.0, nan], [2.0, -inf]], "mask": [[inf, 1.0], [1.0, nan]],
           "int_index": [[inf, 1.0], [1.0, nan], [-inf, 1]]}[kind]

    def run(m, w, dev):
        idx = m.tensor([0, 2, 0]) if dev is None else m.tensor([0, 2, 0], device=dev)
        mask = m.tensor([True, False, True, False]) if dev is None else m.tensor(
            [True, False, True, False], device=dev)
        if kind == "embedding":
            y = (torch.nn.functional.embedding(idx, w) if m is torch else tt.embedding(idx, w))
        else:
            y = w[idx] if kind == "int_index" else w[mask]
        return y

    w_tt = _t(weight, device, requires_grad=True)
    run(tt, w_tt, device).backward(_t(ups, device))
    w_torch = torch.tensor(weight, requires_grad=True)
    run(torch, w_torch, None).backward(torch.tensor(ups, dtype=torch.float64))
    np.testing.assert_array_equal(w_tt.grad.numpy(), w_torch.grad.numpy())


# ---- dtype rules ----------------------------------------------------------------------------------

def test_creation_dtypes_as_pytorch(device):
    cases = [np.float64(1.5), [np.float64(1.5), 2.0], [np.float32(1.5), 2.0], np.int32(1),
             [1, np.float64(2)], [1.5, 2.5], 3, np.array([1.0, 2.0])]
    for data in cases:
        assert tt.tensor(data, device=device).dtype.name == str(torch.tensor(data).dtype).split(".")[1], data


def test_integer_tensor_with_float_scalars_as_pytorch(device):
    x, xt = tt.arange(4, device=device), torch.arange(4)
    m = [True, False, False, True]
    for got, want in [
        (x.clamp(0.5, 2.5), xt.clamp(0.5, 2.5)), (x.clamp(1, 2), xt.clamp(1, 2)),
        (x.masked_fill(tt.tensor(m, device=device), 2.7), xt.masked_fill(torch.tensor(m), 2.7)),
        (tt.arange(4.0, device=device).masked_fill(tt.tensor(m, device=device), tt.tensor(2, device=device)),
         torch.arange(4.0).masked_fill(torch.tensor(m), torch.tensor(2))),
    ]:
        assert got.dtype.name == str(want.dtype).split(".")[1]
        np.testing.assert_array_equal(got.numpy(), want.numpy())


# ---- size-0 and 0-d edges -------------------------------------------------------------------------

def test_size_0_reductions_and_splits_as_pytorch(device):
    e, et = tt.zeros(0, 3, device=device, requires_grad=True), torch.zeros(0, 3, requires_grad=True)
    for f in [lambda m, x: m.softmax(x, 0), lambda m, x: m.softmax(x, 1), lambda m, x: m.log_softmax(x, 0),
              lambda m, x: m.logsumexp(x, 0), lambda m, x: m.logsumexp(x, 1), lambda m, x: x.amax(1),
              lambda m, x: x.argmax(1), lambda m, x: x.max(1)[0], lambda m, x: x.amin(1)]:
        got, want = f(tt, e), f(torch, et)
        assert got.shape == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
    assert [p.shape for p in e.split(2)] == [tuple(p.shape) for p in et.split(2)]
    assert [p.shape for p in e.chunk(2)] == [tuple(p.shape) for p in et.chunk(2)]
    assert [p.shape for p in tt.zeros(2, 0, device=device).chunk(3, 1)] == [(2, 0)] * 3
    for f in [lambda x: x.amax(0), lambda x: x.argmax(0), lambda x: x.max(0)]:
        with pytest.raises(IndexError):
            f(et)
        with pytest.raises(IndexError, match="size 0"):
            f(e)
    tt.logsumexp(e, 0).sum().backward()
    assert e.grad.shape == (0, 3)


def test_a_0d_result_is_an_array_and_updates_in_place(device):
    s = tt.tensor([1.0, 2.0], device=device).sum()
    s += 1
    assert s.item() == 4.0
    m = tt.tensor([1.0, 5.0], device=device).amax()
    m.mul_(2)
    assert m.item() == 10.0
    assert type(tt.tensor([True, False], device=device).all().array) is not np.bool_


# ---- forward errors keep their type ---------------------------------------------------------------

class _OddError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)


class _Raises(Function):
    def forward(self, x):
        raise _OddError(3, "bad")


class _RaisesValue(Function):
    def forward(self, x):
        raise ValueError("values out of range")


def test_forward_errors_are_the_original_exception_with_a_note(device):
    x = tt.zeros(2, 3, device=device)
    with pytest.raises(_OddError):
        _Raises.apply(x)
    with pytest.raises(ValueError, match="values out of range") as info:
        _RaisesValue.apply(x)
    assert any("_RaisesValue" in n and "(2, 3)" in n for n in info.value.__notes__)


# ---- in-place shapes and dtypes -------------------------------------------------------------------

def test_an_in_place_op_never_broadcasts_its_target(device):
    y = tt.tensor(1.0, device=device)
    with pytest.raises(RuntimeError, match=r"add_: output with shape \(\) doesn.t match"):
        y.add_(tt.tensor([2.0], device=device))
    with pytest.raises(RuntimeError):
        torch.tensor(1.0).add_(torch.tensor([2.0]))
    z = tt.zeros(2, 3, device=device)
    z.add_(tt.ones(3, device=device))  # the operand may broadcast
    np.testing.assert_array_equal(z.numpy(), np.ones((2, 3)))


def test_writes_into_integer_tensors_truncate_as_pytorch(device):
    w = tt.ones(1, requires_grad=True, device=device)
    y = tt.zeros(3, dtype=tt.int64, device=device)
    y[0] = w * 2.5  # an integer tensor has no gradient: the value is written, truncated
    assert not y.requires_grad and y.tolist() == [2, 0, 0]
    yt = torch.zeros(3, dtype=torch.int64)
    yt[0] = torch.ones(1, requires_grad=True) * 2.5
    assert yt.tolist() == y.tolist()
    y.copy_(tt.tensor([0.5, 1.7, -2.2], dtype=tt.float64, device=device))
    assert y.tolist() == [0, 1, -2]


def test_setitem_drops_leading_size_1_dims_of_the_value(device):
    w = tt.ones(1, 2, requires_grad=True, device=device)
    y = tt.zeros(3, device=device)
    y[1:] = w * 2.5
    y.sum().backward()
    assert y.tolist() == [0.0, 2.5, 2.5] and w.grad.shape == (1, 2) and w.grad.tolist() == [[2.5, 2.5]]


def test_in_place_results_of_a_higher_kind_are_refused_as_pytorch(device):
    b = tt.zeros(2, dtype=tt.bool, device=device)
    for write in (lambda t: t.add_(1), lambda t: t.clamp_(0, 2)):
        with pytest.raises(RuntimeError, match="can't be cast to the tensor's dtype bool"):
            write(b)
        with pytest.raises(RuntimeError):
            write(torch.zeros(2, dtype=torch.bool))


def test_einsum_sums_bools_as_integers_and_promotes_operands():  # einsum: numpy and cupy only
    b = tt.tensor([True, True, True])
    x = _t(-0.43, "cpu", requires_grad=True)
    got = tt.einsum("a,->", b, x)  # NumPy's einsum would add the bools in bool: True + True = True
    want = torch.einsum("a,->", torch.tensor([True] * 3), torch.tensor(-0.43, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-15)
    assert tt.einsum("a->", b).dtype is tt.int64 and tt.einsum("a->", b).item() == 3
    got.backward()
    assert x.grad.item() == 3.0


def test_full_prod_with_two_zeros_has_zero_gradient_beside_inf_and_nan(device):
    torch = pytest.importorskip("torch")
    a = np.array([[1.5, -np.inf, 2.0], [0.0, 1.0, 1.0], [np.nan, 0.5, 0.0]])
    x = tt.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    with np.errstate(invalid="ignore"):
        tt.prod(x).backward()
    torch.prod(tx).backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())  # zeros, as PyTorch's


def test_pow_zero_exponent_and_repeat_of_empty_dims_as_pytorch(device):
    torch = pytest.importorskip("torch")
    x = tt.tensor(1.2, device=device, requires_grad=True)
    tt.pow(x, 0.0).backward(tt.tensor(float("nan"), device=device))
    assert x.grad.item() == 0.0  # PyTorch: zeros for exponent 0, whatever the upstream gradient
    for shape, sizes in (((0,), (-1,)), ((0,), (1, -1)), ((0, 2), (-1, 2)), ((2,), (0,))):
        want = tuple(torch.ones(shape).repeat(*sizes).shape)
        assert tt.ones(*shape, device=device).repeat(*sizes).shape == want
    with pytest.raises(RuntimeError, match="negative dimension"):
        tt.ones(2, device=device).repeat(-1)
