"""autograd.forward_ad: dual tensors carry tangents through every op (each Function's jvp). The
per-op rules are checked on the whole catalogue by the conformance suite (tests/test_ops.py,
test_op_jvp); here: the API, nesting, composition with reverse mode, parity with
torch.autograd.forward_ad, and the errors."""
import math

import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
from tinytensor.autograd import Function
from tinytensor.autograd import forward_ad as fwAD
from tinytensor_nn import functional as F

torch = require_torch()


def t64(values, device):
    return tt.tensor(np.asarray(values, dtype=np.float64), device=device)


def test_a_dual_number(device):
    x0 = 0.7
    with fwAD.dual_level():
        x = fwAD.make_dual(t64(x0, device), t64(1.0, device))
        y = x * x * x.sin()
        value, tangent = fwAD.unpack_dual(y)
    assert value.item() == pytest.approx(x0 * x0 * math.sin(x0))
    assert tangent.item() == pytest.approx(2 * x0 * math.sin(x0) + x0 * x0 * math.cos(x0))
    assert fwAD.unpack_dual(y).tangent is None, "the level has ended: no tangent any more"


def test_an_mlp_matches_torch_forward_ad(device):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in ((4, 3), (5, 3), (5,), (2, 5))]
    tangents = [rng.standard_normal(a.shape) for a in arrays]

    def net(lib, F_, x, w1, b1, w2):
        return F_.linear(x, w1, b1).tanh().matmul(w2.mT).log_softmax(-1)

    with fwAD.dual_level():
        ours = [fwAD.make_dual(t64(a, device), t64(t, device)) for a, t in zip(arrays, tangents)]
        out, jvp = fwAD.unpack_dual(net(tt, F, *ours))
    import torch.autograd.forward_ad as tfw

    with tfw.dual_level():
        theirs = [tfw.make_dual(torch.tensor(a), torch.tensor(t)) for a, t in zip(arrays, tangents)]
        want_out, want_jvp = tfw.unpack_dual(net(torch, torch.nn.functional, *theirs))
    np.testing.assert_allclose(out.numpy(), want_out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jvp.numpy(), want_jvp.numpy(), rtol=1e-10, atol=1e-12)


def test_nested_levels_give_second_derivatives(device):
    x0 = 0.3
    with fwAD.dual_level() as outer:
        x = fwAD.make_dual(t64(x0, device), t64(1.0, device), level=outer)
        with fwAD.dual_level() as inner:
            x2 = fwAD.make_dual(x, t64(1.0, device), level=inner)
            y = (x2 * 3.0).exp() * x2
            dy = fwAD.unpack_dual(y, level=inner).tangent  # (3x + 1) e^{3x}, itself dual at outer
        d2y = fwAD.unpack_dual(dy, level=outer).tangent
    assert dy.item() == pytest.approx((3 * x0 + 1) * math.exp(3 * x0))
    assert d2y.item() == pytest.approx((9 * x0 + 6) * math.exp(3 * x0))


def test_reverse_over_forward_and_forward_over_reverse(device):
    x = t64([0.5, -1.0, 2.0], device).requires_grad_()
    v = t64([1.0, 2.0, -0.5], device)
    hvp = (2 * x.detach().cos() - x.detach() * x.detach().sin()) * v  # f = Σ x sin x: H v
    with fwAD.dual_level():
        y = fwAD.make_dual(x, v)
        jv = fwAD.unpack_dual((y * y.sin()).sum()).tangent  # the tangent is a tensor in the graph
        (g,) = tt.autograd.grad(jv, x, retain_graph=True)  # reverse over forward: ∇(∇f·v) = H v
        np.testing.assert_allclose(g.numpy(), hvp.numpy(), rtol=1e-12)
        (gx,) = tt.autograd.grad((y * y.sin()).sum(), y, create_graph=True)  # forward over reverse
        np.testing.assert_allclose(fwAD.unpack_dual(gx).tangent.numpy(), hvp.numpy(), rtol=1e-12)


def test_forward_over_reverse_needs_no_create_graph(device):
    x = t64([0.5, -1.0, 2.0], device).requires_grad_()
    v = t64([1.0, 2.0, -0.5], device)
    with fwAD.dual_level():
        y = fwAD.make_dual(x, v)
        (gx,) = tt.autograd.grad((y * y.sin()).sum(), y)  # the backward ops carry the tangents
        hvp = fwAD.unpack_dual(gx).tangent
    xd = x.detach()
    np.testing.assert_allclose(hvp.numpy(), ((2 * xd.cos() - xd * xd.sin()) * v).numpy(), rtol=1e-12)


def test_in_place_updates_carry_tangents(device):
    x, t = t64([1.0, 2.0, 3.0], device), t64([1.0, 0.5, 0.0], device)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        h = d * 1.0
        h *= d  # x²
        h += 1.0
        h[0] = d[1] * 3.0  # 3 x₁
        z = tt.zeros(3, dtype=tt.float64, device=device)
        z.copy_(d * 2.0)
        tangent = fwAD.unpack_dual(h).tangent.tolist()
        assert fwAD.unpack_dual(z).tangent.tolist() == [2.0, 1.0, 0.0]
        z.fill_(1.0)
        assert fwAD.unpack_dual(z).tangent is None, "a constant has no tangent"
        with pytest.raises(RuntimeError, match="in-place update of a view of a tensor with a tangent"):
            h[1:].mul_(2.0)
    assert tangent == [1.5, 2.0, 0.0]


def test_tangents_flow_under_no_grad_and_cost_one_pass(device):
    calls = []

    class Traced(Function):
        def forward(self, x):
            calls.append("forward")
            return x * 2.0

        def jvp(self, tx):
            calls.append("jvp")
            return tx * 2.0

    with tt.no_grad(), fwAD.dual_level():
        x = fwAD.make_dual(t64([1.0, 2.0], device), t64([1.0, 0.0], device))
        out = fwAD.unpack_dual(Traced.apply(x))
    assert out.tangent.tolist() == [2.0, 0.0]
    assert calls == ["forward", "jvp"], "one pass: forward once, its tangent rule once"


def test_errors(device):
    x = t64([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match="make_dual: no dual level is open"):
        fwAD.make_dual(x, x)
    with fwAD.dual_level() as level:
        with pytest.raises(ValueError, match=r"tangent has shape \(1,\), but the primal has shape \(2,\)"):
            fwAD.make_dual(x, x[:1])
        with pytest.raises(TypeError, match="make_dual: the tangent is float32, but the primal is float64"):
            fwAD.make_dual(x, x.float())
        with pytest.raises(TypeError, match="make_dual: the primal must be floating point"):
            fwAD.make_dual(tt.tensor([1, 2], device=device), x)
        with pytest.raises(TypeError, match="make_dual: tangent must be a Tensor"):
            fwAD.make_dual(x, [1.0, 2.0])
        d = fwAD.make_dual(x, x)
        with pytest.raises(RuntimeError, match="already has a tangent at dual level"):
            fwAD.make_dual(d, x)
        if device != "cpu":
            with pytest.raises(RuntimeError, match="make_dual: the tangent is on cpu"):
                fwAD.make_dual(x, tt.tensor([1.0, 2.0], dtype=tt.float64))

        class NoRule(Function):
            def forward(self, x):
                return x + 0.0

            def backward(self, gy):
                return gy

        with pytest.raises(NotImplementedError, match="NoRule: this op has no forward-mode derivative"):
            NoRule.apply(d)
        inner = fwAD.enter_dual_level()
        with pytest.raises(RuntimeError, match="is not the innermost open level"):
            fwAD.exit_dual_level(level=level)
        fwAD.exit_dual_level(level=inner)
    with pytest.raises(RuntimeError, match=f"make_dual: dual level {level} is not open"):
        with fwAD.dual_level():
            fwAD.make_dual(x, x, level=level)
    with pytest.raises(RuntimeError, match="exit_dual_level: no dual level is open"):
        fwAD.exit_dual_level()
