"""tinytensor_nn layers, functional ops and init: float64 gradient checks on every device, PyTorch's
parameter names/shapes/init, Module state handling and the errors for bad input; ParameterList,
ParameterDict, CosineSimilarity and PairwiseDistance against PyTorch (the tests taking ``torch``)."""
import math

import numpy as np
import pytest
from _nn_testing import TOL, close, perturb_
from _torch import require_torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor.autograd import gradcheck, gradgradcheck
from tinytensor_nn import init

DTYPES = ["float64", "float32"]


@pytest.fixture
def torch():
    """torch for the parity tests here (skipped where it is missing, as tests/_torch.py says)."""
    return require_torch()


def rand(*shape, device="cpu", seed=0, requires_grad=True, scale=1.0):
    a = np.random.default_rng(seed).standard_normal(shape) * scale
    return tt.tensor(a, dtype=tt.float64, device=device, requires_grad=requires_grad)



def module_gradcheck(module, x, second_order=False):
    """gradcheck of x, *params -> module(x) with the parameters swapped in as inputs."""
    names = [n for n, _ in module.named_parameters()]
    params = [p for _, p in module.named_parameters()]

    def fn(x, *ps):
        saved = [m._parameters.copy() for m in module.modules()]
        try:
            for name, p in zip(names, ps):
                *path, leaf = name.split(".")
                owner = module
                for part in path:
                    owner = owner._modules[part]
                owner._parameters[leaf] = p
            return module(x)
        finally:
            for m, s in zip(module.modules(), saved):
                m._parameters.clear()
                m._parameters.update(s)

    inputs = [x, *params]
    assert gradcheck(fn, inputs)
    if second_order:
        assert gradgradcheck(fn, inputs)


# ---- gradient checks on every device -----------------------------------------------------------

def test_linear_gradcheck(device):
    lin = nn.Linear(3, 2, dtype=tt.float64, device=device)
    module_gradcheck(lin, rand(2, 4, 3, device=device), second_order=True)
    module_gradcheck(nn.Linear(3, 2, bias=False, dtype=tt.float64, device=device), rand(3, device=device))


@pytest.mark.parametrize("upstream", ["sum", "random"])
def test_linear_backward_on_arrays_equals_its_tensor_op_form(device, upstream):
    """With no graph being recorded, LinearFn's backward computes on the arrays; under create_graph=True it
    uses Tensor ops. Same kernels, so the same gradients bit for bit, also for a broadcast upstream
    gradient (the gradient of a sum has zero strides)."""
    lin = nn.Linear(5, 3, dtype=tt.float64, device=device)
    x = rand(2, 4, 5, device=device)
    weights = rand(2, 4, 3, device=device, seed=3, requires_grad=False)
    grads = []
    for create_graph in (False, True):
        y = lin(x)
        out = y.sum() if upstream == "sum" else (y * weights).sum()
        grads.append(tt.autograd.grad(out, [x, lin.weight, lin.bias], create_graph=create_graph))
    for plain, recorded in zip(*grads):
        np.testing.assert_array_equal(plain.numpy(), recorded.detach().numpy())


@pytest.mark.parametrize("shape, normalized", [((3, 4), 4), ((2, 2, 3), (2, 3)), ((5,), 5)])
def test_layer_norm_gradcheck(device, shape, normalized):
    ln = perturb_(nn.LayerNorm(normalized, dtype=tt.float64, device=device))
    module_gradcheck(ln, rand(*shape, device=device, scale=2.0), second_order=True)


@pytest.mark.parametrize("kwargs", [dict(elementwise_affine=False), dict(bias=False), dict(eps=1e-2)])
def test_layer_norm_variants_gradcheck(device, kwargs):
    ln = perturb_(nn.LayerNorm(4, dtype=tt.float64, device=device, **kwargs))
    module_gradcheck(ln, rand(2, 3, 4, device=device), second_order=True)


def test_layer_norm_input_only_needs_grad(device):
    ln = perturb_(nn.LayerNorm(4, dtype=tt.float64, device=device)).requires_grad_(False)
    x = rand(3, 4, device=device)
    assert gradcheck(lambda x: ln(x), [x])
    assert gradgradcheck(lambda x: ln(x), [x])


def test_layer_norm_forward_matches_numpy(device):
    x = rand(3, 5, device=device, requires_grad=False, scale=3.0)
    ln = perturb_(nn.LayerNorm(5, dtype=tt.float64, device=device))
    a = x.numpy()
    ref = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5)
    ref = ref * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(x).numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(), dict(eps=1e-3), dict(elementwise_affine=False)])
def test_rms_norm_gradcheck(device, kwargs):
    rn = perturb_(nn.RMSNorm((2, 3), dtype=tt.float64, device=device, **kwargs))
    module_gradcheck(rn, rand(4, 2, 3, device=device), second_order=True)


def test_rms_norm_forward_matches_numpy(device):
    x = rand(3, 5, device=device, requires_grad=False)
    a = x.numpy()
    ref = a / np.sqrt((a * a).mean(-1, keepdims=True) + np.finfo(np.float64).eps)
    np.testing.assert_allclose(nn.RMSNorm(5, dtype=tt.float64, device=device)(x).numpy(), ref, rtol=1e-12)


def test_embedding_gradcheck_and_padding(device):
    emb = nn.Embedding(5, 3, padding_idx=1, dtype=tt.float64, device=device)
    assert np.all(emb.weight.numpy()[1] == 0)
    idx = tt.tensor([[0, 1, 4], [1, 1, 2]], device=device)

    def fn(w):
        return F.embedding(idx, w, padding_idx=1)

    w = emb.weight.detach().clone().requires_grad_()
    assert gradcheck(lambda w: fn(w) * fn(w), [w])  # nonlinear in w: second use must also skip padding
    out = emb(idx)
    out.backward(tt.ones_like(out))
    g = emb.weight.grad.numpy()
    np.testing.assert_array_equal(g[1], 0.0)  # the padding row gets no gradient although used 3 times
    np.testing.assert_array_equal(g[0], 1.0)
    np.testing.assert_array_equal(g[3], 0.0)
    np.testing.assert_array_equal(g[2], 1.0)


def test_embedding_negative_padding_idx():
    emb = nn.Embedding(4, 2, padding_idx=-1)
    assert emb.padding_idx == 3 and np.all(emb.weight.numpy()[3] == 0)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Tanh(), nn.Sigmoid(),
                                   nn.Softmax(dim=0), nn.LogSoftmax(dim=-1), nn.Identity(3, foo=1)],
                         ids=lambda m: repr(m))
def test_activation_gradcheck(device, layer):
    x = rand(3, 4, device=device, scale=2.0)
    assert gradcheck(lambda x: layer(x), [x])
    if not isinstance(layer, (nn.ReLU, nn.Identity)):
        assert gradgradcheck(lambda x: layer(x), [x])


def test_dropout(device):
    drop = nn.Dropout(0.5)
    x = rand(200, device=device)
    tt.manual_seed(3)
    y = drop(x)
    kept = y.numpy() != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(y.numpy()[kept], 2 * x.numpy()[kept])
    y.backward(tt.ones_like(y))
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * kept)  # gradient flows only where kept, scaled

    def fn(x):
        tt.manual_seed(5)  # the same mask on every call
        return F.dropout(x, 0.3, training=True)

    assert gradcheck(fn, [rand(6, device=device)])
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert np.all(nn.Dropout(1.0)(x).numpy() == 0)
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.5)


def test_dropout_same_mask_on_every_device(device):
    x = tt.ones(50, dtype=tt.float64, device=device)
    tt.manual_seed(11)
    here = F.dropout(x, 0.4).numpy()
    tt.manual_seed(11)
    cpu = F.dropout(tt.ones(50, dtype=tt.float64), 0.4).numpy()
    np.testing.assert_array_equal(here, cpu)


# ---- PyTorch's parameter names, shapes and default init ------------------------------------------

def test_parameter_names_and_shapes():
    shapes = [(n, p.shape) for n, p in nn.Linear(3, 5).named_parameters()]
    assert shapes == [("weight", (5, 3)), ("bias", (5,))]
    assert [n for n, _ in nn.Linear(3, 5, bias=False).named_parameters()] == ["weight"]
    assert [(n, p.shape) for n, p in nn.Embedding(7, 2).named_parameters()] == [("weight", (7, 2))]
    ln = nn.LayerNorm((2, 3))
    assert [(n, p.shape) for n, p in ln.named_parameters()] == [("weight", (2, 3)), ("bias", (2, 3))]
    assert [n for n, _ in nn.LayerNorm(3, bias=False).named_parameters()] == ["weight"]
    assert list(nn.LayerNorm(3, elementwise_affine=False).named_parameters()) == []
    assert [n for n, _ in nn.RMSNorm(3).named_parameters()] == ["weight"]
    assert list(nn.RMSNorm(3, elementwise_affine=False).state_dict()) == []
    assert list(nn.Linear(2, 2).state_dict()) == ["weight", "bias"]
    assert all(p.requires_grad and p.is_leaf for p in nn.Linear(2, 2).parameters())


def test_default_init():
    tt.manual_seed(0)
    lin = nn.Linear(400, 300)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    bound = 1 / math.sqrt(400)  # kaiming_uniform(a=√5) = U(±1/√fan_in), bias the same
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert np.abs(b).max() <= bound and b.std() > 0.4 * bound
    e = nn.Embedding(1000, 50).weight.numpy()
    assert abs(e.mean()) < 0.02 and abs(e.std() - 1) < 0.02  # N(0, 1)
    ln = nn.LayerNorm(6)
    assert np.all(ln.weight.numpy() == 1) and np.all(ln.bias.numpy() == 0)
    assert np.all(nn.RMSNorm(6).weight.numpy() == 1)


def test_init_same_numbers_on_every_device(device):
    for dtype in (tt.float32, tt.float64):
        tt.manual_seed(7)
        here = nn.Linear(4, 3, device=device, dtype=dtype)
        tt.manual_seed(7)
        cpu = nn.Linear(4, 3, dtype=dtype)
        assert here.weight.device == tt.zeros(1, device=device).device and here.weight.dtype is dtype
        for a, b in zip(here.parameters(), cpu.parameters()):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_init_functions(device):
    t = tt.zeros(200, 300, dtype=tt.float64, device=device)
    tt.manual_seed(0)
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 500)
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.99 * bound
    init.xavier_normal_(t)
    assert abs(t.numpy().std() - math.sqrt(2 / 500)) < 0.01 * math.sqrt(2 / 500) * 5
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / 200)) < 0.03 * math.sqrt(2 / 200)
    init.kaiming_uniform_(t, a=0, nonlinearity="relu")
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / 300)
    init.trunc_normal_(t, mean=1.0, std=2.0, a=0.0, b=1.5)
    assert t.numpy().min() >= 0.0 and t.numpy().max() <= 1.5
    init.normal_(t, 3.0, 0.5)
    assert abs(t.numpy().mean() - 3.0) < 0.01 and abs(t.numpy().std() - 0.5) < 0.01
    init.uniform_(t, -1.0, 2.0)
    assert t.numpy().min() >= -1.0 and t.numpy().max() < 2.0
    init.zeros_(t)
    assert np.all(t.numpy() == 0)
    init.ones_(t)
    assert np.all(t.numpy() == 1)
    init.constant_(t, 0.25)
    assert np.all(t.numpy() == 0.25)


def test_init_on_parameters_records_no_graph():
    lin = nn.Linear(3, 3)
    init.xavier_uniform_(lin.weight)
    assert lin.weight.is_leaf and lin.weight.requires_grad and lin.weight.grad_fn is None


def test_calculate_gain_and_fans():
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == 5 / 3 and init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == math.sqrt(1 / 3)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(tt.zeros(3))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(tt.zeros(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(tt.zeros(3), a=1.0, b=0.0)


# ---- Module state, devices, dtypes ----------------------------------------------------------------

def make_net():
    return nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.LayerNorm(4), nn.Linear(4, 2))


def test_state_dict_round_trip():
    tt.manual_seed(0)
    a, b = make_net(), make_net()
    assert list(a.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = tt.randn(2, 3)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert b[0].weight.requires_grad and b[0].weight.is_leaf


def test_load_state_dict_mismatches():
    net = make_net()
    good = net.state_dict()
    missing = {k: v for k, v in good.items() if k != "3.bias"}
    with pytest.raises(RuntimeError, match=r"missing keys: \['3.bias'\]"):
        net.load_state_dict(missing)
    res = net.load_state_dict(missing, strict=False)
    assert res.missing_keys == ["3.bias"] and res.unexpected_keys == []
    extra = dict(good, **{"4.weight": tt.zeros(2)})
    with pytest.raises(RuntimeError, match=r"unexpected keys: \['4.weight'\]"):
        net.load_state_dict(extra)
    assert net.load_state_dict(extra, strict=False).unexpected_keys == ["4.weight"]
    wrong = dict(good, **{"0.weight": tt.zeros(3, 4)})
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: checkpoint \(3, 4\) vs model"):
            net.load_state_dict(wrong, strict=strict)


def test_module_and_input_on_different_devices():
    lin = nn.Linear(3, 2)
    x = tt.randn(4, 3, device="strict")
    with pytest.raises(RuntimeError, match=r"linear: the input is on strict but the parameters are on cpu"):
        lin(x)
    with pytest.raises(RuntimeError, match="layer_norm: the input is on strict"):
        nn.LayerNorm(3)(x)
    with pytest.raises(RuntimeError, match="embedding"):
        nn.Embedding(3, 2)(tt.tensor([0, 1], device="strict"))
    lin.to("strict")
    assert lin.weight.device == "strict" and lin(x).device == "strict"


def test_module_to_dtype_and_dtype_mismatch():
    lin = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"linear: the input is tinytensor.float64 but the parameters are"):
        lin(tt.randn(2, 3, dtype=tt.float64))
    with pytest.raises(TypeError, match="floating-point input"):
        lin(tt.tensor([[1, 2, 3]]))
    lin.double()
    assert lin(tt.randn(2, 3, dtype=tt.float64)).dtype is tt.float64
    with pytest.raises(ValueError, match=r"in_features=3"):
        lin(tt.randn(2, 4, dtype=tt.float64))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(4)(tt.randn(2, 3))


def test_train_eval_and_zero_grad():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    assert net.training and net[1].training
    net.eval()
    assert not net.training and not net[1].training
    x = tt.randn(2, 3)
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())
    net(x).sum().backward()
    assert net[0].weight.grad is not None
    net.zero_grad()
    assert net[0].weight.grad is None
    assert "Linear(in_features=3, out_features=3, bias=True)" in repr(net) and "Dropout(p=0.5)" in repr(net)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 2))
def test_layer_norm_hypothesis_shapes(lead, k):
    shape = tuple(lead) + (3,) * k
    x = rand(*shape, requires_grad=False)
    ln = perturb_(nn.LayerNorm((3,) * k, dtype=tt.float64))
    a = x.numpy()
    axes = tuple(range(a.ndim - k, a.ndim))
    ref = (a - a.mean(axes, keepdims=True)) / np.sqrt(a.var(axes, keepdims=True) + 1e-5)
    ref = ref * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(x).numpy(), ref, rtol=1e-10, atol=1e-12)


def test_deepcopy_of_a_module(device):
    import copy

    net = make_net().to(device)
    net(tt.randn(2, 3, device=device)).sum().backward()
    twin = copy.deepcopy(net)
    for (n, p), q in zip(net.named_parameters(), twin.parameters()):
        assert type(q) is nn.Parameter and q.requires_grad and q.is_leaf and q.device == p.device, n
        assert q.array is not p.array and q.backend is p.backend
        np.testing.assert_array_equal(q.numpy(), p.numpy())
        np.testing.assert_array_equal(q.grad.numpy(), p.grad.numpy())
    with tt.no_grad():
        twin[0].weight.fill_(0.0)
    assert not np.all(net[0].weight.numpy() == 0)
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        copy.deepcopy(net[0].weight * 2)


def test_module_attribute_registration():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = None  # a plain attribute first ...
            self.bias = nn.Parameter(tt.zeros(2))  # ... then a parameter: the parameter must win
            self.head = nn.Linear(2, 2)

    net = Net()
    assert isinstance(net.bias, nn.Parameter) and [n for n, _ in net.named_parameters()][0] == "bias"
    net.bias = None  # keeps the slot, as PyTorch
    assert net.bias is None and "bias" in net._parameters and "bias" not in net.state_dict()
    net.head = None
    assert net.head is None and list(net.state_dict()) == []
    seq = make_net()
    sub = seq[1:3]
    assert isinstance(sub, nn.Sequential) and list(sub.state_dict()) == ["2.weight", "2.bias"]


def test_module_to_keeps_integer_buffers(device):
    class WithBuffers(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("idx", tt.tensor([1, 2]))
            self.register_buffer("scale", tt.ones(2))

    for dtype_arg in (tt.float64, "float64"):
        m = WithBuffers().to(device).to(dtype_arg)
        assert m.idx.dtype is tt.int64 and m.scale.dtype is tt.float64 and m.lin.weight.dtype is tt.float64
        assert m.idx.device == m.lin.weight.device == tt.zeros(1, device=device).device


# ---- ParameterList / ParameterDict vs torch -----------------------------------------------------------

def twin_arrays(*shapes, dtype="float64"):
    return [np.random.default_rng(i).standard_normal(s).astype(dtype) for i, s in enumerate(shapes)]


def test_parameter_list_matches_torch(torch, device):
    a, b, c = twin_arrays((2, 3), (4,), (3, 3))
    ours = nn.ParameterList([tt.tensor(a, device=device), nn.Parameter(tt.tensor(b, device=device))])
    theirs = torch.nn.ParameterList([torch.tensor(a), torch.nn.Parameter(torch.tensor(b))])
    ours.append(tt.tensor(c, device=device)).extend([tt.tensor(b, device=device)])
    theirs.append(torch.tensor(c)).extend([torch.tensor(b)])
    assert len(ours) == len(theirs) == 4
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, tuple(p.shape))
                                                                  for n, p in theirs.named_parameters()]
    assert all(type(p) is nn.Parameter and p.requires_grad and p.is_leaf for p in ours)  # wrapped
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["0", "1", "2", "3"]
    assert ours[-1].shape == ours[1].shape == (4,) and ours[-4] is ours[0]
    assert [p.shape for p in ours[1:3]] == [(4,), (3, 3)] and isinstance(ours[::2], nn.ParameterList)
    ours[0] = tt.zeros(5, device=device)  # replaced, and wrapped
    theirs[0] = torch.zeros(5)
    assert type(ours[0]) is nn.Parameter and ours[0].shape == (5,) and len(ours) == 4
    ours += [tt.ones(1, device=device)]
    assert len(ours) == 5 and list(ours.state_dict())[-1] == "4"
    theirs.append(torch.ones(1))
    shown = repr(ours).replace(f" ({ours[0].device})", "")  # a device other than the CPU is named
    assert shown.replace("tinytensor.", "torch.") == repr(theirs)
    result = ours.load_state_dict({k: tt.tensor(v.detach().numpy(), device=device)
                                   for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours.float()
    assert all(p.dtype is tt.float32 for p in ours.parameters())


def test_parameter_dict_matches_torch(torch, device):
    from collections import OrderedDict

    a, b, c = twin_arrays((2, 3), (4,), (3,))
    ours = nn.ParameterDict({"shift": tt.tensor(b, device=device), "scale": tt.tensor(a, device=device)})
    theirs = torch.nn.ParameterDict({"shift": torch.tensor(b), "scale": torch.tensor(a)})
    assert list(ours.keys()) == list(theirs.keys()) == ["scale", "shift"]  # a plain dict: sorted, as torch
    ours.update(OrderedDict([("z", tt.tensor(c, device=device)), ("a", tt.tensor(c, device=device))]))
    theirs.update(OrderedDict([("z", torch.tensor(c)), ("a", torch.tensor(c))]))
    ours.update([("m", nn.Parameter(tt.tensor(c, device=device)))])  # pairs, in their order
    theirs.update([("m", torch.nn.Parameter(torch.tensor(c)))])
    ours["n"] = tt.tensor(b, device=device)
    theirs["n"] = torch.tensor(b)
    assert list(ours) == list(theirs) == ["scale", "shift", "z", "a", "m", "n"]
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, tuple(p.shape))
                                                                  for n, p in theirs.named_parameters()]
    assert all(type(p) is nn.Parameter and p.requires_grad for p in ours.values())
    assert [k for k, _ in ours.items()] == list(ours.keys()) and len(ours) == len(theirs) == 6
    assert "z" in ours and "q" not in ours and ours.get("q") is None and ours.get("z") is ours["z"]
    del ours["z"]
    del theirs["z"]
    assert ours.pop("a").shape == (3,) and theirs.pop("a").shape == (3,)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["scale", "shift", "m", "n"]
    assert repr(ours).replace(f" ({ours['m'].device})", "") == repr(theirs)
    assert not hasattr(ours, "z")
    ours.double()
    assert ours["scale"].dtype is tt.float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_parameter_containers_train_as_torch(torch, device, dtype):
    """A module whose weights live in a ParameterList and a ParameterDict: the same outputs and
    gradients as its PyTorch twin with the same numbers."""
    w1, w2, b, x = twin_arrays((3, 4), (4, 2), (2,), (5, 3), dtype=dtype)

    def build(lib, lib_nn, new):
        class Net(lib_nn.Module):
            def __init__(self):
                super().__init__()
                self.ws = lib_nn.ParameterList([new(w1), new(w2)])
                self.extra = lib_nn.ParameterDict({"bias": new(b)})

            def forward(self, x):
                for w in self.ws[:-1]:
                    x = lib.tanh(x @ w)
                return x @ self.ws[-1] + self.extra["bias"]

        return Net()

    ours = build(tt, nn, lambda a: tt.tensor(a, device=device))
    theirs = build(torch, torch.nn, torch.tensor)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == [
        "ws.0", "ws.1", "extra.bias"]
    y, ty = ours(tt.tensor(x, device=device)), theirs(torch.tensor(x))
    close(y, ty, dtype, "output")
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        close(p.grad, tp.grad, dtype, f"grad of {name}")


def test_parameter_container_errors():
    pl = nn.ParameterList([tt.zeros(2)])
    with pytest.raises(IndexError, match="ParameterList: index 1 is out of range for a list of length 1"):
        pl[1]
    with pytest.raises(IndexError, match="index -2 is out of range"):
        pl[-2] = tt.zeros(2)
    with pytest.raises(TypeError, match="ParameterList.extend should be called with an iterable, but got "
                                        "Tensor"):
        pl.extend(tt.zeros(3))
    with pytest.raises(TypeError, match="ParameterList: cannot assign 'int' as parameter '0'"):
        pl[0] = 3  # a parameter's slot takes only a Parameter or None, as torch's
    pd = nn.ParameterDict()
    with pytest.raises(TypeError, match=r"ParameterDict: keys must be strings, got 1 \(int\)"):
        pd[1] = tt.zeros(2)
    with pytest.raises(TypeError, match="ParameterDict.update should be called with an iterable of key/value "
                                        "pairs, but got int"):
        pd.update(3)
    with pytest.raises(ValueError, match=r"ParameterDict.update: sequence element #1 must be a \(key, "
                                         r"value\) pair"):
        pd.update([("a", tt.zeros(1)), ("b",)])
    with pytest.raises(RuntimeError, match="ParameterDict should not be called"):
        pd(tt.zeros(1))
    with pytest.raises(AttributeError, match="'ParameterDict' object has no attribute 'missing'"):
        pd["missing"]  # as torch's


# ---- CosineSimilarity / PairwiseDistance vs torch ------------------------------------------------------

def compare_pair(ours, theirs, shapes, dtype, device, torch):
    """ours(x1, x2) and theirs on the same numbers: outputs and both inputs' gradients agree."""
    a, b = twin_arrays(*shapes, dtype=dtype)
    x1, x2 = (tt.tensor(v, device=device, requires_grad=True) for v in (a, b))
    t1, t2 = (torch.tensor(v, requires_grad=True) for v in (a, b))
    y, ty = ours(x1, x2), theirs(t1, t2)
    close(y, ty, dtype, "output")
    g = np.random.default_rng(7).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(tt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    close(x1.grad, t1.grad, dtype, "x1 grad")
    close(x2.grad, t2.grad, dtype, "x2 grad")
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shapes", [
    (dict(), [(4, 5), (4, 5)]), (dict(dim=-1), [(2, 3, 5), (2, 3, 5)]),
    (dict(dim=0, eps=1e-3), [(6, 2), (6, 2)]), (dict(), [(3, 4, 2), (1, 4, 1)]),  # broadcast
], ids=str)
def test_cosine_similarity_matches_torch(torch, device, dtype, kwargs, shapes):
    compare_pair(nn.CosineSimilarity(**kwargs), torch.nn.CosineSimilarity(**kwargs), shapes, dtype, device,
                 torch)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shapes", [
    (dict(), [(4, 5), (4, 5)]), (dict(p=1.0), [(2, 3, 5), (2, 3, 5)]),
    (dict(p=3.0, keepdim=True), [(4, 5), (4, 5)]), (dict(p=math.inf), [(4, 5), (4, 5)]),
    (dict(eps=1e-2), [(5,), (3, 5)]),  # broadcast
    (dict(p=0.5), [(3, 4), (3, 4)]), (dict(keepdim=True), [(6,), (6,)]),
], ids=str)
def test_pairwise_distance_matches_torch(torch, device, dtype, kwargs, shapes):
    compare_pair(nn.PairwiseDistance(**kwargs), torch.nn.PairwiseDistance(**kwargs), shapes, dtype, device,
                 torch)


def test_pairwise_distance_of_equal_rows_and_scalars(torch, device):
    """x1 = x2: the distance is ‖eps‖ (eps added to each difference), with torch's finite gradient."""
    a = np.arange(6.0).reshape(2, 3)
    x, tx = tt.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.pairwise_distance(x, tt.tensor(a, device=device)), torch.pairwise_distance(tx, torch.tensor(a))
    close(y, ty, "float64", "equal rows")
    y.sum().backward()
    ty.sum().backward()
    close(x.grad, tx.grad, "float64", "equal rows grad")
    s = F.pairwise_distance(tt.tensor(1.0, dtype=tt.float64), tt.tensor(3.0, dtype=tt.float64))
    np.testing.assert_allclose(s.numpy(), torch.pairwise_distance(torch.tensor(1.0, dtype=torch.float64),
                                                                  torch.tensor(3.0, dtype=torch.float64)),
                               **TOL["float64"])


def test_distance_gradcheck(device):
    x1, x2 = rand(3, 4, device=device), rand(3, 4, device=device, seed=1)
    for layer in (nn.CosineSimilarity(), nn.PairwiseDistance(), nn.PairwiseDistance(p=3.0, keepdim=True)):
        assert gradcheck(layer, [x1, x2])
        assert gradgradcheck(layer, [x1, x2])


def test_distance_errors():
    with pytest.raises(ValueError, match=r"pairwise_distance: shapes \(3, 4\), \(3, 5\) are not "
                                         r"broadcastable"):
        nn.PairwiseDistance()(tt.randn(3, 4), tt.randn(3, 5))
    with pytest.raises(ValueError, match=r"cosine_similarity: shapes \(3, 4\), \(3, 5\) are not "
                                         r"broadcastable"):
        nn.CosineSimilarity()(tt.randn(3, 4), tt.randn(3, 5))
    with pytest.raises(RuntimeError, match="cosine_similarity: expected floating-point inputs"):
        F.cosine_similarity(tt.tensor([[1, 2]]), tt.tensor([[3, 4]]))


def test_new_names_reached_as_torch_nn():
    import tinytensor.nn as tnn

    for name in ("ParameterList", "ParameterDict", "CosineSimilarity", "PairwiseDistance"):
        assert getattr(tnn, name) is getattr(nn, name)
    for name in ("cosine_similarity", "pairwise_distance"):
        assert getattr(tnn.functional, name) is getattr(F, name) and name in F.__all__
