"""Elementwise ops against PyTorch where the differential fuzzer found them apart: gradients at kinks with
inf/NaN inputs and upstream gradients (abs, relu, clamp, maximum/minimum), sign's zero gradient, integer
pow with negative exponents, bool arithmetic, comparisons and tests of values, clamp with min > max,
bool matmul, masked_fill's broadcasting. Every case runs on every device and is compared with PyTorch."""
import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt

torch = require_torch()
inf, nan = float("inf"), float("nan")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's 0 · inf, 1 / 0 warnings


def _pair(values, device, dtype="float64", requires_grad=False):
    """The same values as a tinytensor tensor on ``device`` and a torch tensor."""
    a = np.asarray(values, dtype=dtype)
    return (tt.tensor(a, device=device, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _same(ours, theirs):
    """Same dtype, shape and values (NaN where PyTorch has NaN)."""
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())


def _grads(fn_tt, fn_torch, device, upstream, *inputs):
    """The gradients of every input after fn(*inputs).backward(upstream), on both sides."""
    tts, tos = zip(*(_pair(x, device, requires_grad=True) for x in inputs))
    fn_tt(*tts).backward(tt.tensor(np.asarray(upstream), device=device))
    fn_torch(*tos).backward(torch.tensor(np.asarray(upstream)))
    return [t.grad for t in tts], [t.grad for t in tos]


# ---- gradients at kinks: inf/NaN inputs and upstream gradients -----------------------------------

X = [0.0, 0.0, 0.0, -0.0, 1.0, -1.0, nan, inf, -inf, nan]
UP = [inf, nan, 1.0, -inf, inf, nan, 1.0, 1.0, inf, nan]


@pytest.mark.parametrize("name, fn_tt, fn_torch", [
    # abs multiplies as PyTorch (grad · sign(x)): inf or NaN upstream at 0 is a loud NaN, NaN x gives 0
    ("abs", tt.abs, torch.abs),
    # relu selects: a NaN x passes the gradient (threshold_backward zeroes only x <= 0)
    ("relu", tt.relu, torch.relu),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5)),
    ("clamp_min", lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0)),
    ("clamp_max", lambda x: x.clamp(max=0.0), lambda x: x.clamp(max=0.0)),
    ("clamp_min_above_max", lambda x: x.clamp(3.0, -1.0), lambda x: x.clamp(3.0, -1.0)),
    ("sign", tt.sign, torch.sign),
    ("sqrt_abs", lambda x: tt.abs(x).sqrt(), lambda x: torch.abs(x).sqrt()),
    # the activations: selected where PyTorch selects (leaky_relu's slope, hardswish's 0 below -3),
    # multiplied where it multiplies (elu's α eˣ, softplus's σ, mish's formula)
    ("leaky_relu", lambda x: tt.leaky_relu(x, 0.1), lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    ("elu", lambda x: tt.elu(x, 2.0), lambda x: torch.nn.functional.elu(x, 2.0)),
    ("softplus", tt.softplus, torch.nn.functional.softplus),
    ("logsigmoid", tt.logsigmoid, torch.nn.functional.logsigmoid),
    ("hardswish", tt.hardswish, torch.nn.functional.hardswish),
    ("hardswish_at_3", lambda x: tt.hardswish(x * 3.0), lambda x: torch.nn.functional.hardswish(x * 3.0)),
    ("mish", tt.mish, torch.nn.functional.mish),
    ("selu", tt.selu, torch.selu),
    ("celu", lambda x: tt.celu(x, 0.5), lambda x: torch.celu(x, 0.5)),
    ("softsign", tt.softsign, torch.nn.functional.softsign),
    ("tanhshrink", tt.tanhshrink, torch.nn.functional.tanhshrink),
    ("threshold", lambda x: tt.threshold(x, 0.0, 2.0), lambda x: torch.threshold(x, 0.0, 2.0)),
    # (hardshrink's, softshrink's gradients at NaN depend on PyTorch's code path: fuzz.TORCH_PATH_DEPENDENT)
    # trigonometric and hyperbolic: PyTorch's formulas (asin's and acosh's rsqrt at ±1, atanh's pole)
    *((name, getattr(tt, name), getattr(torch, name)) for name in (
        "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erfc")),
    # (logit without eps: the sign of PyTorch's 1/0 at -0.0 depends on its code path)
    ("logit_eps", lambda x: tt.logit(x, 0.25), lambda x: torch.logit(x, 0.25)),
])
def test_unary_gradients_with_inf_and_nan_match_pytorch(device, name, fn_tt, fn_torch):
    (ours,), (theirs,) = _grads(fn_tt, fn_torch, device, UP, X)
    _same(ours, theirs)


def test_prelu_gradients_are_selected_as_pytorch(device):
    """An inf or NaN weight never reaches a positive x's gradient; one weight per channel sums over the
    rest."""
    x = [[1.0, -2.0, 0.0, nan, inf], [-inf, 3.0, -0.0, -1.0, 2.0]]
    for w in ([inf, nan], [0.25], [nan]):
        up = np.ones((2, 5)) if len(w) == 1 else [[1.0, inf, 1.0, 1.0, 1.0], [1.0, 1.0, nan, 2.0, 1.0]]
        ours, theirs = _grads(lambda a, b: tt.prelu(a.t(), b), lambda a, b: torch.prelu(a.t(), b), device,
                              np.asarray(up).T, x, w)
        for o, t in zip(ours, theirs):
            _same(o, t)


A = [1.0, nan, 2.0, inf, -inf, nan, 1.0, 3.0, 0.0, -1.0]
B = [nan, 1.0, 2.0, inf, -inf, nan, 3.0, 1.0, -0.0, -1.0]
G = [1.0, 1.0, inf, nan, 1.0, 1.0, inf, -inf, nan, 2.0]


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_gradients_with_nan_ties_and_inf_match_pytorch(device, op):
    """PyTorch masks out only the loser (a < b for maximum's a): a NaN on either side loses to
    nothing, so both operands get the whole gradient; ties split it in halves."""
    ours, theirs = _grads(getattr(tt, op), getattr(torch, op), device, G, A, B)
    for o, t in zip(ours, theirs):
        _same(o, t)


def test_maximum_gradient_of_a_broadcast_operand_against_nan_sums_both_rows(device):
    a = [[1.0, -1.0]]
    b = [[[inf]], [[nan]]]  # broadcast to (2, 1, 2)
    up = np.arange(4.0).reshape(2, 1, 2)
    ours, theirs = _grads(tt.minimum, torch.minimum, device, up, a, b)
    for o, t in zip(ours, theirs):
        _same(o, t)


def test_abs_at_zero_times_an_inf_upstream_is_nan_as_pytorch(device):
    """The fuzzer's finding A1, as it was found: sqrt'(0) = inf reaches abs at 0."""
    x, xt = _pair(0.0, device, "float32", requires_grad=True)
    (g,) = tt.autograd.grad(tt.sqrt(tt.abs(x)), x, tt.tensor(np.float32(-0.315), device=device))
    (gt,) = torch.autograd.grad(torch.sqrt(torch.abs(xt)), xt, torch.tensor(np.float32(-0.315)))
    assert np.isnan(g.numpy()) and np.isnan(gt.numpy())


# ---- sign: differentiable with a zero gradient --------------------------------------------------

def test_sign_requires_grad_and_its_gradient_is_zeros_whatever_the_upstream(device):
    x, xt = _pair([[1.0, -2.0, 0.0]], device, requires_grad=True)
    y, yt = tt.sign(x), torch.sign(xt)
    assert y.requires_grad and yt.requires_grad
    up = np.array([[inf, nan, 1.0]])
    (g,) = tt.autograd.grad(y, x, tt.tensor(up, device=device))
    (gt,) = torch.autograd.grad(yt, xt, torch.tensor(up))
    _same(g, gt)
    assert g.shape == x.shape
    # through a chain: (x * sign(x)).sum() is |x|'s sum, with sign a constant factor
    x.grad = None
    (x * tt.sign(x)).sum().backward()
    (xt * torch.sign(xt)).sum().backward()
    _same(x.grad, xt.grad)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_sign_values_and_dtypes_match_pytorch(device, dtype):
    values = [True, False, True] if dtype == "bool" else \
        [3, -2, 0] if dtype == "int64" else [nan, -0.0, 0.0, inf, -inf, -2.5]
    x, xt = _pair(values, device, dtype)
    _same(tt.sign(x), torch.sign(xt))  # NaN gives 0, a bool tensor stays itself
    assert not tt.sign(x).requires_grad


def test_sign_of_an_integer_tensor_never_requires_grad(device):
    assert not tt.sign(tt.tensor([1, -2], device=device)).requires_grad


# ---- pow of integers by negative integer exponents -----------------------------------------------

@pytest.mark.parametrize("base_dtype", ["int64", "bool"])
def test_integer_pow_by_a_negative_integer_tensor_matches_pytorch(device, base_dtype):
    base = [2, 1, -1, 0, -2, 3, -1, 5] if base_dtype == "int64" else [True, False, True, False] * 2
    x, xt = _pair(base, device, base_dtype)
    e, et = _pair([-3, -1, -1, -1, -1, -2, -2, 2], device, "int64")
    _same(tt.pow(x, e), torch.pow(xt, et))
    _same(x**e, xt**et)
    _same(2**e, 2**et)  # a Python base


@pytest.mark.parametrize("exponent", [3, 3.0, -2, -2.0, -0.5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_pow_by_exponents_pytorch_writes_as_products_matches_it_bit_for_bit(device, dtype, exponent):
    """x**3, x**-2 and x**-0.5 (GELU's tanh form, inverse squares and roots): PyTorch's CPU kernel computes
    x·x·x, 1/(x·x) and 1/√x, so these values and their gradients are PyTorch's exactly, on the CPU."""
    values = [0.0, -0.0, 1.5, -2.25, 3.0, 1e20, -1e-3, inf, -inf, nan, 7.0, 0.1]
    if exponent == -0.5:
        values = [abs(v) for v in values]
    (x, xt), g = _pair(values, device, dtype, requires_grad=True), np.linspace(-1, 1, len(values))
    y, yt = x**exponent, xt**exponent
    if device == "cpu":
        _same(y, yt)
    else:  # the reference kernel (pow itself): within an ulp or two, and 1e20**-2 a subnormal, not 0
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-6 if dtype == "float32" else 1e-15,
                                   atol=1e-30)
    y.backward(tt.tensor(g.astype(dtype), device=device))
    yt.backward(torch.tensor(g.astype(dtype)))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6 if dtype == "float32" else 1e-15)


def test_integer_pow_by_a_negative_python_int_raises_as_pytorch(device):
    x, xt = _pair([2, 3], device, "int64")
    with pytest.raises(RuntimeError, match="negative integer powers"):
        xt ** -1
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        x ** -1


# ---- bools: arithmetic is logic, sub is refused --------------------------------------------------

M1, M2 = [True, False, True, False], [True, True, False, False]


@pytest.mark.parametrize("expr", [
    lambda m, a, b: a + b, lambda m, a, b: m.add(a, b), lambda m, a, b: a * b, lambda m, a, b: m.mul(a, b),
    lambda m, a, b: a + True, lambda m, a, b: False * a, lambda m, a, b: a + 1, lambda m, a, b: a * 2.5,
    lambda m, a, b: m.maximum(a, b), lambda m, a, b: m.minimum(a, b),
    lambda m, a, b: a < b, lambda m, a, b: a <= b, lambda m, a, b: a > b, lambda m, a, b: a >= b,
    lambda m, a, b: a == b, lambda m, a, b: a != b, lambda m, a, b: a < True, lambda m, a, b: a >= False,
    lambda m, a, b: m.isfinite(a), lambda m, a, b: m.isnan(a), lambda m, a, b: a / b,
    lambda m, a, b: m.clamp(a, 0, 1), lambda m, a, b: m.where(a, b, False),
])
def test_bool_tensors_give_pytorchs_answer_on_every_device(device, expr):
    (a, at), (b, bt) = _pair(M1, device, "bool"), _pair(M2, device, "bool")
    _same(expr(tt, a, b), expr(torch, at, bt))


def test_in_place_bool_arithmetic_gives_pytorchs_answer(device):
    (a, at), (b, bt) = _pair(M1, device, "bool"), _pair(M2, device, "bool")
    a.add_(b)
    at.add_(bt)
    _same(a, at)
    a.mul_(b)
    at.mul_(bt)
    _same(a, at)


@pytest.mark.parametrize("expr", [
    lambda a, b, f: a - b, lambda a, b, f: a - 1, lambda a, b, f: 1 - a, lambda a, b, f: f - a,
    lambda a, b, f: f - True, lambda a, b, f: a.sub_(b),
])
def test_sub_with_a_bool_operand_raises_as_pytorch(device, expr):
    (a, at), (b, bt), (f, ft) = (_pair(M1, device, "bool"), _pair(M2, device, "bool"),
                                 _pair([1.0, 2.0, 3.0, 4.0], device))
    with pytest.raises(RuntimeError, match="Subtraction"):
        expr(at, bt, ft)
    with pytest.raises(TypeError, match=r"sub: .*bool.*logical_xor.*~"):
        expr(a, b, f)


# ---- clamp with min > max: max everywhere, NaN stays NaN -----------------------------------------

@pytest.mark.parametrize("dtype, lo, hi", [("float64", 3, -0.0), ("float32", 1.5, -1.5), ("int64", 3, 1),
                                           ("int64", 2.5, 0.5)])
@pytest.mark.parametrize("how", ["clamp", "clip"])
def test_clamp_with_min_above_max_gives_max_as_pytorch(device, dtype, lo, hi, how):
    values = [[nan, 1.0, 5.0, -inf]] if dtype != "int64" else [[-4, 1, 7, 2]]
    x, xt = _pair(values, device, dtype)
    _same(getattr(x, how)(lo, hi), getattr(xt, how)(lo, hi))


# ---- matmul of bools: PyTorch answers only when an operand is empty ------------------------------

@pytest.mark.parametrize("sa, sb", [((3, 0), (0,)), ((2, 0), (0, 3)), ((2, 3), (3, 0)), ((0,), (0, 2)),
                                    ((2, 2, 0), (0, 2)), ((3,), (3,)), ((0,), (0,)), ((2, 2), (2, 2)),
                                    ((2, 1, 3), (3, 2))])
def test_bool_matmul_raises_where_pytorch_raises_and_answers_where_it_answers(device, sa, sb):
    a, at = _pair(np.ones(sa, dtype=bool), device, "bool")
    b, bt = _pair(np.ones(sb, dtype=bool), device, "bool")
    try:
        want = at @ bt
    except (RuntimeError, NotImplementedError):
        with pytest.raises(TypeError, match="matmul: two bool tensors"):
            a @ b
        return
    _same(a @ b, want)


def test_mixed_dtype_matmul_promotes(device):
    """A deliberate extension (fuzz.EXTENSIONS): PyTorch refuses, tinytensor promotes as every binary op."""
    (a, at), (b, bt) = _pair([[1.0, 2.0]], device, "float32"), _pair([[3.0], [4.0]], device, "float64")
    with pytest.raises(RuntimeError):
        at @ bt
    out = a @ b
    assert out.dtype is tt.float64
    np.testing.assert_array_equal(out.numpy(), [[11.0]])


# ---- masked_fill ----------------------------------------------------------------------------------

def test_masked_fill_broadcasts_x_with_a_larger_mask_as_pytorch(device):
    (x, xt), (m, mt) = _pair(-0.5, device), _pair([False, True], device, "bool")
    _same(tt.masked_fill(x, m, 0.0), xt.masked_fill(mt, 0.0))
    with pytest.raises(RuntimeError):
        xt.masked_fill_(mt, 0.0)
    with pytest.raises(RuntimeError, match="masked_fill_"):
        x.masked_fill_(m, 0.0)  # in place, x keeps its shape


def test_masked_fill_of_an_integer_tensor_with_a_value_that_requires_grad_raises_as_pytorch(device):
    (x, xt), (m, mt) = _pair([1, 2], device, "int64"), _pair([True, False], device, "bool")
    v, vt = _pair(0.5, device, "float32", requires_grad=True)
    with pytest.raises(RuntimeError):
        xt.masked_fill(mt, vt)
    with pytest.raises(RuntimeError, match="masked_fill: the value requires grad"):
        x.masked_fill(m, v)
    _same(x.masked_fill(m, v.detach()), xt.masked_fill(mt, vt.detach()))


def test_where_pytorchs_answer_depends_on_its_kernel_path_tinytensor_gives_one(device):
    """fuzz.TORCH_PATH_DEPENDENT: PyTorch's hardtanh gradient at NaN is 0 or gy by the element's SIMD lane,
    its float32 gelu(inf) NaN where float64's is inf. Here: NaN passes hardtanh's gradient (its scalar
    path's answer, and relu's rule), and gelu(inf) is inf in every dtype."""
    for f in (tt.hardtanh, tt.relu6, lambda x: tt.hardtanh(x, -2.0, 0.5)):
        x = tt.tensor([nan, 0.25, nan], device=device, requires_grad=True)
        f(x).backward(tt.tensor([2.0, 3.0, -1.0], device=device))
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 3.0, -1.0])
    x = tt.tensor([-1.0, 1.0, 6.0, 0.0], device=device, requires_grad=True)  # 0 at both ends, as PyTorch
    tt.hardtanh(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0])
    for dtype in ("float32", "float64"):
        g = tt.gelu(tt.tensor(np.array([inf, 1.0], dtype=dtype), device=device))
        np.testing.assert_array_equal(g.numpy()[:1], [inf])


def test_prod_with_two_zeros_selects_a_zero_gradient_as_pytorch(device):
    """A full product with two zeros has gradient 0 even under an inf or NaN upstream (PyTorch returns
    zeros there); along a dim it multiplies, as PyTorch's."""
    for up in (nan, inf):
        (ours,), (theirs,) = _grads(tt.prod, torch.prod, device, up, [1.0, 0.0, 0.0])
        _same(ours, theirs)
    (ours,), (theirs,) = _grads(tt.prod, torch.prod, device, nan, [1.0, 0.0, 2.0])
    _same(ours, theirs)
