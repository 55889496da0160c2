"""tinytensor.utils.checkpoint: the same values and gradients as the plain call, the block's
internals not kept between forward and backward, the block run again in backward with its random
state (dropout draws the same mask), and the errors."""
import gc
import weakref

import numpy as np
import pytest

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor.utils.checkpoint import checkpoint


def _model(device):
    tt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.3), nn.Linear(8, 3), nn.Tanh())
    return model.double().to(device)


def _grads(model, x, run):
    for p in model.parameters():
        p.grad = None
    x.grad = None
    tt.manual_seed(7)
    y = run(x)
    (y * y).sum().backward()
    return y.numpy(), [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]


def test_same_values_and_gradients_with_dropout(device):
    model = _model(device)
    x = tt.randn(5, 4, dtype=tt.float64, device=device, requires_grad=True)
    y, grads = _grads(model, x, model)
    y_ck, grads_ck = _grads(model, x, lambda x: checkpoint(model, x, use_reentrant=False))
    np.testing.assert_array_equal(y_ck, y)
    for a, b in zip(grads_ck, grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_the_block_runs_again_in_backward_and_keeps_nothing(device):
    calls, refs = [], []

    def block(x, w, *, scale):
        calls.append(1)
        h = (x @ w).tanh()  # saves its output for backward
        refs.append(weakref.ref(h.array))
        return (h * scale).sin().sum(-1)

    x = tt.randn(6, 3, dtype=tt.float64, device=device, requires_grad=True)
    w = tt.randn(3, 4, dtype=tt.float64, device=device, requires_grad=True)
    plain = block(x, w, scale=2.0)
    gc.collect()
    assert refs[-1]() is not None, "without checkpoint the activation is kept for backward"
    out = checkpoint(block, x, w, scale=2.0)
    gc.collect()
    assert refs[-1]() is None, "the block's activation was let go after forward"
    assert len(calls) == 2
    gx, gw = tt.autograd.grad(out.sum(), [x, w])  # autograd.grad works too (non-reentrant)
    assert len(calls) == 3, "backward ran the block once more"
    ex, ew = tt.autograd.grad(plain.sum(), [x, w])
    np.testing.assert_allclose(gx.numpy(), ex.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), ew.numpy(), rtol=1e-12)


def test_nested_checkpoints_and_retain_graph(device):
    x = tt.randn(4, dtype=tt.float64, device=device, requires_grad=True)

    def inner(v):
        return v.exp() * v

    def outer(v):
        return checkpoint(inner, v.sin()).cos()

    out = checkpoint(outer, x).sum()
    out.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    x.grad = None
    out.backward()  # the saved tensors came back once and are kept (retain_graph)
    np.testing.assert_allclose(x.grad.numpy(), first, rtol=1e-12)
    v = x.detach().numpy()
    s = np.sin(v)
    np.testing.assert_allclose(first, -np.sin(np.exp(s) * s) * np.exp(s) * (1 + s) * np.cos(v), rtol=1e-10)
    with pytest.raises(RuntimeError, match="saved tensors were already freed"):
        out.backward()


def test_a_transformer_layer(device):
    tt.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True)
    layer = layer.double().to(device)
    x = tt.randn(2, 5, 8, dtype=tt.float64, device=device, requires_grad=True)
    y, grads = _grads(layer, x, layer)
    y_ck, grads_ck = _grads(layer, x, lambda x: checkpoint(layer, x))
    np.testing.assert_allclose(y_ck, y, rtol=1e-12)
    for a, b in zip(grads_ck, grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_errors_and_no_grad(device):
    state = {"n": 0}

    def changing(x):
        state["n"] += 1
        return x.exp() if state["n"] == 1 else x.exp().exp()

    x = tt.randn(3, dtype=tt.float64, device=device, requires_grad=True)
    out = checkpoint(changing, x)
    with pytest.raises(RuntimeError, match="checkpoint: running changing again recorded a different graph"):
        out.sum().backward()
    with pytest.raises(TypeError, match="checkpoint: expected a function"):
        checkpoint(x, x)
    with tt.no_grad():
        assert not checkpoint(lambda v: v * 2, x).requires_grad
