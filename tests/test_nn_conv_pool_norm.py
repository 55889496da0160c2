"""Conv1d/Conv2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, BatchNorm1d/2d, GroupNorm,
Flatten/Unflatten and F.normalize/pad/one_hot against their PyTorch twins with copied weights (outputs,
input and parameter gradients, running stats, eval mode) on every device, hypothesis-drawn convolutions
and poolings vs torch, float64 gradient checks of the modules (first and second order), PyTorch's
names/shapes/init, and the errors for bad input."""
import math

import numpy as np
import pytest
from _nn_testing import close, module_gradcheck, perturb_, x_of
from _torch import require_torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
import tinytensor_nn.functional.conv as conv_impl
from tinytensor.autograd import gradcheck, gradgradcheck

torch = require_torch()
TF = torch.nn.functional

DTYPES = ["float64", "float32"]


def copy_state(ours, theirs, device):
    """Load torch's state_dict (parameters and buffers, num_batches_tracked included) into ours."""
    result = ours.load_state_dict({k: tt.tensor(v.detach().numpy(), device=device)
                                   for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []


def randomize_(theirs, seed=3):
    """Random values in torch's parameters (so ones/zeros init cannot hide a wrong gradient)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return theirs


def compare_module(ours, theirs, x_np, dtype, device, seed=9):
    """One forward and backward (random upstream gradient) through both; outputs, the input gradient
    and every parameter gradient agree. Returns the input tensors."""
    x = tt.tensor(x_np.astype(dtype), device=device, requires_grad=True)
    tx = torch.tensor(x_np.astype(dtype), requires_grad=True)
    y, ty = ours(x), theirs(tx)
    close(y, ty, dtype, "output")
    g = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(tt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad, dtype, "input grad")
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    for name, p in ours.named_parameters():
        close(p.grad, theirs_params[name].grad, dtype, f"grad of {name}")
    return x, tx


def rand(*shape, device="cpu", seed=0, scale=1.0, requires_grad=True):
    return tt.tensor(x_of(*shape, seed=seed, scale=scale), dtype=tt.float64, device=device,
                     requires_grad=requires_grad)


# ---- Conv1d / Conv2d vs torch ---------------------------------------------------------------------

CONV2D_CASES = [  # (in, out, kwargs, input shape)
    (3, 4, dict(kernel_size=3), (2, 3, 7, 6)),
    (3, 4, dict(kernel_size=3, padding=1, bias=False), (2, 3, 5, 5)),
    (4, 6, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), (2, 4, 7, 6)),
    (4, 4, dict(kernel_size=3, groups=4, padding="same"), (1, 4, 5, 6)),  # depthwise
    (3, 5, dict(kernel_size=4, padding="same", dilation=2), (2, 3, 9, 8)),  # the odd pad on the far side
    (3, 5, dict(kernel_size=2, padding="valid", stride=3), (2, 3, 8, 7)),
    (3, 8, dict(kernel_size=4, stride=4), (2, 3, 8, 12)),  # the patch-embedding fast path
    (3, 8, dict(kernel_size=(2, 3), stride=(2, 3)), (2, 3, 9, 10)),  # fast path, leftover edges dropped
    (3, 4, dict(kernel_size=3, stride=2, padding=1), (3, 6, 6)),  # unbatched
    (2, 3, dict(kernel_size=2, stride=2), (2, 4, 4)),  # unbatched fast path
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin, cout, kwargs, shape", CONV2D_CASES, ids=str)
def test_conv2d_matches_torch(device, dtype, cin, cout, kwargs, shape):
    theirs = randomize_(torch.nn.Conv2d(cin, cout, **kwargs).to(getattr(torch, dtype)))
    ours = nn.Conv2d(cin, cout, **kwargs, dtype=getattr(tt, dtype), device=device)
    copy_state(ours, theirs, device)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert (ours.kernel_size, ours.stride, ours.padding, ours.dilation, ours.groups) == (
        theirs.kernel_size, theirs.stride, theirs.padding, theirs.dilation, theirs.groups)
    assert repr(ours) == repr(theirs)


CONV1D_CASES = [
    (3, 4, dict(kernel_size=3), (2, 3, 9)),
    (4, 6, dict(kernel_size=3, stride=2, padding=2, dilation=2, groups=2, bias=False), (2, 4, 11)),
    (3, 5, dict(kernel_size=4, padding="same"), (2, 3, 7)),
    (3, 5, dict(kernel_size=3, stride=3), (2, 3, 10)),  # fast path
    (3, 4, dict(kernel_size=2, padding=1), (3, 6)),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin, cout, kwargs, shape", CONV1D_CASES, ids=str)
def test_conv1d_matches_torch(device, dtype, cin, cout, kwargs, shape):
    theirs = randomize_(torch.nn.Conv1d(cin, cout, **kwargs).to(getattr(torch, dtype)))
    ours = nn.Conv1d(cin, cout, **kwargs, dtype=getattr(tt, dtype), device=device)
    copy_state(ours, theirs, device)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)


@st.composite
def conv2d_cases(draw):
    if draw(st.booleans()):  # kernel = stride, no padding: the patchify fast path
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        kw = dict(stride=k, padding=0, dilation=1, groups=1)
    else:
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        kw = dict(stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                  dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))), groups=draw(st.integers(1, 3)),
                  padding=draw(st.one_of(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                         st.sampled_from(["valid", "same"]))))
        if kw["padding"] == "same":
            kw["stride"] = 1
    pads = (0, 0) if isinstance(kw["padding"], str) or kw["padding"] == 0 else kw["padding"]
    dil = (1, 1) if kw["dilation"] == 1 else kw["dilation"]
    g = kw["groups"]
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    size = [draw(st.integers(max(1, dil[i] * (k[i] - 1) + 1 - 2 * pads[i]), 8)) for i in range(2)]
    shape = (draw(st.integers(1, 2)), cin, *size)
    return cin, cout, dict(kw, kernel_size=k, bias=draw(st.booleans())), shape


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(case=conv2d_cases(), seed=st.integers(0, 2 ** 16))
def test_conv2d_hypothesis_matches_torch(device, dtype, case, seed):
    cin, cout, kwargs, shape = case
    theirs = randomize_(torch.nn.Conv2d(cin, cout, **kwargs).to(getattr(torch, dtype)), seed)
    ours = nn.Conv2d(cin, cout, **kwargs, dtype=getattr(tt, dtype), device=device)
    copy_state(ours, theirs, device)
    compare_module(ours, theirs, x_of(*shape, seed=seed), dtype, device)


def test_patchify_fast_path_is_taken_and_agrees_with_the_windows(monkeypatch):
    """kernel = stride, no padding, dilation 1, groups 1: a reshape + one Linear, never _windows."""
    x, w, b = rand(2, 3, 8, 12), rand(5, 3, 4, 4, seed=1), rand(5, seed=2)
    general = F.conv2d(x, w, b, stride=4, dilation=1, padding=(0, 0), groups=1).numpy()

    def windows_not_wanted(*args):
        raise AssertionError("the patch fast path should not build windows")

    monkeypatch.setattr(conv_impl, "_windows", windows_not_wanted)
    fast = F.conv2d(x, w, b, stride=4)
    ref = TF.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), torch.tensor(b.numpy()), stride=4)
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=4), [x, w, b])
    with pytest.raises(AssertionError, match="fast path"):  # a strided conv of another shape does use them
        F.conv2d(x, w, b, stride=2)
    monkeypatch.undo()
    np.testing.assert_allclose(general, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_conv2d_patch_embedding_is_vit_patch_embedding():
    """Conv2d(C, D, P, stride=P) then flatten(2).transpose(1, 2) equals PatchEmbedding with the weight
    reshaped (the relation vit.py documents)."""
    conv = nn.Conv2d(3, 6, 4, stride=4, dtype=tt.float64)
    pe = nn.PatchEmbedding(8, 4, 3, 6, dtype=tt.float64)
    with tt.no_grad():
        pe.proj.weight.copy_(conv.weight.reshape(6, -1))
        pe.proj.bias.copy_(conv.bias)
    x = rand(2, 3, 8, 8, requires_grad=False)
    ours = conv(x).flatten(2).transpose(1, 2)  # (B, N, D)
    np.testing.assert_allclose(ours.numpy(), pe(x).numpy(), rtol=1e-12, atol=1e-12)


def test_functional_conv_matches_torch(device):
    x, w, b = rand(2, 4, 6, 7, device=device), rand(6, 2, 3, 3, device=device, seed=1), rand(6, device=device)
    ref = TF.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), torch.tensor(b.numpy()), stride=(1, 2),
                    padding=1, dilation=(2, 1), groups=2)
    y = F.conv2d(x, w, b, stride=(1, 2), padding=1, dilation=(2, 1), groups=2)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    x1, w1 = rand(2, 3, 9, device=device), rand(4, 3, 2, device=device, seed=4)
    ref1 = TF.conv1d(torch.tensor(x1.numpy()), torch.tensor(w1.numpy()), padding="same", dilation=3)
    np.testing.assert_allclose(F.conv1d(x1, w1, padding="same", dilation=3).numpy(), ref1.numpy(),
                               rtol=1e-12, atol=1e-12)
    np_ints = F.conv2d(x, w, b, stride=np.int64(2), padding=(np.int64(1), 0), groups=2)  # NumPy ints too
    ref2 = TF.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), torch.tensor(b.numpy()), stride=2,
                     padding=(1, 0), groups=2)
    np.testing.assert_allclose(np_ints.numpy(), ref2.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs, shape", [
    (dict(kernel_size=3, stride=2, padding=1, groups=2), (1, 4, 4, 4)),
    (dict(kernel_size=(2, 3), dilation=(2, 1), padding="same"), (1, 2, 3, 4)),
    (dict(kernel_size=2, stride=2), (2, 2, 4, 4)),  # fast path
], ids=str)
def test_conv2d_gradcheck(device, kwargs, shape):
    cin = shape[1]
    conv = perturb_(nn.Conv2d(cin, 2, dtype=tt.float64, device=device, **kwargs))
    x = rand(*shape, device=device)
    assert module_gradcheck(conv, [x])
    args = {k: v for k, v in kwargs.items() if k != "kernel_size"}
    small = rand(1, cin, 3, 4, device=device, seed=5)  # second order: bilinear in (x, w), so cross terms
    assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **args),
                         [small, conv.weight.detach().requires_grad_(), conv.bias.detach().requires_grad_()])


def test_conv1d_gradcheck(device):
    conv = perturb_(nn.Conv1d(2, 3, 3, stride=2, padding=1, dtype=tt.float64, device=device))
    x = rand(1, 2, 6, device=device)
    assert module_gradcheck(conv, [x])
    assert gradgradcheck(lambda x: conv(x) * conv(x), [x])


def test_conv_default_init_and_names():
    tt.manual_seed(0)
    conv = nn.Conv2d(16, 32, (3, 5), groups=2)
    theirs = torch.nn.Conv2d(16, 32, (3, 5), groups=2)
    torch_names = [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert [(n, p.shape) for n, p in conv.named_parameters()] == torch_names
    assert [(n, p.shape) for n, p in conv.named_parameters()] == [("weight", (32, 8, 3, 5)), ("bias", (32,))]
    assert [n for n, _ in nn.Conv1d(2, 2, 3, bias=False).named_parameters()] == ["weight"]
    fan_in = 8 * 3 * 5
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=√5) is U(±1/√fan_in); the bias the same bound
    w, b = conv.weight.numpy(), conv.bias.numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert np.abs(b).max() <= bound and b.std() > 0.3 * bound


# ---- MaxPool2d / AvgPool2d vs torch ----------------------------------------------------------------

MAXPOOL_CASES = [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 8)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 8)),
    (dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=(2, 1), ceil_mode=True), (1, 2, 9, 7)),
    (dict(kernel_size=2, stride=1), (3, 5, 4)),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", MAXPOOL_CASES, ids=str)
def test_max_pool2d_matches_torch(device, dtype, kwargs, shape):
    ours, theirs = nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)
    x = tt.tensor(x_of(*shape).astype(dtype), device=device)
    y, idx = F.max_pool2d(x, return_indices=True, **kwargs)
    ty, tidx = TF.max_pool2d(torch.tensor(x_of(*shape).astype(dtype)), return_indices=True, **kwargs)
    assert idx.dtype is tt.int64
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    close(y, ty, dtype, "output with indices")
    y2, idx2 = nn.MaxPool2d(**kwargs, return_indices=True)(x)
    np.testing.assert_array_equal(idx2.numpy(), tidx.numpy())


AVGPOOL_CASES = [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 8)),
    (dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (2, 3, 7, 8)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 8)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 8, 8)),
    (dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), divisor_override=4), (1, 2, 6, 5)),
    (dict(kernel_size=2, stride=1, padding=1), (3, 5, 4)),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", AVGPOOL_CASES, ids=str)
def test_avg_pool2d_matches_torch(device, dtype, kwargs, shape):
    ours, theirs = nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)


POOL1D_CASES = [  # (kwargs for both, input shape); MaxPool1d adds dilation, AvgPool1d count_include_pad
    (dict(kernel_size=2), (2, 3, 8)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 3, 9)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 8)),
    (dict(kernel_size=(4,), stride=(3,), padding=(2,), ceil_mode=True), (1, 2, 11)),
    (dict(kernel_size=2, stride=1), (3, 5)),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", POOL1D_CASES, ids=str)
@pytest.mark.parametrize("extra", [{}, dict(dilation=2)], ids=["", "dilation"])
def test_max_pool1d_matches_torch(device, dtype, kwargs, shape, extra):
    kwargs = dict(kwargs, **extra)
    ours, theirs = nn.MaxPool1d(**kwargs), torch.nn.MaxPool1d(**kwargs)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)
    x = tt.tensor(x_of(*shape).astype(dtype), device=device)
    y, idx = F.max_pool1d(x, return_indices=True, **kwargs)
    ty, tidx = TF.max_pool1d(torch.tensor(x_of(*shape).astype(dtype)), return_indices=True, **kwargs)
    close(y, ty, dtype, "output with indices")
    assert idx.dtype is tt.int64
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(nn.MaxPool1d(**kwargs, return_indices=True)(x)[1].numpy(), tidx.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", POOL1D_CASES, ids=str)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool1d_matches_torch(device, dtype, kwargs, shape, count_include_pad):
    kwargs = dict(kwargs, count_include_pad=count_include_pad)
    ours, theirs = nn.AvgPool1d(**kwargs), torch.nn.AvgPool1d(**kwargs)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)
    for name in ("kernel_size", "stride", "padding"):
        assert getattr(ours, name) == getattr(theirs, name)
    x = tt.tensor(x_of(*shape).astype(dtype), device=device)
    close(F.avg_pool1d(x, **kwargs), TF.avg_pool1d(torch.tensor(x_of(*shape).astype(dtype)), **kwargs), dtype,
          "functional")


def test_pool1d_is_the_2d_pool_of_height_one(device):
    """max_pool1d and avg_pool1d are max_pool2d and avg_pool2d over a (B, C, 1, L) image, 1 x k windows."""
    x = rand(2, 3, 9, device=device)
    image = x.unsqueeze(2)  # (B, C, 1, L)
    np.testing.assert_array_equal(F.max_pool1d(x, 3, 2, 1, 2).numpy(),
                                  F.max_pool2d(image, (1, 3), (1, 2), (0, 1), (1, 2)).squeeze(2).numpy())
    np.testing.assert_array_equal(F.avg_pool1d(x, 3, 2, 1, True).numpy(),
                                  F.avg_pool2d(image, (1, 3), (1, 2), (0, 1), True).squeeze(2).numpy())


ADAPTIVE_CASES = [  # (module name, output_size, input shape)
    ("AdaptiveAvgPool1d", 3, (2, 3, 7)),  # overlapping bins
    ("AdaptiveAvgPool1d", 1, (2, 3, 5)),  # global: a mean
    ("AdaptiveAvgPool1d", 4, (2, 3, 8)),  # bins that tile: a reshape and a mean
    ("AdaptiveAvgPool1d", (2,), (2, 3, 5)),
    ("AdaptiveAvgPool1d", 9, (2, 3, 4)),  # more bins than inputs
    ("AdaptiveAvgPool1d", 5, (3, 7)),  # unbatched
    ("AdaptiveAvgPool2d", 1, (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", (3, 2), (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", (None, 3), (2, 3, 7, 5)),  # None keeps that size
    ("AdaptiveAvgPool2d", (4, None), (3, 6, 6)),  # unbatched
    ("AdaptiveAvgPool2d", (10, 11), (1, 2, 7, 5)),
    ("AdaptiveAvgPool2d", (2, 4), (1, 2, 4, 8)),
    ("AdaptiveAvgPool2d", 5, (1, 2, 5, 5)),  # identity
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, output_size, shape", ADAPTIVE_CASES, ids=str)
def test_adaptive_avg_pool_matches_torch(device, dtype, name, output_size, shape):
    ours, theirs = getattr(nn, name)(output_size), getattr(torch.nn, name)(output_size)
    compare_module(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)
    f = getattr(F, name.replace("AdaptiveAvgPool", "adaptive_avg_pool"))
    tf = getattr(TF, name.replace("AdaptiveAvgPool", "adaptive_avg_pool"))
    y = f(tt.tensor(x_of(*shape).astype(dtype), device=device), output_size)
    close(y, tf(torch.tensor(x_of(*shape).astype(dtype)), output_size), dtype, "functional")


@settings(max_examples=25, deadline=None)
@given(size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       out=st.tuples(st.integers(1, 10), st.integers(1, 10)), seed=st.integers(0, 2 ** 16))
def test_adaptive_avg_pool2d_hypothesis_matches_torch(device, size, out, seed):
    compare_module(nn.AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), x_of(2, 2, *size, seed=seed),
                   "float64", device)


@pytest.mark.parametrize("pool", [nn.AdaptiveAvgPool1d(3), nn.AdaptiveAvgPool2d((3, 2)),
                                  nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d((2, None))], ids=repr)
def test_adaptive_avg_pool_gradcheck(device, pool):
    x = rand(1, 2, 5, device=device) if isinstance(pool, nn.AdaptiveAvgPool1d) else rand(1, 2, 5, 4,
                                                                                        device=device)
    assert gradcheck(lambda x: pool(x), [x])
    assert gradgradcheck(lambda x: pool(x) * pool(x), [x])


def test_adaptive_avg_pool_global_is_the_mean(device):
    x = rand(2, 3, 5, 4, device=device, requires_grad=False)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1).numpy(), x.mean(dim=(2, 3), keepdim=True).numpy(),
                               rtol=1e-15, atol=0)
    assert F.adaptive_avg_pool2d(x, (0, 2)).shape == (2, 3, 0, 2)  # an empty output, as torch's


def every_window_holds_input(size, k, s, d, p, ceil_mode):
    """Whether each pooling window reads at least one input element. Where one reads only padding
    (possible with dilation), torch's max_pool2d sends that window's gradient to an element outside
    its (H, W) plane, into the next channel; tinytensor sends it nowhere. Such cases are left out."""
    out = conv_impl._out_size("test", tuple(n + 2 * q for n, q in zip(size, p)), k, s, d, ceil_mode, p)
    return all(any(0 <= o * s[i] - p[i] + j * d[i] < size[i] for j in range(k[i]))
               for i in range(2) for o in range(out[i]))


@st.composite
def pool_cases(draw, with_dilation):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if with_dilation else (1, 1)
    p = tuple(draw(st.integers(0, k[i] // 2)) for i in range(2))
    size = [draw(st.integers(max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]), 8)) for i in range(2)]
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()))
    assume(every_window_holds_input(size, k, s, d, p, kw["ceil_mode"]))
    if with_dilation:
        kw["dilation"] = d
    return kw, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)


@settings(max_examples=25, deadline=None)
@given(case=pool_cases(with_dilation=True), seed=st.integers(0, 2 ** 16))
def test_max_pool2d_hypothesis_matches_torch(device, case, seed):
    kwargs, shape = case
    compare_module(nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), x_of(*shape, seed=seed), "float64",
                   device)
    _, idx = F.max_pool2d(tt.tensor(x_of(*shape, seed=seed), device=device), return_indices=True, **kwargs)
    _, tidx = TF.max_pool2d(torch.tensor(x_of(*shape, seed=seed)), return_indices=True, **kwargs)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@settings(max_examples=25, deadline=None)
@given(case=pool_cases(with_dilation=False), count_include_pad=st.booleans(),
       divisor=st.sampled_from([None, None, 3]), seed=st.integers(0, 2 ** 16))
def test_avg_pool2d_hypothesis_matches_torch(device, case, count_include_pad, divisor, seed):
    kwargs, shape = case
    kwargs = dict(kwargs, count_include_pad=count_include_pad, divisor_override=divisor)
    compare_module(nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), x_of(*shape, seed=seed), "float64",
                   device)


@pytest.mark.parametrize("pool", [
    nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), nn.MaxPool2d(2, dilation=2, stride=1),
    nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    nn.AvgPool2d(2, divisor_override=3),
    nn.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
    nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
], ids=repr)
def test_pool_gradcheck(device, pool):
    shape = (1, 2, 9) if type(pool).__name__.endswith("1d") else (1, 2, 4, 5)
    x = rand(*shape, device=device)  # distinct values: the maxima are unique
    assert gradcheck(lambda x: pool(x), [x])
    assert gradgradcheck(lambda x: pool(x) * pool(x), [rand(1, 1, *shape[2:], device=device)])


def test_max_pool2d_ties_and_integers(device):
    """The gradient of tied maxima goes to the first, as torch's; integer images pool (no gradient)."""
    a = np.array([[[[1.0, 1.0, 0.0], [1.0, 0.5, 0.0], [2.0, 2.0, 2.0]]]])
    x, tx = tt.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.max_pool2d(x, 2, stride=1), TF.max_pool2d(tx, 2, stride=1)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    ints = np.arange(30).reshape(1, 2, 3, 5) * 7 % 11 - 5
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        ours = F.max_pool2d(tt.tensor(ints, device=device), **kw)
        assert ours.dtype is tt.int64
        np.testing.assert_array_equal(ours.numpy(), TF.max_pool2d(torch.tensor(ints), **kw).numpy())


# ---- BatchNorm1d / BatchNorm2d vs torch --------------------------------------------------------------

BN_KWARGS = [dict(), dict(momentum=None), dict(momentum=0.3, eps=1e-3), dict(affine=False),
             dict(track_running_stats=False), dict(bias=False)]
BN_SHAPES = [("BatchNorm1d", (5, 3)), ("BatchNorm1d", (4, 3, 5)), ("BatchNorm2d", (4, 3, 5, 2))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", BN_KWARGS, ids=str)
@pytest.mark.parametrize("name, shape", BN_SHAPES, ids=str)
def test_batch_norm_matches_torch(device, dtype, kwargs, name, shape):
    theirs = randomize_(getattr(torch.nn, name)(3, **kwargs).to(getattr(torch, dtype)))
    ours = getattr(nn, name)(3, **kwargs, dtype=getattr(tt, dtype), device=device)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_state(ours, theirs, device)
    if kwargs.get("track_running_stats", True):  # load arbitrary running stats, so eval() shows them
        with torch.no_grad():
            theirs.running_mean.normal_()
            theirs.running_var.uniform_(0.5, 2.0)
            theirs.num_batches_tracked.fill_(4)
        copy_state(ours, theirs, device)
    for step in range(3):  # train: batch statistics; the running stats move
        ours.zero_grad()
        theirs.zero_grad()
        compare_module(ours, theirs, x_of(*shape, seed=step, scale=2.0) + step, dtype, device, seed=step)
        for buf, tbuf in zip(ours.buffers(), theirs.buffers()):
            if tbuf.dtype == torch.int64:
                assert buf.dtype is tt.int64 and buf.item() == tbuf.item() == 5 + step
            else:
                close(buf, tbuf, dtype, f"running stats after step {step}")
    ours.eval()
    theirs.eval()  # eval: the running stats (or the batch's without them)
    ours.zero_grad()
    theirs.zero_grad()
    before = [b.numpy().copy() for b in ours.buffers()]
    compare_module(ours, theirs, x_of(*shape, seed=7) - 1.0, dtype, device)
    for buf, old in zip(ours.buffers(), before):
        np.testing.assert_array_equal(buf.numpy(), old)  # eval leaves them alone
    assert repr(ours) == repr(theirs)


def test_batch_norm_state_dict_and_repr():
    bn = nn.BatchNorm2d(4)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype is tt.int64 and sd["num_batches_tracked"].shape == ()
    assert np.all(sd["running_var"].numpy() == 1) and np.all(sd["running_mean"].numpy() == 0)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(nn.BatchNorm1d(3, affine=False, track_running_stats=False).state_dict()) == []
    assert repr(bn) == repr(torch.nn.BatchNorm2d(4))
    assert repr(nn.BatchNorm1d(3, momentum=None)) == repr(torch.nn.BatchNorm1d(3, momentum=None))
    bn.double()
    assert bn.running_mean.dtype is tt.float64 and bn.num_batches_tracked.dtype is tt.int64
    bn(tt.randn(3, 4, 2, 2, dtype=tt.float64))
    assert bn.num_batches_tracked.item() == 1 and not np.all(bn.running_mean.numpy() == 0)
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0 and np.all(bn.running_var.numpy() == 1)


def test_batch_norm_gradcheck(device):
    x = rand(3, 2, 2, 2, device=device, scale=2.0)
    bn = perturb_(nn.BatchNorm2d(2, dtype=tt.float64, device=device))
    assert module_gradcheck(bn, [x])  # train: through the batch statistics
    assert gradgradcheck(lambda x: bn(x), [x])
    bn.eval()
    assert module_gradcheck(bn, [x])
    bn1 = perturb_(nn.BatchNorm1d(3, dtype=tt.float64, device=device))
    assert module_gradcheck(bn1, [rand(5, 3, device=device)])


def test_functional_batch_norm_matches_torch(device):
    a = x_of(4, 3, 5, scale=2.0)
    rm, rv = np.array([0.1, -0.2, 0.3]), np.array([1.0, 0.5, 2.0])
    w, b = np.array([1.5, -1.0, 0.5]), np.array([0.0, 0.2, -0.3])
    ours_rm, ours_rv = tt.tensor(rm, device=device), tt.tensor(rv, device=device)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    for training in (True, False):
        y = F.batch_norm(tt.tensor(a, device=device), ours_rm, ours_rv, tt.tensor(w, device=device),
                         tt.tensor(b, device=device), training=training, momentum=0.2, eps=1e-4)
        ty = TF.batch_norm(torch.tensor(a), t_rm, t_rv, torch.tensor(w), torch.tensor(b), training=training,
                           momentum=0.2, eps=1e-4)
        close(y, ty, "float64", f"training={training}")
        close(ours_rm, t_rm, "float64", "running_mean")
        close(ours_rv, t_rv, "float64", "running_var")
    y = F.batch_norm(tt.tensor(a, device=device), None, None, training=True)
    close(y, TF.batch_norm(torch.tensor(a), None, None, training=True), "float64", "no running stats")


# ---- GroupNorm vs torch ------------------------------------------------------------------------------

GN_CASES = [(2, 4, (3, 4)), (2, 6, (2, 6, 5)), (3, 6, (2, 6, 3, 4)), (1, 4, (2, 4, 3)), (4, 4, (2, 4, 2, 3)),
            (2, 4, (1, 4, 2, 2, 2))]  # (num_groups, num_channels, input shape)
GN_KWARGS = [dict(), dict(eps=1e-3), dict(affine=False), dict(bias=False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", GN_KWARGS, ids=str)
@pytest.mark.parametrize("groups, channels, shape", GN_CASES, ids=str)
def test_group_norm_matches_torch(device, dtype, kwargs, groups, channels, shape):
    theirs = randomize_(torch.nn.GroupNorm(groups, channels, **kwargs).to(getattr(torch, dtype)))
    ours = nn.GroupNorm(groups, channels, **kwargs, dtype=getattr(tt, dtype), device=device)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_state(ours, theirs, device)
    compare_module(ours, theirs, x_of(*shape, scale=2.0) + 1.0, dtype, device)
    ours.eval()
    theirs.eval()  # no running stats: eval() computes the same
    ours.zero_grad()
    theirs.zero_grad()
    compare_module(ours, theirs, x_of(*shape, seed=4), dtype, device)
    assert repr(ours) == repr(theirs)


def test_group_norm_init_and_names():
    gn, theirs = nn.GroupNorm(3, 6), torch.nn.GroupNorm(3, 6)
    assert [(n, p.shape) for n, p in gn.named_parameters()] == [(n, tuple(p.shape))
                                                                for n, p in theirs.named_parameters()]
    assert np.all(gn.weight.numpy() == 1) and np.all(gn.bias.numpy() == 0) and gn.weight.dtype is tt.float32
    assert list(nn.GroupNorm(3, 6, affine=False).state_dict()) == []
    assert [n for n, _ in nn.GroupNorm(3, 6, bias=False).named_parameters()] == ["weight"]


def test_group_norm_gradcheck(device):
    gn = perturb_(nn.GroupNorm(2, 4, dtype=tt.float64, device=device))
    x = rand(2, 4, 3, device=device, scale=2.0)
    assert module_gradcheck(gn, [x])
    assert gradgradcheck(lambda x: gn(x), [x])


def test_functional_group_norm_matches_torch(device):
    a, w = x_of(3, 6, 4, scale=2.0), x_of(6, seed=1)
    y = F.group_norm(tt.tensor(a, device=device), 3, tt.tensor(w, device=device), eps=1e-3)
    close(y, TF.group_norm(torch.tensor(a), 3, torch.tensor(w), eps=1e-3), "float64", "weight, no bias")
    close(F.group_norm(tt.tensor(a, device=device), 2), TF.group_norm(torch.tensor(a), 2), "float64", "plain")


# ---- Flatten / Unflatten, F.normalize / pad / one_hot ----------------------------------------------

@pytest.mark.parametrize("args", [(), (0,), (1, 2), (2, -1), (0, -2)], ids=str)
def test_flatten_matches_torch(device, args):
    ours, theirs = nn.Flatten(*args), torch.nn.Flatten(*args)
    compare_module(ours, theirs, x_of(2, 3, 4, 5), "float64", device)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("dim, sizes", [(1, (3, 4)), (-1, (5, -1)), (1, (-1, 2, 2)), (0, [2, 1]), (2, (5,))],
                         ids=str)
def test_unflatten_matches_torch(device, dim, sizes):
    ours, theirs = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    compare_module(ours, theirs, x_of(2, 12, 5) if dim != 2 else x_of(2, 3, 5), "float64", device)
    assert repr(ours) == repr(theirs).replace("[2, 1]", "(2, 1)")


def test_flatten_unflatten_round_trip_in_a_cnn(device):
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 3 * 3, 5)).to(device)
    x = tt.randn(2, 1, 6, 6, device=device)
    y = net(x)
    assert y.shape == (2, 5)
    nn.CrossEntropyLoss()(y, tt.tensor([1, 4], device=device)).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    assert nn.Unflatten(1, (4, 3, 3))(net[:5](x)).shape == (2, 4, 3, 3)


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, -1), (3.0, 0), (math.inf, 1)], ids=str)
def test_normalize_matches_torch(device, p, dim):
    a = x_of(3, 4, 2)
    a[1, :, 0] = 0.0  # a zero vector along dim 1: clamped by eps
    x, tx = tt.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.normalize(x, p=p, dim=dim), TF.normalize(tx, p=p, dim=dim)
    close(y, ty, "float64", "normalize")
    g = x_of(3, 4, 2, seed=5)
    y.backward(tt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad, "float64", "normalize grad")
    assert gradcheck(lambda x: F.normalize(x, p=p, dim=dim), [rand(3, 4, 2, device=device)])


def test_pad_and_one_hot_match_torch(device):
    a = x_of(2, 3, 4)
    for pad, kw in (((1, 2), {}), ((1, 0, 2, 1), dict(value=-1.5)), ((-1, 1), {})):
        ours = F.pad(tt.tensor(a, device=device), pad, **kw)
        close(ours, TF.pad(torch.tensor(a), pad, **kw), "float64", f"pad {pad}")
    with pytest.raises(NotImplementedError, match="constant"):
        F.pad(tt.tensor(a, device=device), (1, 1), mode="reflect")
    idx = np.array([[0, 3], [2, 1]])
    for n in (-1, 5):
        ours = F.one_hot(tt.tensor(idx, device=device), n)
        assert ours.dtype is tt.int64
        np.testing.assert_array_equal(ours.numpy(), TF.one_hot(torch.tensor(idx), n).numpy())


def test_reached_as_torch_nn():
    import tinytensor.nn as tnn

    for name in ("Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
                 "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "GroupNorm", "Flatten", "Unflatten"):
        assert getattr(tnn, name) is getattr(nn, name)
    for name in ("conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
                 "adaptive_avg_pool1d", "adaptive_avg_pool2d", "batch_norm", "group_norm", "normalize", "pad",
                 "one_hot"):
        assert getattr(tnn.functional, name) is getattr(F, name)


# ---- bad input -----------------------------------------------------------------------------------

def test_conv_errors():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError, match=r"Conv2d: weight of shape \(4, 3, 3, 3\) with groups=1 expects "
                                           r"input with 3 channels.*\(2, 5, 8, 8\) \(5 channels\)"):
        conv(tt.randn(2, 5, 8, 8))
    with pytest.raises(RuntimeError, match=r"Conv2d: expected a 3-D \(C, H, W\) unbatched or 4-D "
                                           r"\(B, C, H, W\) batched input, got shape \(8, 8\)"):
        conv(tt.randn(8, 8))
    with pytest.raises(RuntimeError, match=r"Conv2d: the padded input is 2 x 8.*kernel spans 3 x 3.*can't be "
                                           r"larger than the input: pad more"):
        conv(tt.randn(1, 3, 2, 8))
    with pytest.raises(RuntimeError, match=r"Conv1d: expected a 2-D \(C, L\) unbatched or 3-D"):
        nn.Conv1d(3, 4, 3)(tt.randn(1, 3, 4, 4))
    with pytest.raises(RuntimeError, match="conv1d: the padded input is 1 x 2"):
        F.conv1d(tt.randn(1, 3, 2), tt.randn(4, 3, 5))
    with pytest.raises(NotImplementedError, match=r"Conv2d: padding_mode='reflect' is not supported yet.*"
                                                  r"padding_mode='zeros', or pad the input yourself"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="in_channels \\(3\\) must be divisible by groups \\(2\\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels \\(3\\) must be divisible by groups \\(2\\)"):
        nn.Conv1d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        F.conv2d(tt.randn(1, 3, 5, 5), tt.randn(4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string 'full'"):
        nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 2 ints"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(TypeError, match="Conv2d: the input is tinytensor.float64 but the parameters are"):
        conv(tt.randn(1, 3, 5, 5, dtype=tt.float64))
    with pytest.raises(TypeError, match="floating-point input"):
        conv(tt.ones(1, 3, 5, 5, dtype=tt.int64))
    with pytest.raises(RuntimeError, match="Conv2d: the input is on strict but the parameters are on cpu"):
        conv(tt.randn(1, 3, 5, 5, device="strict"))
    with pytest.raises(RuntimeError, match=r"conv2d: bias has shape \(3,\), expected \(4,\)"):
        F.conv2d(tt.randn(1, 3, 5, 5), tt.randn(4, 3, 3, 3), tt.randn(3))


def test_pool_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 2\) must be at most half of the kernel "
                                         r"size \(3, 3\)"):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match="avg_pool2d: padding"):
        F.avg_pool2d(tt.randn(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(RuntimeError, match=r"MaxPool2d: input of shape \(1, 3, 4, 4\) is too small for "
                                           r"kernel_size=\(5, 5\).*the output would be 0 x 0"):
        nn.MaxPool2d(5)(tt.randn(1, 3, 4, 4))
    with pytest.raises(RuntimeError, match=r"AvgPool2d: expected a 3-D \(C, H, W\) unbatched or 4-D"):
        nn.AvgPool2d(2)(tt.randn(4, 4))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.MaxPool2d(2, stride=0)
    with pytest.raises(RuntimeError, match="divisor_override must not be zero"):
        F.avg_pool2d(tt.randn(1, 1, 4, 4), 2, divisor_override=0)
    with pytest.raises(TypeError, match="AvgPool2d: expected a floating-point input"):
        nn.AvgPool2d(2)(tt.ones(1, 1, 4, 4, dtype=tt.int64))
    with pytest.raises(TypeError, match="bool input"):
        F.max_pool2d(tt.ones(1, 1, 4, 4, dtype=tt.bool), 2)
    with pytest.raises(ValueError, match=r"MaxPool1d: padding \(2,\) must be at most half of the kernel size "
                                         r"\(3,\)"):
        nn.MaxPool1d(3, padding=2)
    with pytest.raises(RuntimeError, match=r"max_pool1d: input of shape \(2, 3, 4\) is too small for "
                                           r"kernel_size=\(5,\).*the output would be 0; "):
        F.max_pool1d(tt.randn(2, 3, 4), 5)
    with pytest.raises(RuntimeError, match=r"AvgPool1d: expected a 2-D \(C, L\) unbatched or 3-D \(B, C, L\) "
                                           r"batched input, got shape \(1, 2, 3, 4\)"):
        nn.AvgPool1d(2)(tt.randn(1, 2, 3, 4))
    with pytest.raises(TypeError, match=r"avg_pool1d: kernel_size must be an int or a tuple of 1 ints, got "
                                        r"\(2, 2\)"):
        F.avg_pool1d(tt.randn(1, 2, 6), (2, 2))
    with pytest.raises(TypeError, match=r"AvgPool1d: expected a floating-point input, got "
                                        r"tinytensor.int64 of shape \(1, 2, 4\)"):
        nn.AvgPool1d(2)(tt.ones(1, 2, 4, dtype=tt.int64))


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2-D \(B, C\) or 3-D \(B, C, L\) input, got "
                                         r"shape \(2, 3, 4, 5\).*use BatchNorm2d"):
        nn.BatchNorm1d(3)(tt.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4-D \(B, C, H, W\) input, got shape "
                                         r"\(3, 4, 5\).*x.unsqueeze\(0\)"):
        nn.BatchNorm2d(3)(tt.randn(3, 4, 5))
    with pytest.raises(RuntimeError, match=r"BatchNorm1d: running_mean has shape \(3,\) but the input of "
                                           r"shape \(2, 4\) has 4 channels.*num_features=4"):
        nn.BatchNorm1d(3)(tt.randn(2, 4))
    with pytest.raises(RuntimeError, match=r"BatchNorm2d: weight has shape \(3,\)"):
        nn.BatchNorm2d(3, track_running_stats=False)(tt.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected more than 1 value per channel when "
                                         r"training, got input of shape \(1, 3\)"):
        nn.BatchNorm1d(3)(tt.randn(1, 3))
    assert nn.BatchNorm1d(3).eval()(tt.randn(1, 3)).shape == (1, 3)  # eval: one sample is fine
    with pytest.raises(TypeError, match="BatchNorm2d: the input is tinytensor.float64"):
        nn.BatchNorm2d(3)(tt.randn(2, 3, 2, 2, dtype=tt.float64))
    with pytest.raises(ValueError, match="running_mean and running_var are needed when training=False"):
        F.batch_norm(tt.randn(2, 3), None, None)


def test_adaptive_avg_pool_errors():
    with pytest.raises(RuntimeError, match=r"AdaptiveAvgPool2d: expected a 3-D \(C, H, W\) unbatched or 4-D "
                                           r"\(B, C, H, W\) batched input, got shape \(4, 4\)"):
        nn.AdaptiveAvgPool2d(2)(tt.randn(4, 4))
    with pytest.raises(RuntimeError, match=r"adaptive_avg_pool1d: expected a 2-D \(C, L\) unbatched or 3-D"):
        F.adaptive_avg_pool1d(tt.randn(1, 2, 4, 4), 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be >= 0, got \(-1, 2\)"):
        F.adaptive_avg_pool2d(tt.randn(1, 2, 4, 4), (-1, 2))
    with pytest.raises(TypeError, match="adaptive_avg_pool2d: output_size must be an int or a tuple of 2"):
        F.adaptive_avg_pool2d(tt.randn(1, 2, 4, 4), (2, 2, 2))
    with pytest.raises(TypeError, match="AdaptiveAvgPool1d: expected a floating-point input"):
        nn.AdaptiveAvgPool1d(2)(tt.ones(1, 2, 4, dtype=tt.int64))
    with pytest.raises(RuntimeError, match=r"adaptive_avg_pool2d: expected an input with non-zero spatial "
                                           r"sizes, got shape \(1, 2, 0, 4\)"):
        F.adaptive_avg_pool2d(tt.randn(1, 2, 0, 4), 2)


def test_group_norm_errors():
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(5\) must be divisible by num_groups "
                                         r"\(2\)"):
        nn.GroupNorm(2, 5)
    with pytest.raises(RuntimeError, match=r"group_norm: the 5 channels of the input of shape \(2, 5, 3\) "
                                           r"\(dim 1\) must be divisible by num_groups=2"):
        F.group_norm(tt.randn(2, 5, 3), 2)
    with pytest.raises(RuntimeError, match=r"group_norm: weight has shape \(4,\) but the input of shape "
                                           r"\(2, 6, 3\) has 6 channels"):
        nn.GroupNorm(2, 4)(tt.randn(2, 6, 3))
    with pytest.raises(RuntimeError, match=r"group_norm: expected an input \(B, C, ...\) with at least 2 "
                                           r"dimensions, got shape \(6,\)"):
        F.group_norm(tt.randn(6), 2)
    with pytest.raises(ValueError, match=r"group_norm: expected more than 1 value per group, got input of "
                                         r"shape \(1, 2, 1\) and num_groups=2"):
        F.group_norm(tt.randn(1, 2, 1), 2)
    with pytest.raises(TypeError, match="group_norm: the input is tinytensor.float64 but the parameters are"):
        nn.GroupNorm(2, 4)(tt.randn(2, 4, 3, dtype=tt.float64))
    with pytest.raises(RuntimeError, match="group_norm: the input is on strict but the parameters are on"):
        nn.GroupNorm(2, 4)(tt.randn(2, 4, 3, device="strict"))


def test_flatten_unflatten_errors():
    with pytest.raises(RuntimeError, match=r"unflatten: sizes \[2, 3\] don't multiply up to the size of "
                                           r"dim 1 \(7\) in the input of shape \(2, 7\)"):
        nn.Unflatten(1, (2, 3))(tt.randn(2, 7))
    with pytest.raises(RuntimeError, match="don't multiply up"):
        nn.Unflatten(1, (-1, -1))(tt.randn(2, 4))
    with pytest.raises(TypeError, match="found element of type float at pos 1"):
        nn.Unflatten(1, (2, 3.0))
    with pytest.raises(IndexError, match="unflatten: Dimension out of range"):
        nn.Unflatten(3, (1, 2))(tt.randn(2, 2))
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.Flatten(3)(tt.randn(2, 2))
