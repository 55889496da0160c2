"""Losses: float64 gradient checks (first and second order) on every device, NumPy references for the
reductions, class weights, ignore_index and label smoothing, and the errors for bad targets."""
import numpy as np
import pytest

import tinytensor as tt
import tinytensor_nn.functional as F
from tinytensor.autograd import gradcheck, gradgradcheck


def rand(*shape, device="cpu", seed=0, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape)
    return tt.tensor(a, dtype=tt.float64, device=device, requires_grad=requires_grad)


def reference_ce(x, t, w=None, ignore_index=-100, reduction="mean", eps=0.0):
    """cross_entropy in NumPy from the definition, class dim 1."""
    x = np.moveaxis(np.asarray(x, np.float64), 1, -1) if x.ndim > 1 else x[None]
    c = x.shape[-1]
    x = x.reshape(-1, c)
    t = np.asarray(t).reshape(-1)
    logp = x - x.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    w = np.ones(c) if w is None else np.asarray(w)
    valid = t != ignore_index
    ts = np.where(valid, t, 0)
    wt = w[ts] * valid
    nll = -wt * logp[np.arange(len(t)), ts]
    smooth = -(logp * w).sum(-1) * valid
    loss = (1 - eps) * nll + eps / c * smooth
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / wt.sum()


CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(label_smoothing=0.2),
    dict(weight=True),
    dict(weight=True, label_smoothing=0.1, reduction="mean"),
    dict(weight=True, label_smoothing=0.3, reduction="sum"),
    dict(ignore_index=2),
    dict(ignore_index=2, weight=True, label_smoothing=0.15, reduction="none"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (2, 4, 2, 2)], ids=str)
def test_cross_entropy_forward_and_gradcheck(device, case, shape):
    case = dict(case)
    rng = np.random.default_rng(1)
    x = rand(*shape, device=device)
    target = rng.integers(0, 4, (shape[0],) + shape[2:])
    target.reshape(-1)[0] = case.get("ignore_index", -100)  # one ignored position
    t = tt.tensor(target, device=device)
    w = None
    if case.pop("weight", False):
        w = tt.tensor(rng.uniform(0.5, 2.0, 4), dtype=tt.float64, device=device)
    out = F.cross_entropy(x, t, weight=w, **case)
    eps = case.get("label_smoothing", 0.0)
    ref = reference_ce(x.numpy(), target, None if w is None else w.numpy(), case.get("ignore_index", -100),
                       case.get("reduction", "mean"), eps)
    if case.get("reduction") == "none":
        assert out.shape == (shape[0],) + shape[2:]
    np.testing.assert_allclose(out.numpy().reshape(-1), np.reshape(ref, -1), rtol=1e-12, atol=1e-12)

    def fn(x):
        return F.cross_entropy(x, t, weight=w, **case)

    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


def test_cross_entropy_unbatched(device):
    x = rand(5, device=device)
    t = tt.tensor(3, device=device)
    out = F.cross_entropy(x, t, reduction="none")
    assert out.shape == ()
    a = x.numpy()
    np.testing.assert_allclose(out.item(), -np.log(np.exp(a[3]) / np.exp(a).sum()), rtol=1e-12)
    assert gradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.1), [x])


def test_cross_entropy_probability_targets(device):
    x = rand(3, 4, 2, device=device)
    q = rand(3, 4, 2, device=device, seed=5)
    q = (q * 1.0).softmax(1).detach().requires_grad_()
    w = tt.tensor([1.0, 2.0, 0.5, 1.5], dtype=tt.float64, device=device)
    for kw in (dict(), dict(label_smoothing=0.2, weight=w), dict(reduction="sum"), dict(reduction="none")):
        assert gradcheck(lambda x, q, kw=kw: F.cross_entropy(x, q, **kw), [x, q])
    logp = np.log(np.exp(x.numpy()) / np.exp(x.numpy()).sum(1, keepdims=True))
    ref = -(q.numpy() * logp).sum(1).mean()  # mean over the N·d rows
    np.testing.assert_allclose(F.cross_entropy(x, q).item(), ref, rtol=1e-12)


def test_cross_entropy_all_ignored_is_nan_like_pytorch():
    x = rand(3, 4)
    t = tt.tensor([-100, -100, -100])
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.cross_entropy(x, t).item())
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0


def test_cross_entropy_float32_is_stable():
    x = tt.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]])
    t = tt.tensor([0, 2])
    out = F.cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(out.numpy(), [0.0, np.log(3)], rtol=1e-6, atol=1e-6)
    x.requires_grad_()
    F.cross_entropy(x, t).backward()
    assert np.all(np.isfinite(x.grad.numpy()))


@pytest.mark.parametrize("kwargs", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                    dict(weight=True), dict(ignore_index=1, weight=True)], ids=str)
def test_nll_loss(device, kwargs):
    kwargs = dict(kwargs)
    x = rand(4, 3, 2, device=device)
    target = np.array([[0, 1], [2, 1], [1, 0], [2, 2]])
    t = tt.tensor(target, device=device)
    w = tt.tensor([0.5, 2.0, 1.5], dtype=tt.float64, device=device) if kwargs.pop("weight", False) else None
    out = F.nll_loss(x, t, weight=w, **kwargs)
    xs = np.moveaxis(x.numpy(), 1, -1).reshape(-1, 3)
    ts = target.reshape(-1)
    ww = np.ones(3) if w is None else w.numpy()
    valid = ts != kwargs.get("ignore_index", -100)
    safe = np.where(valid, ts, 0)
    per = -ww[safe] * xs[np.arange(len(ts)), safe] * valid
    red = kwargs.get("reduction", "mean")
    ref = {"none": per.reshape(4, 2), "sum": per.sum(), "mean": per.sum() / (ww[safe] * valid).sum()}[red]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    assert gradcheck(lambda x: F.nll_loss(x, t, weight=w, **kwargs), [x])


def test_cross_entropy_is_log_softmax_plus_nll(device):
    x = rand(6, 5, device=device)
    t = tt.tensor([0, 4, 2, 2, 1, 3], device=device)
    np.testing.assert_allclose(F.cross_entropy(x, t).numpy(), F.nll_loss(F.log_softmax(x, 1), t).numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(device, reduction):
    x, y = rand(3, 4, device=device), rand(3, 4, device=device, seed=1)
    d = x.numpy() - y.numpy()
    ref = {"mean": (d * d).mean(), "sum": (d * d).sum(), "none": d * d}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, y, reduction=reduction).numpy(), ref, rtol=1e-12)
    assert gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y])
    assert gradgradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y])


def test_mse_loss_warns_on_broadcast():
    with pytest.warns(UserWarning, match="broadcast"):
        F.mse_loss(tt.zeros(3, 1), tt.zeros(3))


# ---- bad input ---------------------------------------------------------------------------------

def test_cross_entropy_wrong_target_dtype():
    x = rand(3, 4)
    with pytest.raises(TypeError, match=r"cross_entropy: class-index targets must be an integer tensor"):
        F.cross_entropy(x, tt.tensor([0.0, 1.0, 2.0], dtype=tt.float64))
    with pytest.raises(TypeError, match="bool"):
        F.cross_entropy(x, tt.tensor([True, False, True]))
    with pytest.raises(TypeError, match="nll_loss: class-index targets"):
        F.nll_loss(x, tt.tensor([0.5, 1.0, 2.0]))
    with pytest.raises(TypeError, match="floating-point logits"):
        F.cross_entropy(tt.tensor([[1, 2]]), tt.tensor([0]))


def test_cross_entropy_bad_shapes_and_values():
    x = rand(3, 4)
    with pytest.raises(ValueError, match=r"expected target of shape \(3,\) for input of shape \(3, 4\)"):
        F.cross_entropy(x, tt.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"expected target of shape \(3, 2\)"):
        F.cross_entropy(rand(3, 4, 2), tt.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match="target 4 is out of bounds for 4 classes"):
        F.cross_entropy(x, tt.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="target -1 is out of bounds"):
        F.cross_entropy(x, tt.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, tt.tensor([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, tt.tensor([0, 1, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.cross_entropy(x, tt.tensor([0, 1, 1]), weight=tt.ones(3, dtype=tt.float64))
    with pytest.raises(TypeError, match="weight is tinytensor.float32 but input is tinytensor.float64"):
        F.cross_entropy(x, tt.tensor([0, 1, 1]), weight=tt.ones(4))
    with pytest.raises(ValueError, match="class dimension"):
        F.cross_entropy(rand(), tt.tensor(0))


def test_loss_device_mismatch():
    x = rand(3, 4)
    with pytest.raises(RuntimeError, match="input is on cpu but target is on strict"):
        F.cross_entropy(x, tt.tensor([0, 1, 2], device="strict"))
    with pytest.raises(RuntimeError, match="mse_loss: the input is on cpu"):
        F.mse_loss(x, rand(3, 4, device="strict"))
