"""Reliability of the autograd engine: deep graphs, shared inputs, retain_graph, hooks, grad modes,
autograd.grad, anomaly detection, dtype rules, tie conventions, in-place checks, custom Functions."""
import os
import pathlib
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
from tinytensor.autograd import Function, gradcheck, gradgradcheck


def _t(values, device, dtype=tt.float64, requires_grad=False):
    return tt.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device,
                     requires_grad=requires_grad)


# ---- deep graphs ------------------------------------------------------------------------------

def test_100k_deep_chain_forward_and_backward():
    x = tt.tensor([1.0, 2.0], dtype=tt.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.00001**100_000] * 2, rtol=1e-9)


def test_100k_deep_graph_is_freed_without_stack_overflow():
    """Dropping a 100,000-op graph that was never walked (and one that was) must not recurse
    through the graph in deallocation; run in a child so a crash is a failure, not a dead run."""
    code = textwrap.dedent("""
        import gc, weakref, tinytensor as tt
        for walk in (False, True):
            x = tt.tensor([1.0], requires_grad=True)
            y = x
            for _ in range(100_000):
                y = y + 1.0
            first = weakref.ref(y.grad_fn)
            if walk:
                y.sum().backward()
            del y
            gc.collect()
            assert first() is None, "graph not freed"
        print("ok")
    """)
    root = str(pathlib.Path(tt.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# ---- shared inputs ------------------------------------------------------------------------------

def test_x_plus_x(device):
    x = _t([1.0, -2.0, 3.0], device, requires_grad=True)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])


def test_diamond_graph(device):
    x = _t([0.5, -1.5], device, requires_grad=True)
    a = x.exp()
    b = a * 2.0  # two paths from a to d
    c = a.sin()
    d = (b * c).sum()
    d.backward()
    xv = np.array([0.5, -1.5])
    ea = np.exp(xv)
    want = (2 * np.sin(ea) + 2 * ea * np.cos(ea)) * ea  # d/dx [2 e^x sin(e^x)]
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)


def test_multi_output_node_used_twice(device):
    x = _t(np.arange(6.0).reshape(3, 2), device, requires_grad=True)
    a, b, c = x.chunk(3, 0)
    (a * 1.0 + b * 2.0 + c * 3.0).sum().backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1], [2, 2], [3, 3]])
    (g,) = tt.autograd.grad([a, b], [x], [tt.ones_like(a), tt.ones_like(b) * 2.0])
    np.testing.assert_array_equal(g.numpy(), [[1, 1], [2, 2], [0, 0]])


def test_gradients_accumulate_across_backward_calls(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 4.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0])


# ---- retain_graph ------------------------------------------------------------------------------

def test_second_backward_without_retain_graph_raises(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])


def test_nodes_that_saved_nothing_serve_several_backwards(device):
    """As PyTorch's: a view (or sum) made once outside a loop, here w.t(), is part of every step's graph;
    its node saved no tensor, so backward runs through it again without retain_graph. The next step's
    own nodes that saved tensors are fresh; a second backward through those still raises."""
    w = _t([[1.0, 2.0], [3.0, 4.0]], device, requires_grad=True)
    w_t = w.t()
    for step in range(2):
        x = _t([[1.0, 1.0]], device, requires_grad=True)
        loss = (x @ w_t).sum()
        loss.backward()
        np.testing.assert_array_equal(w.grad.numpy(), [[step + 1.0] * 2] * 2)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()  # MatMul saved x and w_t: freed
    s = w.sum()
    s.backward()
    s.backward()  # Sum saved nothing
    np.testing.assert_array_equal(w.grad.numpy(), [[4.0, 4.0], [4.0, 4.0]])


# ---- hooks and retain_grad ----------------------------------------------------------------------

def test_leaf_hook_sees_and_replaces_the_gradient(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))  # returns None: grad unchanged
    x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])


def test_non_leaf_hook_replaces_the_gradient_flowing_on(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()) or g + 1.0)
    (y * y).sum().backward()
    np.testing.assert_array_equal(seen[0], [4.0, 8.0])  # dL/dy = 2y
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 18.0])  # (2y + 1) * 2
    assert y.grad is None  # a non-leaf keeps no .grad unless retain_grad()


def test_retain_grad(device):
    x = _t([1.0, -2.0], device, requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    z = y.tanh()
    (z * z).sum().backward()
    yv = np.array([3.0, -6.0])
    np.testing.assert_allclose(y.grad.numpy(), 2 * np.tanh(yv) * (1 - np.tanh(yv) ** 2), rtol=1e-12)
    assert z.grad is None


def test_hook_on_tensor_without_grad_raises(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        _t([1.0], device).register_hook(lambda g: g)


# ---- grad modes ----------------------------------------------------------------------------------

def test_no_grad_and_enable_grad_nest(device):
    x = _t([1.0], device, requires_grad=True)
    assert tt.is_grad_enabled()
    with tt.no_grad():
        assert not tt.is_grad_enabled()
        assert not (x * 2).requires_grad
        with tt.enable_grad():
            assert tt.is_grad_enabled()
            y = x * 2
            assert y.requires_grad and y.grad_fn is not None
            with tt.no_grad():
                assert not (x * 2).requires_grad
            assert tt.is_grad_enabled()
        assert not tt.is_grad_enabled()
    assert tt.is_grad_enabled()


def test_no_grad_as_decorator_and_restored_after_exceptions():
    @tt.no_grad()
    def f(x):
        return x * 2

    x = tt.ones(2, requires_grad=True)
    assert not f(x).requires_grad
    with pytest.raises(ValueError):
        with tt.no_grad():
            raise ValueError
    assert tt.is_grad_enabled()


def test_grad_mode_is_per_thread():
    """no_grad in one thread does not leak into another running at the same time."""
    entered, release = threading.Event(), threading.Event()
    seen = {}

    def worker_no_grad():
        with tt.no_grad():
            entered.set()
            release.wait(10)
            seen["worker_inside"] = tt.is_grad_enabled()

    t = threading.Thread(target=worker_no_grad)
    t.start()
    entered.wait(10)
    seen["main_while_worker_in_no_grad"] = tt.is_grad_enabled()
    x = tt.ones(2, requires_grad=True)
    seen["main_records"] = (x * 2).requires_grad
    release.set()
    t.join()

    def worker_default():
        seen["fresh_thread"] = tt.is_grad_enabled()

    with tt.no_grad():
        t2 = threading.Thread(target=worker_default)
        t2.start()
        t2.join()
    assert seen == {"worker_inside": False, "main_while_worker_in_no_grad": True,
                    "main_records": True, "fresh_thread": True}


def test_backward_in_threads():
    """Independent graphs built and walked concurrently give the right gradients."""
    errors, results = [], {}

    def work(k):
        try:
            for _ in range(20):
                x = tt.tensor([float(k)], dtype=tt.float64, requires_grad=True)
                y = x
                for _ in range(50):
                    y = (y * 1.01).tanh() + x
                y.sum().backward()
            results[k] = x.grad.item()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):  # the same computation single-threaded
        x = tt.tensor([float(k)], dtype=tt.float64, requires_grad=True)
        y = x
        for _ in range(50):
            y = (y * 1.01).tanh() + x
        y.sum().backward()
        assert results[k] == pytest.approx(x.grad.item(), rel=1e-12)


# ---- autograd.grad ---------------------------------------------------------------------------------

def test_grad_returns_gradients_without_touching_dot_grad(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    y = _t([3.0, 4.0], device, requires_grad=True)
    gx, gy = tt.autograd.grad((x * y).sum(), [x, y])
    np.testing.assert_array_equal(gx.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None


def test_grad_create_graph_gives_higher_derivatives(device):
    x = _t([0.5, -1.0], device, requires_grad=True)
    (g,) = tt.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(g.numpy(), 3 * np.array([0.5, -1.0]) ** 2)
    (h,) = tt.autograd.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(h.numpy(), 6 * np.array([0.5, -1.0]))
    (k,) = tt.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(k.numpy(), [6.0, 6.0])


def test_backward_create_graph(device):
    x = _t([0.5, -1.0], device, requires_grad=True)
    (x.sin() * x).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    (h,) = tt.autograd.grad(g.sum(), x)
    xv = np.array([0.5, -1.0])
    np.testing.assert_allclose(h.numpy(), 2 * np.cos(xv) - xv * np.sin(xv), rtol=1e-12)


def test_grad_allow_unused(device):
    x = _t([1.0], device, requires_grad=True)
    z = _t([2.0], device, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tt.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = tt.autograd.grad(y, [x, z], allow_unused=True)
    np.testing.assert_array_equal(gx.numpy(), [2.0])
    assert gz is None


def test_grad_of_non_leaf_and_grad_outputs(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    h = x * 3.0
    y = h * h
    (gh,) = tt.autograd.grad(y, h, grad_outputs=_t([1.0, 0.5], device))
    np.testing.assert_allclose(gh.numpy(), [6.0, 6.0])


def test_gradcheck_and_gradgradcheck_on_composite(device):
    x = _t([[0.3, -0.7], [1.1, 0.2]], device, requires_grad=True)
    w = _t([[0.5, 1.5], [-0.4, 0.9]], device, requires_grad=True)

    def f(x, w):
        return ((x @ w).tanh() * x.sigmoid()).softmax(-1).log()

    assert gradcheck(f, [x, w])
    assert gradgradcheck(f, [x, w])


def test_gradcheck_detects_wrong_gradients():
    class Bad(Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):
            x = gy  # wrong: ignores x
            return x

    x = tt.tensor([0.5, 2.0], dtype=tt.float64, requires_grad=True)
    assert gradcheck(Bad.apply, [x], raise_exception=False) is False
    with pytest.raises(AssertionError):
        gradcheck(Bad.apply, [x])


# ---- anomaly detection -------------------------------------------------------------------------------

def test_detect_anomaly_names_the_op(device):
    x = _t([0.0, 1.0], device, requires_grad=True)
    y = x.sqrt().sum()  # d/dx sqrt(x) = inf at 0
    with tt.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(RuntimeError, match="Sqrt"):
            y.backward(retain_graph=True)
    with np.errstate(divide="ignore"):
        y.backward()  # outside detect_anomaly the inf simply propagates
    assert np.isinf(x.grad.numpy()[0])


# ---- dtype preservation --------------------------------------------------------------------------------

SCALARS = [2.5, 2, np.float64(2.5), np.float32(2.5), np.array(2.5), np.int64(2), True]


@pytest.mark.parametrize("s", SCALARS, ids=lambda s: f"{type(s).__name__}")
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_float32_stays_float32_with_scalars(device, s, op):
    import operator

    f = getattr(operator, {"div": "truediv"}.get(op, op))
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    if op == "sub" and isinstance(s, bool):  # PyTorch refuses subtraction with a bool: so do we
        with pytest.raises(TypeError, match="sub"):
            f(x, s)
        return
    for out in (f(x, s), f(s, x)):
        assert out.dtype is tt.float32, (op, type(s), out.dtype)
        out.sum().backward()
        assert x.grad.dtype is tt.float32
        x.grad = None


def test_float16_and_float64_keep_their_dtype_with_python_floats(device):
    xp = tt.backends.for_device(device).xp
    for dt in (tt.float16, tt.float64) if hasattr(xp, "float16") else (tt.float64,):  # not in the standard
        x = tt.ones(2, dtype=dt, device=device)
        assert (x * 0.1).dtype is dt and (0.1 + x).dtype is dt and (x / 3).dtype is dt


def test_zero_dim_tensor_does_not_widen(device):
    x = tt.ones(3, device=device, requires_grad=True)
    s = tt.tensor(2.0, dtype=tt.float64, device=device, requires_grad=True)
    for out in (x * s, s * x, x + s, s - x):
        assert out.dtype is tt.float32
    (x * s).sum().backward()
    assert x.grad.dtype is tt.float32 and s.grad.dtype is tt.float64
    assert (tt.ones(3, dtype=tt.float64, device=device) * tt.ones(3, device=device)).dtype is tt.float64


def test_integer_tensor_ops_promote_like_torch(device):
    i = tt.tensor([1, 2, 3], device=device)
    assert i.dtype is tt.int64
    assert (i * 2).dtype is tt.int64
    assert (i * 2.5).dtype is tt.float32
    assert (i / 2).dtype is tt.float32
    assert i.exp().dtype is tt.float32
    assert (i + tt.ones(3, device=device)).dtype is tt.float32


# ---- tie conventions ----------------------------------------------------------------------------------

def _grad_of(fn, values, device):
    x = _t(values, device, requires_grad=True)
    out = fn(x)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()
    return x.grad.numpy()


TIES = [[1.0, 3.0, 3.0, 2.0], [[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]]]


def test_amax_amin_split_ties_equally(device):
    np.testing.assert_array_equal(_grad_of(lambda x: x.amax(), TIES[0], device), [0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(_grad_of(lambda x: tt.amin(x, 1), TIES[1], device),
                                  [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(_grad_of(lambda x: tt.amax(x, 1), TIES[1], device),
                                  [[0.5, 0.5, 0], [0, 0.5, 0.5]])
    np.testing.assert_array_equal(_grad_of(lambda x: x.max(), TIES[0], device), [0, 0.5, 0.5, 0])


def test_max_dim_routes_the_gradient_to_the_returned_index(device):
    x = _t(TIES[1], device, requires_grad=True)
    values, idx = x.max(dim=1)
    np.testing.assert_array_equal(idx.numpy(), [0, 1])  # the first maximum
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(_grad_of(lambda x: x.min(dim=0), [[1.0, 2.0], [1.0, 0.0]], device),
                                  [[1, 0], [0, 1]])


def test_maximum_minimum_split_ties_equally(device):
    a = _t([1.0, 2.0, 3.0], device, requires_grad=True)
    b = _t([1.0, 5.0, 3.0], device, requires_grad=True)
    (tt.maximum(a, b) + tt.minimum(a, b) * 10.0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [5.5, 10.0, 5.5])
    np.testing.assert_array_equal(b.grad.numpy(), [5.5, 1.0, 5.5])


def test_tie_conventions_match_torch():
    torch = require_torch()
    cases = [
        (lambda x: x.amax(), lambda x: x.amax(), TIES[0]),
        (lambda x: tt.amax(x, 1), lambda x: torch.amax(x, 1), TIES[1]),
        (lambda x: tt.amin(x, (0, 1)), lambda x: torch.amin(x, (0, 1)), [[1.0, 0.0], [0.0, 2.0]]),
        (lambda x: x.max(), lambda x: x.max(), TIES[0]),
        (lambda x: x.min(), lambda x: x.min(), [[2.0, 1.0], [1.0, 1.0]]),
        (lambda x: x.max(dim=1)[0], lambda x: x.max(dim=1).values, TIES[1]),
        (lambda x: x.min(dim=0)[0], lambda x: x.min(dim=0).values, [[1.0, 2.0], [1.0, 0.0]]),
        (lambda x: tt.maximum(x, x * 1.0), lambda x: torch.maximum(x, x * 1.0), TIES[0]),
        (lambda x: tt.minimum(x, tt.ones_like(x) * 2.0), lambda x: torch.minimum(x, torch.ones_like(x) * 2.0),
         [1.0, 2.0, 3.0]),
        (lambda x: x.clamp(2.0, 3.0), lambda x: x.clamp(2.0, 3.0), [1.0, 2.0, 2.5, 3.0, 4.0]),
        (lambda x: x.relu(), lambda x: x.relu(), [-1.0, 0.0, 1.0]),
        (lambda x: x.abs(), lambda x: x.abs(), [-1.0, 0.0, 1.0]),
    ]
    for ours, theirs, values in cases:
        xt = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        theirs(xt).sum().backward()
        np.testing.assert_array_equal(_grad_of(ours, values, "cpu"), xt.grad.numpy(), err_msg=str(values))


# ---- in-place checks --------------------------------------------------------------------------------

def test_inplace_on_saved_input_raises(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    b = x * 1.0
    c = b * b  # saves b
    with tt.no_grad():
        b.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        c.sum().backward()


def test_inplace_on_saved_constant_raises(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    w = _t([3.0, 4.0], device)
    y = x * w
    w.mul_(2.0)  # w needs no grad, so this is allowed, but y's backward needs the old w
    with pytest.raises(RuntimeError, match="Mul.*modified in place"):
        y.sum().backward()


def test_inplace_through_a_view_raises(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    w = _t([[3.0, 4.0]], device)
    y = x * w
    w.reshape(2)[0] = 10.0  # a view shares its base's version counter
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


def test_inplace_on_saved_output_raises(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    y = x.exp()  # saves its output
    with tt.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="Exp"):
        y.sum().backward()


def test_inplace_on_tensor_requiring_grad_raises_outside_no_grad(device):
    x = _t([1.0, 2.0], device, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        x += 1.0
    y = x * 2
    y[0] = 5.0  # a non-leaf: the write is recorded (as PyTorch), the overwritten entry gets no gradient
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0])
    with tt.no_grad():
        x += 1.0
    np.testing.assert_array_equal(x.numpy(), [2.0, 3.0])


# ---- integer and bool tensors -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [tt.int32, tt.int64, tt.bool])
def test_integer_and_bool_tensors_cannot_require_grad(device, dtype):
    with pytest.raises(TypeError, match="floating"):
        tt.tensor([1, 0], dtype=dtype, device=device, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        tt.zeros(2, dtype=dtype, device=device, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        tt.tensor([1, 0], dtype=dtype, device=device).requires_grad_()


def test_outputs_of_non_differentiable_ops_do_not_require_grad(device):
    x = _t([[1.0, 3.0], [2.0, 0.0]], device, requires_grad=True)
    for out in (x.argmax(), x.argmin(1), x > 1.0, x == x, x.isfinite(), x.max(dim=0)[1]):
        assert not out.requires_grad


# ---- custom Functions -----------------------------------------------------------------------------------

class Cube(Function):
    """x³, saving its input: d/dx = 3x²"""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x * x

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * 3.0 * x * x


class ScaledSwap(Function):
    """(a, b, k) -> (k b, a): two outputs and a trailing non-tensor option."""

    def forward(self, a, b, k):
        self.k = k
        return b * k, self.xp.asarray(a, copy=True)

    def backward(self, g0, g1):
        return g1, g0 * self.k


def test_custom_function_gradcheck(device):
    x = _t([[0.3, -1.2], [0.7, 2.0]], device, requires_grad=True)
    assert gradcheck(Cube.apply, [x])
    assert gradgradcheck(Cube.apply, [x])
    a = _t([0.5, 1.0], device, requires_grad=True)
    b = _t([-1.0, 2.0], device, requires_grad=True)
    assert gradcheck(lambda a, b: ScaledSwap.apply(a, b, 3.0), [a, b])
    out0, out1 = ScaledSwap.apply(a, b, 3.0)
    out0.sum().backward()  # only one output used: the other gets a zero gradient
    np.testing.assert_array_equal(b.grad.numpy(), [3.0, 3.0])
    assert a.grad is None or not a.grad.numpy().any()


def test_custom_function_returning_wrong_number_of_grads_is_named():
    class TwoIn(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return (gy, gy, gy)

    a = tt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="TwoIn.backward returned 3 gradients for 2 inputs"):
        TwoIn.apply(a, tt.ones(2)).sum().backward()


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 2)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)),
                                              ((1, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2)),
                                              ((4,), (4, 2)), ((3, 4), (4,))])
@pytest.mark.parametrize("upstream", ["sum", "random"])
def test_matmul_backward_on_arrays_equals_its_tensor_op_form(device, a_shape, b_shape, upstream):
    """With no graph being recorded MatMul's backward computes on the arrays; under create_graph=True it
    uses Tensor ops. The same kernels: the same gradients bit for bit (broadcast batch dims, one matrix
    for a stack, 1-D operands, the zero-strided gradient of a sum)."""
    rng = np.random.default_rng(0)
    a = tt.tensor(rng.standard_normal(a_shape), device=device, requires_grad=True)
    b = tt.tensor(rng.standard_normal(b_shape), device=device, requires_grad=True)
    grads = []
    for create_graph in (False, True):
        y = a @ b
        weights = tt.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)), device=device)
        out = y.sum() if upstream == "sum" else (y * weights).sum()
        grads.append(tt.autograd.grad(out, [a, b], create_graph=create_graph))
    for plain, recorded in zip(*grads):
        np.testing.assert_array_equal(plain.numpy(), recorded.detach().numpy())


@pytest.mark.parametrize("op", ["div", "div_scalar", "rdiv_scalar", "mul", "mul_scalar", "add", "sub", "var",
                                "std", "std_all", "std_zero"])
@pytest.mark.parametrize("dtype", [tt.float64, tt.float32])
def test_small_op_backward_on_arrays_equals_its_tensor_op_form(device, op, dtype):
    """Mul's, div's, var's and std's backward, and the sums that undo broadcasting in every binary op's,
    compute on the arrays when no graph is recorded (as MatMul's);
    under create_graph=True they use Tensor ops: the same gradients bit for bit, broadcast operands,
    a zero standard deviation (gradient 0, as PyTorch) and an inf upstream gradient included."""
    rng = np.random.default_rng(0)
    a = tt.tensor(rng.standard_normal((3, 4, 5)), dtype=dtype, device=device, requires_grad=True)
    b = tt.tensor(rng.uniform(0.5, 2, (4, 1)), dtype=dtype, device=device, requires_grad=True)
    weights = tt.tensor(rng.standard_normal((3, 4, 1)), dtype=dtype, device=device)
    fns = {"div": lambda: a / b, "div_scalar": lambda: a / 3.0, "rdiv_scalar": lambda: 3.0 / b,
           "mul": lambda: a * b, "mul_scalar": lambda: a * 3.0, "add": lambda: a + b, "sub": lambda: a - b,
           "var": lambda: a.var(dim=-1, keepdim=True), "std": lambda: a.std(dim=(0, 2), keepdim=True),
           "std_all": lambda: a.std(), "std_zero": lambda: (a * 0).std(dim=-1, keepdim=True) * weights}
    grads = []
    for create_graph in (False, True):
        y = fns[op]()
        upstream = tt.ones_like(y) if op != "var" else tt.full(tuple(y.shape), float("inf"), dtype=dtype,
                                                                 device=device)
        inputs = [t for t in (a, b) if op in ("div", "rdiv_scalar", "mul", "add", "sub") or t is a]
        inputs = [b] if op == "rdiv_scalar" else inputs
        grads.append(tt.autograd.grad((y * upstream).sum() if op != "var" else y, inputs,
                                      grad_outputs=None if op != "var" else upstream,
                                      create_graph=create_graph))
    for plain, recorded in zip(*grads):
        np.testing.assert_array_equal(plain.numpy(), recorded.detach().numpy())
