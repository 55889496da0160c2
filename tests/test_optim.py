"""Optimizers and schedules: updates on every device (state in the parameter's dtype and device),
zero_grad, param groups, state_dict round trips, the schedules' formulas, and the errors."""
import copy
import math

import numpy as np
import pytest

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor_nn import optim


def model(device="cpu", dtype=tt.float32, seed=0):
    tt.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device).to(dtype)


def train(net, opt, steps, device="cpu", sched=None, seed=1):
    rng = np.random.default_rng(seed)
    dtype = next(net.parameters()).dtype
    for _ in range(steps):
        x = tt.tensor(rng.standard_normal((5, 3)), dtype=dtype, device=device)
        y = tt.tensor(rng.integers(0, 2, 5), device=device)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return loss


OPTS = [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
        (optim.AdamW, dict(lr=0.01))]


@pytest.mark.parametrize("cls, kwargs", OPTS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("dtype", [tt.float32, tt.float64], ids=str)
def test_same_trajectory_on_every_device(device, cls, kwargs, dtype):
    net, ref = model(device, dtype), model("cpu", dtype)
    opt, ref_opt = cls(net.parameters(), **kwargs), cls(ref.parameters(), **kwargs)
    first = [p.numpy().copy() for p in net.parameters()]
    train(net, opt, 5, device)
    train(ref, ref_opt, 5)
    for p, q, p0 in zip(net.parameters(), ref.parameters(), first):
        assert p.device == tt.zeros(1, device=device).device and p.dtype is dtype
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
        assert not np.array_equal(p.numpy(), p0)  # it moved
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5 if dtype is tt.float32 else 1e-12)
    for p, state in opt.state.items():
        for k, v in state.items():
            if isinstance(v, tt.Tensor):
                assert v.dtype is p.dtype and v.device == p.device, f"{k} left the parameter's dtype/device"


def test_update_is_in_place():
    net = model()
    w = net[0].weight
    data, sd = w.array, net.state_dict()
    opt = optim.SGD(net.parameters(), lr=0.1)
    train(net, opt, 1)
    assert net[0].weight is w and w.array is data  # the same array, written in place
    np.testing.assert_array_equal(sd["0.weight"].numpy(), w.numpy())  # state_dict views see the update


def test_sgd_by_hand():
    p = nn.Parameter(tt.tensor([1.0, -2.0], dtype=tt.float64))
    opt = optim.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1)
    g = np.array([0.2, 0.4])
    buf = None
    ref = p.numpy().copy()
    for _ in range(3):
        p.grad = tt.tensor(g, dtype=tt.float64)
        opt.step()
        d = g + 0.1 * ref
        buf = d if buf is None else 0.9 * buf + d
        ref = ref - 0.5 * buf
        np.testing.assert_allclose(p.numpy(), ref, rtol=1e-15)


def test_adam_by_hand():
    p = nn.Parameter(tt.tensor([0.5], dtype=tt.float64))
    opt = optim.Adam([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    m = v = 0.0
    ref = 0.5
    for t in range(1, 4):
        g = 2 * ref
        p.grad = tt.tensor([g], dtype=tt.float64)
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        ref -= 0.1 * (m / (1 - 0.9 ** t)) / (math.sqrt(v / (1 - 0.99 ** t)) + 1e-8)
        assert p.item() == pytest.approx(ref, rel=1e-14)
    assert opt.state[p]["step"] == 3


def test_zero_grad_and_params_without_grad():
    net = model()
    opt = optim.Adam(net.parameters(), lr=0.1)
    train(net, opt, 1)
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    before = [p.numpy().copy() for p in net.parameters()]
    opt.step()  # nothing has a gradient: nothing moves, no state is created for new parameters
    for p, b in zip(net.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)
    frozen = nn.Parameter(tt.ones(2))
    opt.add_param_group({"params": [frozen], "lr": 1.0})
    opt.step()
    assert frozen not in opt.state and np.all(frozen.numpy() == 1)


def test_param_groups():
    net = model()
    opt = optim.SGD([{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.5}], lr=0.1,
                    momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    with pytest.raises(ValueError, match="more than one group"):
        opt.add_param_group({"params": [net[0].weight]})
    assert "SGD (" in repr(opt) and "lr: 0.5" in repr(opt)


@pytest.mark.parametrize("cls, kwargs", OPTS, ids=lambda v: getattr(v, "__name__", ""))
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    net = model()
    opt = cls(net.parameters(), **kwargs)
    train(net, opt, 3)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2, 3] and sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    net2 = model(seed=5)
    net2.load_state_dict(net.state_dict())
    opt2 = cls(net2.parameters(), lr=123.0)
    opt2.load_state_dict(copy.deepcopy(sd))
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    train(net, opt, 3, seed=7)
    train(net2, opt2, 3, seed=7)
    for p, q in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_load_state_dict_casts_to_parameter_dtype_and_device():
    net = model()
    opt = optim.Adam(net.parameters())
    train(net, opt, 1)
    sd = opt.state_dict()
    net64 = model("strict", tt.float64)
    opt64 = optim.Adam(net64.parameters())
    opt64.load_state_dict(sd)
    m = opt64.state[net64[0].weight]["exp_avg"]
    assert m.dtype is tt.float64 and m.device == "strict"
    np.testing.assert_allclose(m.numpy(), sd["state"][0]["exp_avg"].numpy())


def test_load_state_dict_mismatch():
    opt = optim.SGD(model().parameters(), lr=0.1)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        two = optim.SGD([{"params": model()[0].parameters()}, {"params": model()[2].parameters()}])
        two.load_state_dict(sd)
    with pytest.raises(ValueError, match="4 parameters in the state but 2 in the optimizer"):
        optim.SGD(model()[0].parameters()).load_state_dict(sd)


def test_bad_arguments():
    p = [nn.Parameter(tt.zeros(2))]
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(p, lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.Adam(p[0])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p[0] * 2])
    assert optim.AdamW(p).param_groups[0]["weight_decay"] == 0.01


# ---- schedules ---------------------------------------------------------------------------------

def noam(step, d_model, warmup, factor=1.0):
    step = max(step, 1)
    return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def test_noam():
    opt = optim.Adam([nn.Parameter(tt.zeros(1))], lr=1.0)
    sched = optim.NoamLR(opt, d_model=64, warmup_steps=10, factor=2.0)
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [lrs[-1]]
        sched.step()
    assert lrs == [noam(s, 64, 10, 2.0) for s in range(30)]
    assert lrs[0] == lrs[1] > 0  # step 0 is treated as step 1, not a division by zero
    assert max(lrs) == lrs[10] and lrs[9] < lrs[10] and lrs[11] < lrs[10]


def test_warmup_cosine():
    opt = optim.SGD([nn.Parameter(tt.zeros(1))], lr=1.0)
    sched = optim.WarmupCosineLR(opt, warmup_steps=4, total_steps=10, eta_min=0.1)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(12):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0) and lrs[10] == pytest.approx(0.1) and lrs[12] == 0.1
    assert lrs[7] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        optim.WarmupCosineLR(opt, 10, 10)


def test_lambda_lr_per_group_and_state_dict():
    net = model()
    opt = optim.SGD([{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.2}], lr=0.1)
    sched = optim.LambdaLR(opt, [lambda s: 1.0 / (s + 1), lambda s: 0.5 ** s])
    for _ in range(3):
        sched.step()
    assert sched.get_last_lr() == pytest.approx([0.1 / 4, 0.2 / 8])
    sd = sched.state_dict()
    assert "optimizer" not in sd and "lr_lambdas" not in sd and sd["last_epoch"] == 3
    opt2 = optim.SGD([{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.2}], lr=0.1)
    sched2 = optim.LambdaLR(opt2, [lambda s: 1.0 / (s + 1), lambda s: 0.5 ** s])
    sched2.load_state_dict(sd)
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    with pytest.raises(ValueError, match="one per group"):
        optim.LambdaLR(opt, [lambda s: 1.0])


def test_scheduler_resume_with_last_epoch():
    opt = optim.SGD([nn.Parameter(tt.zeros(1))], lr=1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.NoamLR(opt, 16, 4, last_epoch=5)
    optim.NoamLR(opt, 16, 4)
    sched = optim.NoamLR(opt, 16, 4, last_epoch=5)
    assert sched.last_epoch == 6 and sched.get_last_lr() == [noam(6, 16, 4)]


# ---- clip_grad ---------------------------------------------------------------------------------

def test_clip_grad_norm(device):
    a = nn.Parameter(tt.tensor([3.0, 0.0], dtype=tt.float64, device=device))
    b = nn.Parameter(tt.tensor([[4.0]], dtype=tt.float64, device=device))
    unused = nn.Parameter(tt.zeros(2, device=device))
    a.grad, b.grad = a.detach().clone(), b.detach().clone()
    total = nn.utils.clip_grad_norm_([a, b, unused], max_norm=1.0)
    assert isinstance(total, tt.Tensor) and total.device == a.device and total.item() == 5.0
    np.testing.assert_allclose(a.grad.numpy(), [3 / (5 + 1e-6), 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [[4 / (5 + 1e-6)]])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=10.0, norm_type="inf")
    assert total.item() == pytest.approx(4 / (5 + 1e-6))
    np.testing.assert_allclose(b.grad.numpy(), [[4 / (5 + 1e-6)]])  # below max_norm: unchanged
    nn.utils.clip_grad_value_([a, b], 0.1)
    np.testing.assert_allclose(a.grad.numpy(), [0.1, 0.0])
    assert nn.utils.clip_grad_norm_([unused], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite():
    a = nn.Parameter(tt.zeros(2))
    a.grad = tt.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_with_an_empty_gradient(device):
    a = nn.Parameter(tt.zeros(0, dtype=tt.float64, device=device))
    b = nn.Parameter(tt.zeros(2, dtype=tt.float64, device=device))
    a.grad, b.grad = tt.zeros(0, dtype=tt.float64, device=device), tt.tensor([-3.0, 1.0], dtype=tt.float64,
                                                                             device=device)
    assert nn.utils.clip_grad_norm_([a, b], 100.0, math.inf).item() == 3.0
    assert nn.utils.clip_grad_norm_([a, b], 100.0, 2.0).item() == pytest.approx(math.sqrt(10), rel=1e-15)


@pytest.mark.parametrize("cls, kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
])
@pytest.mark.parametrize("switches", [dict(maximize=True), dict(foreach=True), dict(fused=False),
                                      dict(maximize=True, fused=True)], ids=str)
def test_pytorch_switches_match_pytorch(cls, kwargs, switches):
    """maximize steps along +g (PyTorch negates g first); foreach/fused pick PyTorch's faster
    implementations of the same update, and tinytensor's one implementation gives its values."""
    from _torch import require_torch

    torch = require_torch()
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((4, 3))
    ours, theirs = tt.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    opt = getattr(optim, cls)([ours], **kwargs, **switches)
    topt = getattr(torch.optim, cls)([theirs], **kwargs, **switches)
    assert opt.param_groups[0]["maximize"] is switches.get("maximize", False)
    for _ in range(4):
        x = rng.standard_normal((5, 4))
        for w, o, lib in ((ours, opt, tt), (theirs, topt, torch)):
            o.zero_grad()
            (lib.tensor(x) @ w).tanh().sum().backward()
            o.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW"])
def test_switches_tinytensor_cannot_honour_raise(cls):
    w = tt.zeros(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match=rf"{cls}\(differentiable=True\)"):
        getattr(optim, cls)([w], lr=0.1, differentiable=True)
    with pytest.raises(TypeError, match="fused must be None, True or False"):
        getattr(optim, cls)([w], lr=0.1, fused="yes")
    if cls != "SGD":
        with pytest.raises(NotImplementedError, match="CUDA graph"):
            getattr(optim, cls)([w], lr=0.1, capturable=True)
