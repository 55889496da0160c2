"""Bad input gets a clear exception that names the op and the shapes, dtypes or devices involved,
never a wrong answer and never a silent device transfer."""
import re
import sys

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import backends


def _raises(exc, *fragments):
    """pytest.raises whose message must contain every fragment (literally)."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


# ---- shapes -------------------------------------------------------------------------------------

def test_matmul_mismatch_names_both_shapes(device):
    a, b = tt.randn(2, 3, device=device), tt.randn(4, 5, device=device)
    with _raises(ValueError, "matmul", "(2, 3)", "(4, 5)"):
        a @ b
    with _raises(ValueError, "matmul", "(3,)", "(4,)"):
        tt.matmul(tt.randn(3, device=device), tt.randn(4, device=device))
    with _raises(ValueError, "matmul", "batch", "(2,)", "(3,)"):
        tt.randn(2, 2, 3, device=device) @ tt.randn(3, 3, 5, device=device)
    with _raises(ValueError, "matmul", "()"):
        tt.matmul(tt.tensor(2.0, device=device), tt.randn(2, device=device))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_non_broadcastable_shapes(device, op):
    a, b = tt.rand(2, 3, device=device) + 0.5, tt.rand(4, device=device) + 0.5
    with _raises(ValueError, op.capitalize(), "(2, 3)", "(4,)"):
        getattr(tt, op)(a, b)


def test_non_broadcastable_where_masked_fill_expand(device):
    x = tt.randn(2, 3, device=device)
    with _raises(ValueError, "where", "(2, 3)", "(4,)"):
        tt.where(x > 0, tt.randn(4, device=device), 0.0)
    with _raises(ValueError, "masked_fill", "(2,)", "(2, 3)"):
        x.masked_fill(tt.tensor([True, False], device=device), 0.0)
    with _raises(ValueError, "broadcast_to", "(2, 3)", "(4, 3)"):
        x.broadcast_to((4, 3))
    with _raises(ValueError, "expand", "(2, 3)"):
        x.expand(3)


def test_shape_op_errors(device):
    x = tt.randn(2, 3, device=device)
    with _raises(ValueError, "reshape", "(2, 3)", "(4, 2)"):
        x.reshape(4, 2)
    with _raises(ValueError, "reshape", "-1"):
        x.reshape(-1, -1)
    with _raises(TypeError, "reshape", "float 3.0", "(2, 3)"):  # not silently int(3.0), as PyTorch
        x.reshape(2, 3.0)
    assert x.reshape(tt.tensor(3, device=device), 2).shape == (3, 2)  # a 0-d integer tensor is a size
    with _raises(ValueError, "cat", "(2, 3)", "(3, 2)"):
        tt.cat([x, tt.randn(3, 2, device=device)])
    with _raises(ValueError, "stack", "(2, 3)", "(3, 2)"):
        tt.stack([x, tt.randn(3, 2, device=device)])
    with _raises(ValueError, "permute", "(0, 0)"):
        x.permute(0, 0)
    with _raises(ValueError, "split", "[1, 1]", "3"):
        x.split([1, 1], dim=1)
    with _raises(ValueError, "tril", "(3,)"):
        tt.tril(tt.randn(3, device=device))
    with _raises(ValueError, "pad"):
        tt.pad(x, (1,))
    with _raises(IndexError, "squeeze", "5", "(2, 3)"):
        x.squeeze(5)
    with _raises(IndexError, "transpose", "4"):
        x.transpose(0, 4)
    with _raises(IndexError, "unsqueeze", "5"):
        x.unsqueeze(5)
    with _raises(IndexError, "sum", "got 2", "(2, 3)"):
        x.sum(dim=2)
    with _raises(ValueError, "sum", "repeats"):
        x.sum(dim=(0, -2))
    with _raises(IndexError, "softmax", "got 5"):
        x.softmax(dim=5)
    with _raises(RuntimeError, "amax", "(0,)"):
        tt.zeros(0, device=device).max()


def test_option_errors(device):
    x = tt.randn(2, 3, device=device)
    with _raises(ValueError, "clamp"):
        x.clamp()
    with _raises(ValueError, "gelu", "fast"):
        tt.gelu(x, approximate="fast")
    with _raises(ValueError, "dropout", "1.5"):
        tt.dropout(x, 1.5)
    with _raises(TypeError, "where", "bool"):
        tt.where(x, x, x)
    with _raises(TypeError, "masked_fill", "bool"):
        x.masked_fill(x, 0.0)
    with _raises(TypeError, "one_hot", "float32"):
        tt.one_hot(x)
    with _raises(TypeError, "embedding", "float32"):
        tt.embedding(x, x)


# ---- autograd misuse --------------------------------------------------------------------------------

def test_backward_on_non_scalar_needs_a_gradient(device):
    y = tt.randn(2, 3, device=device, requires_grad=True) * 2
    with _raises(RuntimeError, "backward", "scalar", "(2, 3)", "gradient="):
        y.backward()
    with _raises(RuntimeError, "backward", "(3,)", "(2, 3)"):
        y.backward(tt.ones(3, device=device))
    with _raises(RuntimeError, "grad_outputs", "(2, 3)"):
        tt.autograd.grad(y, [y])


def test_backward_without_graph(device):
    with _raises(RuntimeError, "backward", "does not require grad"):
        tt.randn(2, device=device).sum().backward()
    with _raises(RuntimeError, "grad", "does not require grad"):
        tt.autograd.grad(tt.randn(2, device=device).sum(), [tt.randn(2, device=device)])


@pytest.mark.parametrize("dtype", [tt.int64, tt.int32, tt.bool])
def test_int_tensors_cannot_require_grad(device, dtype):
    with _raises(TypeError, "floating", dtype.name):
        tt.tensor([1, 2], dtype=dtype, device=device, requires_grad=True)
    with _raises(TypeError, "floating", ".float()"):
        tt.tensor([1, 2], dtype=dtype, device=device).requires_grad_()


def test_inplace_on_saved_tensor_names_op_and_fix(device):
    x = tt.randn(3, device=device, requires_grad=True)
    b = x * 1.0
    c = b.sin()  # saves b
    with tt.no_grad():
        b.mul_(2.0)
    with _raises(RuntimeError, "Sin", "(3,)", "modified in place", "out-of-place"):
        c.sum().backward()
    with _raises(RuntimeError, "add_", "requires grad", "no_grad"):
        x.add_(1.0)


def test_second_backward_names_the_op(device):
    x = tt.randn(3, device=device, requires_grad=True)
    y = x.exp().sum()
    y.backward()
    with _raises(RuntimeError, "retain_graph=True"):
        y.backward()


# ---- devices ----------------------------------------------------------------------------------------

@pytest.fixture
def cpu_and_strict():
    if "strict" not in backends.available():
        pytest.fail("array_api_strict is a test dependency: pip install -e '.[test]'")
    return tt.randn(2, 3), tt.randn(2, 3, device="strict")


def test_mixed_devices_name_both_and_move_nothing(cpu_and_strict):
    c, s = cpu_and_strict
    c_data, s_data = c.array, s.array
    attempts = [
        ("Add", lambda: c + s), ("Add", lambda: s + c), ("Mul", lambda: c * s),
        ("MatMul", lambda: c @ s.mT), ("Cat", lambda: tt.cat([c, s])),
        ("Where", lambda: tt.where(c > 0, c, s)),
        ("Maximum", lambda: tt.maximum(c, s)), ("equal", lambda: c == s),
        ("embedding", lambda: tt.embedding(tt.tensor([0]), s)),
        ("index", lambda: c[tt.tensor([0], device="strict")]),
        ("copy_", lambda: c.copy_(s)), ("__setitem__", lambda: c.__setitem__(0, s[0])),
        ("Add", lambda: c.add_(s)),
    ]
    for op, attempt in attempts:
        with _raises(RuntimeError, op, "cpu", "strict"):
            attempt()
    assert c.device == "cpu" and s.device == "strict"
    assert c.array is c_data and s.array is s_data
    assert type(c.array) is np.ndarray and type(s.array) is not np.ndarray


def test_explicit_transfer_works_and_carries_gradients(cpu_and_strict):
    c, _ = cpu_and_strict
    c = c.double().requires_grad_()
    s = c.to("strict")
    assert s.device == "strict" and s.dtype is tt.float64
    (s * 2.0).sum().backward()
    assert c.grad.device == "cpu"
    np.testing.assert_array_equal(c.grad.numpy(), np.full((2, 3), 2.0))


def test_missing_cupy_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # "import cupy" now raises ImportError
    monkeypatch.setattr(backends, "_instances", {k: v for k, v in backends._instances.items()
                                                 if not k.startswith("cuda")})
    hint = 'pip install "tinytensor[cuda12]"'
    with _raises(RuntimeError, "CuPy", hint):
        tt.tensor([1.0], device="cuda")
    with _raises(RuntimeError, hint):
        tt.zeros(2, device="cuda:0")
    with _raises(RuntimeError, hint):
        tt.ones(2).to("cuda")
    assert "cupy" not in backends.available()


def test_unknown_device_lists_the_known_ones():
    with _raises(RuntimeError, "'tpu'", "cpu", "cuda", "register"):
        tt.tensor([1.0], device="tpu")


def test_numpy_arrays_are_not_silently_converted(device):
    x = tt.randn(3, device=device)
    with _raises(TypeError, "add", "ndarray", "(3,)", "tt.tensor"):
        x + np.ones(3)
    with _raises(TypeError, "mul", "ndarray", "tt.tensor"):
        np.ones(3) * x


# ---- indices ----------------------------------------------------------------------------------------

def test_index_out_of_range(device):
    x = tt.randn(2, 3, device=device)
    with _raises(IndexError, "index 5", "size 2", "(2, 3)"):
        x[tt.tensor([0, 5], device=device)]
    with _raises(IndexError, "index -4", "dimension 1", "size 3"):
        x[:, tt.tensor([-4], device=device)]
    with _raises(IndexError, "index 2", "(2, 3)"):
        x[2]
    with _raises(IndexError, "index -4"):
        x[0, -4]
    with _raises(IndexError, "too many indices", "(2, 3)"):
        x[0, 0, tt.tensor([0], device=device)]
    with _raises(IndexError, "integer or bool", "float32"):
        x[tt.tensor([0.0], device=device)]
    with _raises(IndexError, "mask", "(3,)", "(2, 3)"):
        x[tt.tensor([True, False, True], device=device)]


def test_embedding_and_one_hot_out_of_range(device):
    w = tt.randn(4, 2, device=device)
    with _raises(IndexError, "embedding", "7", "4 rows"):
        tt.embedding(tt.tensor([0, 7], device=device), w)
    with _raises(IndexError, "embedding", "-1", "4 rows"):
        tt.embedding(tt.tensor([-1], device=device), w)
    with _raises(IndexError, "one_hot", "[0, 3)", "3"):
        tt.one_hot(tt.tensor([0, 3], device=device), 3)
    with _raises(IndexError, "one_hot", "-1"):
        tt.one_hot(tt.tensor([-1, 1], device=device), 3)


def test_item_and_len_errors(device):
    with _raises(RuntimeError, "item", "6 elements"):
        tt.randn(2, 3, device=device).item()
    with _raises(TypeError, "0-d"):
        len(tt.tensor(1.0, device=device))


def test_einsum_unsupported_backend_says_so():
    if "strict" not in backends.available():
        pytest.fail("array_api_strict is a test dependency")
    s = tt.randn(2, 2, device="strict")
    with _raises(NotImplementedError, "einsum", "strict"):
        tt.einsum("ij,jk->ik", s, s)


# ---- numerics at the edges --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [tt.float32, tt.float64])
def test_softmax_finite_for_huge_logits(device, dtype):
    logits = tt.tensor([[1e4, -1e4, 0.0, 1e4], [-1e4, -1e4, -1e4, -1e4]], dtype=dtype, device=device,
                       requires_grad=True)
    p = logits.softmax(-1)
    lp = logits.log_softmax(-1)
    lse = logits.logsumexp(-1)
    for t in (p, lp, lse):
        assert np.isfinite(t.numpy()).all(), t
    np.testing.assert_allclose(p.numpy(), [[0.5, 0, 0, 0.5], [0.25] * 4], atol=1e-7)
    np.testing.assert_allclose(lp.numpy()[:, 0], [-np.log(2.0), -np.log(4.0)], rtol=1e-6)
    np.testing.assert_allclose(lse.numpy(), [1e4 + np.log(2.0), -1e4 + np.log(4.0)], rtol=1e-7)
    (p.sum() + lp.sum() + lse.sum()).backward()
    assert np.isfinite(logits.grad.numpy()).all()


def test_sigmoid_and_exp_extremes(device):
    x = tt.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], device=device, requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_allclose(y.numpy(), [0, 0, 0.5, 1, 1], atol=1e-30)
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
