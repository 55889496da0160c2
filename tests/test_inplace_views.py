"""In-place writes under autograd through views and into tensors that have views, against PyTorch:
the write is recorded on the base (PyTorch's CopySlices) and every view of it takes the new history."""
import numpy as np
import pytest
import torch

import tinytensor as tt


def _write_through_a_row(lib, a, w):
    b = a * 2
    b[0] += w
    return (b * b).sum()


def _mul_a_column_view(lib, a, w):
    b = a * 2
    v = b[:, 1]
    v.mul_(3)
    return (b**2).sum() + (v * v).sum()


def _copy_into_a_transposed_view(lib, a, w):
    b = a * 1
    c = b.T
    c[1].copy_(w[:2])
    return (b * b).sum()


def _another_view_sees_the_write(lib, a, w):
    b = a * 1
    v, u = b[0], b[0:1]
    v.add_(w)
    return (u * u).sum()


def _a_constant_gets_a_history(lib, a, w):
    x = lib.zeros(3, dtype=lib.float64)
    x[1:].copy_(w[:2])
    return (x * w).sum()


def _micrograd_style_accumulation(lib, a, w):
    c = a + 1
    c += c + 1
    return (c * c).sum()


def _setitem_through_a_reshaped_view(lib, a, w):
    b = a.reshape(-1) * 1
    v = b.view(2, 3)
    v[1, 2] = w[0] * 7
    return (b**2).sum()


def _view_used_after_its_base_changed(lib, a, w):
    b = a * 1
    v = b[1]
    b.mul_(2)
    return (v * w).sum()


def _saved_then_written_view_of_view(lib, a, w):
    b = a * 1
    v = b[1:][0, ::2]
    v.sub_(w[1:])
    return (b.exp() * a).sum() + v.sum()


CASES = [_write_through_a_row, _mul_a_column_view, _copy_into_a_transposed_view,
         _another_view_sees_the_write, _a_constant_gets_a_history, _micrograd_style_accumulation,
         _setitem_through_a_reshaped_view, _view_used_after_its_base_changed,
         _saved_then_written_view_of_view]


@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__.strip("_"))
def test_inplace_through_views_matches_pytorch(device, case):
    results = []
    for lib, kw in ((tt, {"device": device}), (torch, {})):
        a = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64, requires_grad=True, **kw)
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True, **kw)
        if lib is tt:
            tt.set_default_device(device)
        try:
            out = case(lib, a, w)
        finally:
            tt.set_default_device("cpu")
        out.backward()
        grads = [None if t.grad is None else np.array(t.grad.numpy()) for t in (a, w)]
        results.append((float(out.item()), *grads))
    for got, want in zip(*results):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_a_view_of_a_leaf_that_requires_grad_is_refused_with_the_fix(device):
    a = tt.ones(3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match=r"mul_: in-place update of a view .* leaf .* tt.no_grad\(\)"):
        a[0].mul_(2)
    with tt.no_grad():  # allowed outside autograd, as in PyTorch
        a[0].mul_(2)
    assert a.tolist() == [2.0, 1.0, 1.0]


def test_an_expanded_view_and_split_outputs_are_refused(device):
    b = tt.ones(3, requires_grad=True, device=device) * 1
    with pytest.raises(RuntimeError, match="expanded view"):
        b.expand(2, 3).mul_(2)
    _, y = (tt.ones(2, 3, requires_grad=True, device=device) * 1).split(1)
    with pytest.raises(RuntimeError, match="output 1 of Split"):
        y.mul_(2)


def test_a_saved_tensor_written_through_a_view_fails_backward_loudly(device):
    a = tt.ones(2, 2, requires_grad=True, device=device)
    b = a * 1
    y = b.exp()  # saves its output y
    y[0].mul_(2)  # y is written through a view: y's saved value is stale for ExpBackward
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


def test_writes_through_a_zero_dimensional_view_reach_the_base(device):
    x = tt.zeros(3, device=device)
    x[1].fill_(5.0)  # x[1] is a 0-d view, not a copy (NumPy would return a scalar)
    x[2].add_(2.0)
    assert x.tolist() == [0.0, 5.0, 2.0]
