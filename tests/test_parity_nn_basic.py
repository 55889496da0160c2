"""PyTorch parity for the basic layers, the losses, the optimizers, clip_grad_norm_ and the schedules:
the same module is built in torch, its state_dict copied over, and outputs and every gradient compared
(float64 within 1e-9; float32 within 1e-4 relative)."""
import math

import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor_nn import optim

torch = require_torch()

TOL = {"float64": dict(rtol=1e-9, atol=1e-9), "float32": dict(rtol=1e-4, atol=1e-5)}
DTYPES = ["float64", "float32"]


def copy_state(ours, theirs):
    ours.load_state_dict({k: tt.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})


def close(a, b, dtype, what):
    b = b.detach().numpy() if hasattr(b, "detach") else b
    assert a.shape == tuple(b.shape), f"{what}: shape {a.shape} vs torch {b.shape}"
    assert a.dtype.name == str(b.dtype), f"{what}: dtype {a.dtype.name} vs torch {b.dtype}"
    np.testing.assert_allclose(a.numpy(), b, err_msg=what, **TOL[dtype])


def compare_module(ours, theirs, x_np, dtype, index_input=False):
    """Forward with a random upstream gradient; compare the output, the input grad and every param grad."""
    tdt = getattr(torch, dtype)
    theirs = theirs.to(tdt)
    copy_state(ours, theirs)
    if index_input:
        x, tx = tt.tensor(x_np), torch.tensor(x_np)
    else:
        x = tt.tensor(x_np.astype(dtype), requires_grad=True)
        tx = torch.tensor(x_np.astype(dtype), requires_grad=True)
    y, ty = ours(x), theirs(tx)
    close(y, ty, dtype, "output")
    g = np.random.default_rng(9).standard_normal(ty.shape).astype(dtype)
    y.backward(tt.tensor(g))
    ty.backward(torch.tensor(g))
    if not index_input:
        close(x.grad, tx.grad, dtype, "input grad")
    theirs_params = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(theirs_params), f"parameter names {names} vs torch {list(theirs_params)}"
    for name, p in ours.named_parameters():
        close(p.grad, theirs_params[name].grad, dtype, f"grad of {name}")


def x_of(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(dtype, bias):
    torch.manual_seed(0)
    compare_module(nn.Linear(5, 3, bias=bias, dtype=getattr(tt, dtype)), torch.nn.Linear(5, 3, bias=bias),
                   x_of(2, 4, 5), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", [
    ((4,), dict()), ((3, 4), dict()), ((4,), dict(elementwise_affine=False)), ((4,), dict(bias=False)),
    ((4,), dict(eps=1e-3)),
], ids=str)
def test_layer_norm(dtype, shape, kwargs):
    theirs = torch.nn.LayerNorm(shape, **kwargs)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    compare_module(nn.LayerNorm(shape, dtype=getattr(tt, dtype), **kwargs), theirs,
                   x_of(2, 3, *shape, scale=3.0) + 1.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(), dict(eps=1e-4), dict(elementwise_affine=False)], ids=str)
def test_rms_norm(dtype, kwargs):
    theirs = torch.nn.RMSNorm((2, 4), **kwargs)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    compare_module(nn.RMSNorm((2, 4), dtype=getattr(tt, dtype), **kwargs), theirs, x_of(3, 2, 4), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding(dtype, padding_idx):
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(6, 3, padding_idx=padding_idx)
    ours = nn.Embedding(6, 3, padding_idx=padding_idx, dtype=getattr(tt, dtype))
    assert ours.padding_idx == theirs.padding_idx
    idx = np.array([[0, 5, 2, 0], [5, 5, 1, 3]])
    compare_module(ours, theirs, idx, dtype, index_input=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, args", [("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()),
                                        ("Tanh", ()), ("Sigmoid", ()), ("Softmax", (1,)),
                                        ("LogSoftmax", (1,)), ("LeakyReLU", (0.2,)), ("ELU", (0.5,)),
                                        ("Hardtanh", (-2.0, 2.0)), ("ReLU6", ()), ("Hardswish", ()),
                                        ("Mish", ()), ("Softplus", (2.0, 3.0)), ("LogSigmoid", ()),
                                        ("GLU", (1,)), ("SELU", ()), ("CELU", (0.5,)),
                                        ("Threshold", (0.3, -2.0)), ("Softsign", ()), ("Tanhshrink", ()),
                                        ("Hardshrink", (0.4,)), ("Softshrink", (0.75,)), ("Softmin", (1,))])
def test_activations(dtype, name, args):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    compare_module(ours, theirs, x_of(3, 4, scale=3.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("args", [(), (4, 0.1)])
def test_prelu_learns_one_weight_or_one_per_channel(dtype, args):
    ours, theirs = nn.PReLU(*args, dtype=getattr(tt, dtype)), torch.nn.PReLU(*args)
    assert repr(ours) == repr(theirs)
    compare_module(ours, theirs, x_of(3, 4, scale=3.0), dtype)


def test_hardsigmoid_matches_pytorch_and_its_float64_gradient_is_exact():
    """The values agree in both dtypes and the float32 gradient too; PyTorch's float64 gradient multiplies
    by float32's 1/6 (a relative error of 3e-8), tinytensor's by 1/6 itself."""
    assert repr(nn.Hardsigmoid(inplace=True)) == repr(torch.nn.Hardsigmoid(inplace=True)) == "Hardsigmoid()"
    compare_module(nn.Hardsigmoid(), torch.nn.Hardsigmoid(), x_of(3, 4, scale=3.0), "float32")
    a = np.array([-4.0, -3.0, -1.0, 0.5, 2.9, 3.0])
    x, tx = tt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.hardsigmoid(x), torch.nn.functional.hardsigmoid(tx)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    inside = np.array([0, 0, 1, 1, 1, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), inside / 6)
    np.testing.assert_array_equal(tx.grad.numpy(), inside * float(np.float32(1 / 6)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax2d_is_softmax_over_channels(dtype):
    ours, theirs = nn.Softmax2d(), torch.nn.Softmax2d()
    assert repr(ours) == repr(theirs)
    compare_module(ours, theirs, x_of(2, 3, 4, 5), dtype)
    compare_module(ours, theirs, x_of(3, 4, 5), dtype)
    with pytest.raises(ValueError, match=r"Softmax2d: expected a 3-d or 4-d input .* got shape \(3, 4\)"):
        ours(tt.zeros(3, 4))


@pytest.mark.parametrize("bad, error, match", [
    (lambda: F.prelu(tt.zeros(2, 3), tt.zeros(4)), RuntimeError, r"prelu: a weight of shape \(4,\) for an "
     r"input of shape \(2, 3\): expected a scalar or a 1-d tensor of 1 or 3 weights"),
    (lambda: F.prelu(tt.zeros(2, 3), tt.zeros(3, 1)), RuntimeError, r"prelu: a weight of shape \(3, 1\)"),
    (lambda: F.prelu(tt.zeros(2, 3), tt.zeros(3, dtype=tt.float64)), TypeError,
     r"prelu: expected floating-point input and weight of one dtype, got tinytensor.float32 and "
     r"tinytensor.float64"),
    (lambda: F.prelu(tt.zeros(2, 3, dtype=tt.int64), tt.zeros(1, dtype=tt.int64)), TypeError, r"prelu"),
    (lambda: F.celu(tt.zeros(2), 0.0), RuntimeError, r"celu: alpha cannot be 0"),
    (lambda: F.softshrink(tt.zeros(2), -0.5), RuntimeError,
     r"softshrink: lambd must be >= 0, but found -0\.5"),
    (lambda: F.threshold(tt.zeros(2, dtype=tt.bool), 0.5, 1.0), TypeError, r"threshold: bool tensors"),
])
def test_activation_bad_inputs_are_refused_with_the_op_named(bad, error, match):
    with pytest.raises(error, match=match):
        bad()


@pytest.mark.parametrize("name, args", [("relu_", ()), ("elu_", (0.5,)), ("leaky_relu_", (0.2,)),
                                        ("hardtanh_", (-0.5, 0.5)), ("selu_", ()), ("celu_", (2.0,)),
                                        ("threshold_", (0.1, 4.0))])
def test_functional_in_place_forms_write_their_input_as_pytorch(name, args):
    a = x_of(3, 4, scale=3.0)
    ours, theirs = tt.tensor(a), torch.tensor(a)
    assert getattr(F, name)(ours, *args) is ours
    getattr(torch.nn.functional, name)(theirs, *args)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name, args", [("ReLU", ()), ("LeakyReLU", (0.1,)), ("ELU", (2.0,)), ("ReLU6", ()),
                                        ("Hardtanh", (0.0, 1.0)), ("Hardswish", ()), ("Mish", ()),
                                        ("SiLU", ()), ("SELU", ()), ("CELU", (0.5,)),
                                        ("Threshold", (0.2, -1.0))])
def test_in_place_activations_overwrite_their_input_as_pytorch(name, args):
    """inplace=True writes into the input and returns it; in a graph the write is recorded (the gradient
    flows through the activation), and on a leaf that requires grad it is refused, as PyTorch."""
    a = x_of(3, 4, scale=3.0)
    got, reprs = {}, {}
    for lib in ("tt", "torch"):
        mod = (nn if lib == "tt" else torch.nn).__dict__[name](*args, inplace=True)
        leaf = (tt.tensor(a) if lib == "tt" else torch.tensor(a)).requires_grad_()
        hidden = leaf * 1.5
        out = mod(hidden)
        assert out is hidden
        (out * out).sum().backward()
        got[lib], reprs[lib] = (out.detach().numpy(), leaf.grad.numpy()), repr(mod)
    assert reprs["tt"] == reprs["torch"]
    np.testing.assert_allclose(got["tt"][0], got["torch"][0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got["tt"][1], got["torch"][1], rtol=1e-14, atol=1e-15)
    with pytest.raises(RuntimeError, match="in-place update of a leaf tensor that requires grad"):
        nn.__dict__[name](*args, inplace=True)(tt.tensor(a, requires_grad=True))


def test_default_init_distribution_matches_torch():
    """Same formulas as torch: the bounds and moments of a large layer agree."""
    tt.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = nn.Linear(256, 512), torch.nn.Linear(256, 512)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        a, b = a.numpy(), b.detach().numpy()
        bound = 1 / math.sqrt(256)  # both: U(±1/√fan_in), std bound/√3 (within 5 standard errors)
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
        assert abs(np.abs(a).max() - np.abs(b).max()) < 1e-3
        for v in (a, b):
            assert abs(v.std() - bound / math.sqrt(3)) < 5 * 0.45 / math.sqrt(v.size) * bound / math.sqrt(3)


# ---- losses ---------------------------------------------------------------------------------------

CE_CASES = [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(ignore_index=1),
    dict(label_smoothing=0.1), dict(weight=True), dict(weight=True, reduction="sum"),
    dict(weight=True, label_smoothing=0.2), dict(weight=True, label_smoothing=0.2, reduction="none"),
    dict(weight=True, ignore_index=0, label_smoothing=0.05), dict(ignore_index=2, label_smoothing=0.3,
                                                                  reduction="sum"),
]


def run_loss(fn_ours, fn_theirs, x_np, target_np, dtype, weight_np=None, target_is_float=False, **kw):
    x = tt.tensor(x_np.astype(dtype), requires_grad=True)
    tx = torch.tensor(x_np.astype(dtype), requires_grad=True)
    if target_is_float:
        t, tt_ = tt.tensor(target_np.astype(dtype)), torch.tensor(target_np.astype(dtype))
    else:
        t, tt_ = tt.tensor(target_np), torch.tensor(target_np)
    w = tw = None
    if weight_np is not None:
        w, tw = tt.tensor(weight_np.astype(dtype)), torch.tensor(weight_np.astype(dtype))
        kw_ours, kw_theirs = dict(kw, weight=w), dict(kw, weight=tw)
    else:
        kw_ours = kw_theirs = kw
    y, ty = fn_ours(x, t, **kw_ours), fn_theirs(tx, tt_, **kw_theirs)
    close(y, ty, dtype, "loss")
    g = np.random.default_rng(3).standard_normal(ty.shape).astype(dtype)
    y.backward(tt.tensor(g))
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad, dtype, "input grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 4, 3, 2), (4,)], ids=str)
@pytest.mark.parametrize("case", CE_CASES, ids=str)
def test_cross_entropy(dtype, shape, case):
    case = dict(case)
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (shape[0],) + shape[2:]) if len(shape) > 1 else np.array(rng.integers(0, 4))
    if target.ndim and "ignore_index" in case:
        target.reshape(-1)[:2] = case["ignore_index"]
    weight = rng.uniform(0.2, 3.0, 4) if case.pop("weight", False) else None
    run_loss(F.cross_entropy, torch.nn.functional.cross_entropy, x_of(*shape, scale=2.0), target, dtype,
             weight, **case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [dict(), dict(label_smoothing=0.2, weight=True), dict(reduction="none")],
                         ids=str)
def test_cross_entropy_probabilities(dtype, case):
    case = dict(case)
    q = np.random.default_rng(4).uniform(0, 1, (3, 4, 2))
    q /= q.sum(1, keepdims=True)
    weight = np.array([1.0, 0.5, 2.0, 1.5]) if case.pop("weight", False) else None
    run_loss(F.cross_entropy, torch.nn.functional.cross_entropy, x_of(3, 4, 2), q, dtype, weight,
             target_is_float=True, **case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(weight=True),
                                  dict(weight=True, ignore_index=3, reduction="mean")], ids=str)
def test_nll_loss(dtype, case):
    case = dict(case)
    rng = np.random.default_rng(1)
    target = rng.integers(0, 4, (3, 2))
    target[0, 0] = 3
    weight = rng.uniform(0.2, 3.0, 4) if case.pop("weight", False) else None
    run_loss(F.nll_loss, torch.nn.functional.nll_loss, x_of(3, 4, 2), target, dtype, weight, **case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(dtype, reduction):
    run_loss(F.mse_loss, torch.nn.functional.mse_loss, x_of(3, 5), x_of(3, 5, seed=1), dtype,
             target_is_float=True, reduction=reduction)


# ---- optimizers: parameter trajectories over 20 steps ---------------------------------------------

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=str)
def test_optimizer_trajectory(dtype, name, kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(
        getattr(torch, dtype))
    ours = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to(getattr(tt, dtype))
    copy_state(ours, theirs)
    # two groups, the second with its own lr, to exercise param_groups
    t_opt = getattr(torch.optim, name)([{"params": theirs[0].parameters()},
                                        {"params": theirs[2].parameters(), "lr": kwargs["lr"] / 2}], **kwargs)
    o_opt = getattr(optim, name)([{"params": ours[0].parameters()},
                                  {"params": ours[2].parameters(), "lr": kwargs["lr"] / 2}], **kwargs)
    rng = np.random.default_rng(0)
    for step in range(20):
        x = rng.standard_normal((6, 4)).astype(dtype)
        y = rng.integers(0, 3, 6)
        t_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        o_loss = F.cross_entropy(ours(tt.tensor(x)), tt.tensor(y))
        o_opt.zero_grad()
        o_loss.backward()
        o_opt.step()
        close(o_loss, t_loss, dtype, f"loss at step {step}")
    for (n, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        close(p, tp, dtype, f"{n} after 20 steps")
        assert p.dtype.name == dtype
    for p, state in o_opt.state.items():
        for k, v in state.items():
            if isinstance(v, tt.Tensor):
                assert v.dtype is p.dtype and v.device == p.device, f"state {k} left the parameter's dtype"


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm(norm_type, max_norm):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2)).double()
    ours = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2)).double()
    copy_state(ours, theirs)
    x = x_of(3, 4)
    (theirs(torch.tensor(x)) ** 2).sum().backward()
    (ours(tt.tensor(x)) ** 2).sum().backward()
    tn = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type)
    on = nn.utils.clip_grad_norm_(ours.parameters(), max_norm, norm_type)
    close(on, tn, "float64", "total norm")
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        close(p.grad, tp.grad, "float64", "clipped grad")


def test_lambda_lr_matches_torch():
    torch_p = [torch.nn.Parameter(torch.zeros(2))]
    t_opt = torch.optim.SGD(torch_p, lr=0.5)
    o_opt = optim.SGD([nn.Parameter(tt.zeros(2))], lr=0.5)
    f = lambda s: 0.9 ** s + 0.01 * s  # noqa: E731
    t_s = torch.optim.lr_scheduler.LambdaLR(t_opt, f)
    o_s = optim.LambdaLR(o_opt, f)
    for _ in range(10):
        assert o_s.get_last_lr() == pytest.approx(t_s.get_last_lr(), rel=1e-15)
        assert o_opt.param_groups[0]["lr"] == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-15)
        t_opt.step()
        t_s.step()
        o_opt.step()
        o_s.step()
