"""The loss Modules and their functionals against PyTorch's twins on every device: every reduction, class
weights, ignore_index, label smoothing, class-probability targets, K-dim inputs, pos_weight, beta/delta,
log_target and 'batchmean'; input and target gradients; the edges where PyTorch clamps (BCE at 0 and 1,
zero logits); weights as buffers; the deprecated size_average/reduce; float64 gradient checks (first and
second order); and the errors for bad targets, naming the Module."""
import warnings

import numpy as np
import pytest
from _nn_testing import close, x_of
from _torch import require_torch

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor.autograd import gradcheck, gradgradcheck

torch = require_torch()
TF = torch.nn.functional

DTYPES = ["float64", "float32"]


def compare_loss(ours, theirs, x_np, t_np, dtype, device, target_grad=True):
    """ours(x, t) vs theirs(x, t): the loss, the input gradient and (for float targets) the target's,
    under a random upstream gradient."""
    x = tt.tensor(x_np.astype(dtype), device=device, requires_grad=True)
    tx = torch.tensor(x_np.astype(dtype), requires_grad=True)
    floating = t_np.dtype.kind == "f"
    grad_t = floating and target_grad
    t = tt.tensor(t_np.astype(dtype) if floating else t_np, device=device, requires_grad=grad_t)
    tt_ = torch.tensor(t_np.astype(dtype) if floating else t_np, requires_grad=grad_t)
    y, ty = ours(x, t), theirs(tx, tt_)
    close(y, ty, dtype, "loss")
    g = np.random.default_rng(5).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(tt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad, dtype, "input grad")
    if grad_t:
        close(t.grad, tt_.grad, dtype, "target grad")


def weights(n, device, dtype, seed=2):
    w = np.random.default_rng(seed).uniform(0.5, 2.0, n)
    return tt.tensor(w.astype(dtype), device=device), torch.tensor(w.astype(dtype))


# ---- elementwise losses --------------------------------------------------------------------------

def inputs_for(kind, shape, seed=0):
    """(input, target) NumPy arrays of the kind a loss takes."""
    rng = np.random.default_rng(seed)
    if kind == "real":
        return x_of(*shape, seed=seed, scale=1.5), x_of(*shape, seed=seed + 1, scale=1.5)
    if kind == "prob":
        return rng.uniform(0.02, 0.98, shape), rng.uniform(0.0, 1.0, shape)
    if kind == "logit":
        return x_of(*shape, seed=seed, scale=3.0), rng.uniform(0.0, 1.0, shape)
    logp = x_of(*shape, seed=seed)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    q = np.exp(x_of(*shape, seed=seed + 1))
    q = q / q.sum(-1, keepdims=True)
    return logp, (np.log(q) if kind == "kl_log" else q)


POINTWISE = [  # (module name, constructor kwargs, inputs kind)
    ("L1Loss", {}, "real"),
    ("MSELoss", {}, "real"),
    ("SmoothL1Loss", {}, "real"),
    ("SmoothL1Loss", dict(beta=0.5), "real"),
    ("SmoothL1Loss", dict(beta=0.0), "real"),
    ("HuberLoss", {}, "real"),
    ("HuberLoss", dict(delta=0.3), "real"),
    ("KLDivLoss", {}, "kl"),
    ("KLDivLoss", dict(log_target=True), "kl_log"),
    ("BCELoss", {}, "prob"),
    ("BCELoss", dict(weight="weight"), "prob"),
    ("BCEWithLogitsLoss", {}, "logit"),
    ("BCEWithLogitsLoss", dict(weight="weight", pos_weight="pos_weight"), "logit"),
    ("BCEWithLogitsLoss", dict(pos_weight="pos_weight"), "logit"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2)], ids=str)
@pytest.mark.parametrize("name, kwargs, kind, reduction", [
    (*case, reduction) for case in POINTWISE
    for reduction in ("mean", "sum", "none") + (("batchmean",) if case[0] == "KLDivLoss" else ())
], ids=str)
def test_pointwise_loss_matches_torch(device, dtype, shape, name, kwargs, kind, reduction):
    ours_kw, theirs_kw = {}, {}
    for k, v in kwargs.items():
        if v in ("weight", "pos_weight"):  # weight broadcasts over the input, pos_weight per last-dim class
            n = shape[-1] if v == "pos_weight" else shape[-2:] if len(shape) > 2 else shape[-1]
            ours_kw[k], theirs_kw[k] = weights(n, device, dtype, seed=len(k))
        else:
            ours_kw[k] = theirs_kw[k] = v
    ours = getattr(nn, name)(reduction=reduction, **ours_kw)
    theirs = getattr(torch.nn, name)(reduction=reduction, **theirs_kw)
    x, t = inputs_for(kind, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss's 'mean' warning, in both
        compare_loss(ours, theirs, x, t, dtype, device)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("name, args", [
    ("l1_loss", ()), ("mse_loss", ()), ("smooth_l1_loss", dict(beta=0.7)), ("huber_loss", dict(delta=0.6)),
    ("kl_div", dict(reduction="batchmean")), ("binary_cross_entropy", ()),
    ("binary_cross_entropy_with_logits", ()),
], ids=str)
def test_functional_pointwise_losses_match_torch(device, name, args):
    kind = {"kl_div": "kl", "binary_cross_entropy": "prob", "binary_cross_entropy_with_logits": "logit"}
    x, t = inputs_for(kind.get(name, "real"), (3, 4), seed=4)
    kw = dict(args)
    compare_loss(lambda x, t: getattr(F, name)(x, t, **kw), lambda x, t: getattr(TF, name)(x, t, **kw), x, t,
                 "float64", device)


def test_bce_at_zero_and_one_matches_torch(device):
    """PyTorch clamps each log at -100 and divides the gradient by max(x(1-x), 1e-12): finite at 0 and 1."""
    x = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.3, 0.7, 0.5])
    for reduction in ("none", "sum"):
        compare_loss(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), x, t, "float64",
                     device, target_grad=False)


def test_bce_with_logits_is_stable_and_exact_at_zero(device):
    """Zero logits (a zero-initialised head) get σ(0) - t; huge logits neither overflow nor lose the loss."""
    x = np.array([0.0, 0.0, 0.0, 200.0, -200.0, 40.0, -40.0])
    t = np.array([0.0, 1.0, 0.25, 0.0, 1.0, 0.5, 0.5])
    compare_loss(nn.BCEWithLogitsLoss(reduction="none"), torch.nn.BCEWithLogitsLoss(reduction="none"), x, t,
                 "float64", device)
    xt = tt.tensor(x[:3], device=device, requires_grad=True)
    F.binary_cross_entropy_with_logits(xt, tt.tensor(t[:3], device=device), reduction="sum").backward()
    np.testing.assert_allclose(xt.grad.numpy(), 0.5 - t[:3], rtol=1e-15)
    for dtype in DTYPES:  # and in float32
        compare_loss(nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), x * 0.5, t, dtype, device)


def test_kl_div_zero_targets_match_torch(device):
    """0·log 0 = 0 (xlogy), as PyTorch; the input gradient there is 0."""
    logp = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]))
    q = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    compare_loss(nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"), logp, q,
                 "float64", device, target_grad=False)


# ---- class-index losses ------------------------------------------------------------------------------

CLASS_CASES = [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(ignore_index=1), dict(weight=True),
    dict(weight=True, reduction="sum"), dict(weight=True, ignore_index=0, reduction="none"),
    dict(label_smoothing=0.2), dict(weight=True, label_smoothing=0.1),
    dict(weight=True, ignore_index=2, label_smoothing=0.3, reduction="sum"),
]


def class_target(shape, ignore_index=None, seed=1):
    """Class indices for an input of ``shape`` (class dim 1), one set to ignore_index."""
    c = shape[0] if len(shape) == 1 else shape[1]
    batch = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = np.asarray(np.random.default_rng(seed).integers(0, c, batch))
    if ignore_index is not None and t.ndim:
        t.reshape(-1)[0] = ignore_index
    return t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (2, 4, 2, 3), (4,)], ids=str)
@pytest.mark.parametrize("name, case", [("CrossEntropyLoss", case) for case in CLASS_CASES] + [
    ("NLLLoss", case) for case in CLASS_CASES if "label_smoothing" not in case], ids=str)
def test_class_index_losses_match_torch(device, dtype, shape, name, case):
    kw = dict(case)
    ours_kw, theirs_kw = dict(kw), dict(kw)
    if kw.pop("weight", False):
        ours_kw["weight"], theirs_kw["weight"] = weights(4, device, dtype)
    ours, theirs = getattr(nn, name)(**ours_kw), getattr(torch.nn, name)(**theirs_kw)
    x = x_of(*shape, scale=2.0)
    if name == "NLLLoss":
        x = x - np.log(np.exp(x).sum(1 if len(shape) > 1 else 0, keepdims=True))
    compare_loss(ours, theirs, x, class_target(shape, kw.get("ignore_index")), dtype, device)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)], ids=str)
@pytest.mark.parametrize("case", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(weight=True),
                                  dict(label_smoothing=0.25), dict(weight=True, label_smoothing=0.1,
                                                                   reduction="none")], ids=str)
def test_cross_entropy_probability_targets_match_torch(device, dtype, shape, case):
    kw = dict(case)
    ours_kw, theirs_kw = dict(kw), dict(kw)
    if kw.pop("weight", False):
        ours_kw["weight"], theirs_kw["weight"] = weights(4, device, dtype)
    q = np.exp(x_of(*shape, seed=3))
    q = q / q.sum(1 if len(shape) > 1 else 0, keepdims=True)
    compare_loss(nn.CrossEntropyLoss(**ours_kw), torch.nn.CrossEntropyLoss(**theirs_kw), x_of(*shape), q,
                 dtype, device)


# ---- buffers, legacy arguments, gradient checks ------------------------------------------------------

def test_weights_are_buffers(device):
    w, p = tt.tensor([1.0, 2.0, 0.5]), tt.tensor([3.0, 1.0, 1.0])
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == ["weight"]
    assert list(nn.NLLLoss().state_dict()) == list(torch.nn.NLLLoss().state_dict()) == []
    both = nn.BCEWithLogitsLoss(weight=w, pos_weight=p)
    theirs = torch.nn.BCEWithLogitsLoss(weight=torch.ones(3), pos_weight=torch.ones(3))
    assert list(both.state_dict()) == list(theirs.state_dict()) == ["weight", "pos_weight"]
    both.to(device).double()
    assert both.weight.device == both.pos_weight.device == tt.zeros(1, device=device).device
    assert both.pos_weight.dtype is tt.float64
    x, t = tt.randn(2, 3, dtype=tt.float64, device=device), tt.rand(2, 3, dtype=tt.float64, device=device)
    assert both(x, t).device == x.device
    assert nn.CrossEntropyLoss(ignore_index=3, label_smoothing=0.1).ignore_index == 3
    assert repr(nn.MSELoss()) == "MSELoss()" and repr(nn.L1Loss(reduction="sum")) == "L1Loss(reduction='sum')"


@pytest.mark.parametrize("size_average, reduce", [(False, None), (None, False), (True, True), (False, True)])
def test_legacy_size_average_and_reduce(size_average, reduce):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.MSELoss(size_average=size_average, reduce=reduce)
        theirs_ce = torch.nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning, match="size_average and reduce are deprecated"):
        ours = nn.MSELoss(size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning):
        ours_ce = nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)
    assert ours.reduction == theirs.reduction and ours_ce.reduction == theirs_ce.reduction
    x, t = x_of(3, 4), class_target((3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = F.cross_entropy(tt.tensor(x), tt.tensor(t), size_average=size_average, reduce=reduce)
        ty = TF.cross_entropy(torch.tensor(x), torch.tensor(t), size_average=size_average, reduce=reduce)
    close(y, ty, "float64", "legacy cross_entropy")


def rand(*shape, device="cpu", seed=0, requires_grad=True):
    return tt.tensor(x_of(*shape, seed=seed), dtype=tt.float64, device=device, requires_grad=requires_grad)


def test_loss_gradchecks(device):
    """First and second order, with respect to the input and the (float) target, every new loss."""
    x, y = rand(3, 4, device=device), rand(3, 4, device=device, seed=1)
    p = (rand(3, 4, device=device, seed=2) * 0.5).sigmoid().detach().requires_grad_()  # in (0, 1)
    q = rand(3, 4, device=device, seed=3).sigmoid().detach().requires_grad_()
    w = tt.tensor([0.5, 1.0, 1.5, 2.0], dtype=tt.float64, device=device)
    cases = [
        (lambda x, y: F.l1_loss(x, y), [x, y]),
        (lambda x, y: F.smooth_l1_loss(x, y, beta=0.8, reduction="sum"), [x, y]),
        (lambda x, y: F.huber_loss(x, y, delta=0.6, reduction="none"), [x, y]),
        (lambda x, q: F.kl_div(x.log_softmax(-1), q, reduction="batchmean"), [x, q]),
        (lambda x, y: F.kl_div(x.log_softmax(-1), y.log_softmax(-1), reduction="sum", log_target=True),
         [x, y]),
        (lambda p, q: F.binary_cross_entropy(p, q, weight=w), [p, q]),
        (lambda x, q: F.binary_cross_entropy_with_logits(x, q, weight=w, pos_weight=w * 2), [x, q]),
    ]
    for fn, inputs in cases:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)
    pw = tt.tensor([0.5, 1.0, 1.5, 2.0], dtype=tt.float64, device=device, requires_grad=True)
    assert gradcheck(lambda x, pw: F.binary_cross_entropy_with_logits(x, q.detach(), pos_weight=pw), [x, pw])


def test_loss_modules_gradcheck_through_cross_entropy(device):
    x = rand(2, 4, 3, device=device)
    t = tt.tensor(class_target((2, 4, 3), ignore_index=-100), device=device)
    w = tt.tensor([0.5, 1.0, 1.5, 2.0], dtype=tt.float64, device=device)
    loss = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1).to(device)
    assert gradcheck(lambda x: loss(x, t), [x])
    assert gradgradcheck(lambda x: loss(x, t), [x])


def test_reached_as_torch_nn():
    import tinytensor.nn as tnn

    for name in ("CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss",
                 "BCELoss", "BCEWithLogitsLoss"):
        assert getattr(tnn, name) is getattr(nn, name)
    for name in ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                 "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        assert getattr(tnn.functional, name) is getattr(F, name)


# ---- bad input -----------------------------------------------------------------------------------------

def test_class_loss_errors_name_the_module():
    x = tt.randn(3, 4)
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: class-index targets must be an integer "
                                        r"tensor \(int64\), got tinytensor.float32 of shape \(3,\).*"
                                        r"target.long\(\)"):
        nn.CrossEntropyLoss()(x, tt.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected target of shape \(3,\) for input of "
                                         r"shape \(3, 4\) \(class dimension 1\), got \(2,\)"):
        nn.CrossEntropyLoss()(x, tt.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"NLLLoss: expected target of shape \(3, 2\)"):
        nn.NLLLoss()(tt.randn(3, 4, 2), tt.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="NLLLoss: class-index targets must be an integer tensor"):
        nn.NLLLoss()(x, tt.tensor([True, False, True]))
    with pytest.raises(IndexError, match="CrossEntropyLoss: target 4 is out of bounds for 4 classes"):
        nn.CrossEntropyLoss()(x, tt.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: weight must have shape \(4,\)"):
        nn.CrossEntropyLoss(weight=tt.ones(3))(x, tt.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing must be in"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)(x, tt.tensor([0, 1, 1]))
    with pytest.raises(RuntimeError, match="CrossEntropyLoss: input is on cpu but target is on strict"):
        nn.CrossEntropyLoss()(x, tt.tensor([0, 1, 1], device="strict"))


def test_pointwise_loss_errors_name_the_module():
    x = tt.rand(3)
    with pytest.raises(TypeError, match=r"BCELoss: target must be floating point.*got tinytensor.int64 of "
                                        r"shape \(3,\); convert it with target.to\(input.dtype\)"):
        nn.BCELoss()(x, tt.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"BCELoss: target shape \(3, 1\) differs from input shape \(3,\).*"
                                         r"reshape the target"):
        nn.BCELoss()(x, tt.rand(3, 1))
    with pytest.raises(ValueError, match=r"BCEWithLogitsLoss: target size \(3, 1\) must be the same as input "
                                         r"size \(3,\)"):
        nn.BCEWithLogitsLoss()(x, tt.rand(3, 1))
    with pytest.raises(RuntimeError, match=r"BCELoss: all elements of input should be between 0 and 1, got "
                                           r"values in \[-1, 2\].*binary_cross_entropy_with_logits"):
        nn.BCELoss()(tt.tensor([-1.0, 0.5, 2.0]), tt.rand(3))
    with pytest.raises(ValueError, match="weight against input"):
        nn.BCELoss(weight=tt.ones(2))(x, tt.rand(3))
    with pytest.raises(ValueError, match="SmoothL1Loss: beta must be >= 0, got -1"):
        nn.SmoothL1Loss(beta=-1)(x, x)
    with pytest.raises(ValueError, match="HuberLoss: delta must be > 0, got 0"):
        nn.HuberLoss(delta=0)(x, x)
    with pytest.raises(ValueError, match=r"MSELoss: reduction must be one of \('mean', 'sum', 'none'\), got "
                                         r"'batchmean'"):
        nn.MSELoss(reduction="batchmean")(x, x)
    with pytest.raises(ValueError, match="KLDivLoss: reduction must be one of"):
        nn.KLDivLoss(reduction="avg")
    with pytest.raises(TypeError, match=r"L1Loss: expected a floating-point input, got tinytensor.int64"):
        nn.L1Loss()(tt.tensor([1, 2, 3]), x)
    with pytest.raises(RuntimeError, match="MSELoss: the input is on cpu but the target is on strict"):
        nn.MSELoss()(x, tt.rand(3, device="strict"))
    with pytest.warns(UserWarning, match=r"L1Loss: target shape \(3, 1\) differs from input shape \(3,\); "
                                         r"they will be broadcast"):
        nn.L1Loss()(x, tt.rand(3, 1))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        nn.KLDivLoss()(x.log(), x)
