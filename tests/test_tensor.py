"""The Tensor API: creation functions, dtypes, devices, DLPack, repr, conversions and seeded randomness."""
import pickle

import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
from tinytensor import backends

# ---- creation --------------------------------------------------------------------------------------

def test_tensor_infers_dtypes_like_torch(device):
    assert tt.tensor([1.0, 2.0], device=device).dtype is tt.float32
    assert tt.tensor(2.5, device=device).dtype is tt.float32
    assert tt.tensor([1, 2], device=device).dtype is tt.int64
    assert tt.tensor([True, False], device=device).dtype is tt.bool
    assert tt.tensor(np.zeros(2, dtype=np.float64), device=device).dtype is tt.float64  # arrays keep theirs
    assert tt.tensor(np.zeros(2, dtype=np.int32), device=device).dtype is tt.int32
    assert tt.tensor([[1, 2], [3, 4]], dtype=tt.float64, device=device).dtype is tt.float64
    assert tt.tensor([1, 2], dtype="float32", device=device).dtype is tt.float32
    assert tt.tensor([1, 2], dtype=float, device=device).dtype is tt.float64  # float64, as torch


def test_tensor_shapes_values_and_copies(device):
    x = tt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and x.numel() == 6
    assert x.size() == (2, 3) and x.size(1) == 3 and len(x) == 2
    assert x.device == device or (device == "cuda" and x.device == "cuda:0")
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [4, 5, 6]])
    s = tt.tensor(3.0, device=device)
    assert s.shape == () and s.ndim == 0 and s.item() == 3.0
    a = np.array([1.0, 2.0])
    t = tt.tensor(a, device=device)
    a[0] = 99.0  # tensor() copies
    assert t.numpy()[0] == 1.0
    u = tt.tensor(t)
    assert u is not t and u.device == t.device
    np.testing.assert_array_equal(tt.tensor([tt.tensor(1.0), tt.tensor(2.0)]).numpy(), [1.0, 2.0])


def test_creation_functions(device):
    for z in (tt.zeros(2, 3, device=device), tt.zeros((2, 3), device=device), tt.empty(2, 3, device=device)):
        assert z.shape == (2, 3) and z.dtype is tt.float32 and not z.numpy().any()
    np.testing.assert_array_equal(tt.ones(2, dtype=tt.int64, device=device).numpy(), [1, 1])
    assert tt.full((2,), 7, device=device).dtype is tt.int64
    assert tt.full((2,), 7.0, device=device).dtype is tt.float32
    assert tt.full((2,), True, device=device).dtype is tt.bool
    np.testing.assert_array_equal(tt.full((1, 2), 1.5, device=device).numpy(), [[1.5, 1.5]])
    r = tt.arange(5, device=device)
    assert r.dtype is tt.int64 and r.tolist() == [0, 1, 2, 3, 4]
    assert tt.arange(2, 8, 3, device=device).tolist() == [2, 5]
    f = tt.arange(0, 1, 0.25, device=device)
    assert f.dtype is tt.float32 and f.tolist() == [0.0, 0.25, 0.5, 0.75]
    np.testing.assert_allclose(tt.linspace(0, 1, 5, device=device).numpy(), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(tt.eye(2, 3, device=device).numpy(), np.eye(2, 3))
    x = tt.randn(2, 3, dtype=tt.float64, device=device)
    for like in (tt.zeros_like(x), tt.ones_like(x), tt.full_like(x, 2.0), tt.randn_like(x), tt.rand_like(x)):
        assert like.shape == x.shape and like.dtype is tt.float64 and like.device == x.device
    assert tt.zeros_like(x, dtype=tt.int32).dtype is tt.int32
    assert tt.ones(2, device=device, requires_grad=True).requires_grad
    i = tt.randint(3, 7, size=(100,), device=device)
    assert i.dtype is tt.int64 and i.numpy().min() >= 3 and i.numpy().max() < 7
    u = tt.rand(1000, device=device).numpy()
    assert 0 <= u.min() and u.max() < 1


def test_as_tensor_reuses_matching_tensors(device):
    x = tt.randn(3, device=device)
    assert tt.as_tensor(x) is x
    assert tt.as_tensor(x, dtype=tt.float64).dtype is tt.float64
    np.testing.assert_array_equal(tt.as_tensor([1, 2], device=device).numpy(), [1, 2])


# ---- dtypes -------------------------------------------------------------------------------------------

def test_dtype_objects():
    assert repr(tt.float32) == "tinytensor.float32"
    assert pickle.loads(pickle.dumps(tt.float64)) is tt.float64
    assert tt.float32.is_floating_point and not tt.int64.is_floating_point
    assert tt.float16.itemsize == 2 and tt.int32.itemsize == 4
    with pytest.raises(TypeError, match="unsupported dtype"):
        tt.tensor([1], dtype="complex64")


def test_dtype_conversions(device):
    x = tt.tensor([1.7, -2.2], device=device)
    assert x.double().dtype is tt.float64 and x.float() is x
    assert x.long().dtype is tt.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype is tt.int32
    assert x.bool().tolist() == [True, True]
    assert x.to(tt.float64).dtype is tt.float64 and x.to("float64").dtype is tt.float64
    assert x.to(dtype=tt.int64).dtype is tt.int64
    assert x.type_as(tt.zeros(1, dtype=tt.float64, device=device)).dtype is tt.float64
    assert x.is_floating_point() and not x.long().is_floating_point()
    if hasattr(backends.for_device(device).xp, "float16"):  # float16 is not in the Array API standard
        assert x.half().dtype is tt.float16


def test_dtype_conversion_is_differentiable(device):
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype is tt.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


# ---- devices ------------------------------------------------------------------------------------------

@pytest.fixture
def strict():
    if "strict" not in backends.available():
        pytest.fail("array_api_strict is a test dependency: pip install -e '.[test]'")
    return "strict"


def test_to_device_and_back(strict):
    x = tt.randn(2, 3)
    s = x.to(strict)
    assert s.device == "strict" and s.backend is backends.for_device("strict")
    assert type(s.array).__module__.startswith("array_api_strict")
    np.testing.assert_array_equal(s.numpy(), x.numpy())
    back = s.to("cpu")
    assert back.device == "cpu" and isinstance(back.array, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to(s).device == "strict"  # to(other tensor): its device and dtype
    both = x.to(strict, tt.float64)
    assert both.device == "strict" and both.dtype is tt.float64


def test_set_default_device(strict):
    assert tt.get_default_device() == "cpu"
    try:
        tt.set_default_device(strict)
        assert tt.get_default_device() == "strict"
        for t in (tt.zeros(2), tt.tensor([1.0]), tt.randn(2), tt.arange(3), tt.full((2,), 1.0), tt.eye(2)):
            assert t.device == "strict"
        assert tt.zeros(2, device="cpu").device == "cpu"
    finally:
        tt.set_default_device("cpu")
    assert tt.zeros(2).device == "cpu"
    with pytest.raises(RuntimeError, match="unknown device"):
        tt.set_default_device("tpu")


def test_device_strings_are_canonical():
    assert backends.canonical_device("cpu") == "cpu"
    assert backends.canonical_device("cuda") == "cuda:0"
    assert backends.canonical_device("cuda:1") == "cuda:1"


# ---- DLPack ---------------------------------------------------------------------------------------------

def test_dlpack_with_numpy_shares_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tt.from_dlpack(a)
    assert t.shape == (2, 3) and t.dtype is tt.float32 and t.device == "cpu"
    a[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0  # zero copy
    back = np.from_dlpack(t)
    np.testing.assert_array_equal(back, a)
    assert np.shares_memory(back, a)


def test_dlpack_from_strict_arrives_on_cpu(strict):
    s = tt.randn(3, device=strict)
    t = tt.from_dlpack(s.array)
    assert t.device == "cpu"
    np.testing.assert_array_equal(t.numpy(), s.numpy())


def test_dlpack_with_torch():
    torch = require_torch()
    tz = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    t = tt.from_dlpack(tz)
    assert t.dtype is tt.float64 and t.shape == (2, 3)
    tz[1, 2] = -1.0
    assert t.numpy()[1, 2] == -1.0  # zero copy from torch
    x = tt.randn(4, 2)
    back = torch.from_dlpack(x)
    assert back.dtype == torch.float32 and tuple(back.shape) == (4, 2)
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    x.array[0, 0] = 7.0
    assert back[0, 0].item() == 7.0  # zero copy to torch
    for dt, tdt in ((tt.int64, torch.int64), (tt.int32, torch.int32), (tt.bool, torch.bool)):
        y = tt.zeros(3, dtype=dt)
        assert torch.from_dlpack(y).dtype == tdt and tt.from_dlpack(torch.zeros(3, dtype=tdt)).dtype is dt


# ---- repr, item, tolist, python protocol -----------------------------------------------------------------

def test_repr(device):
    x = tt.tensor([1.0, 2.5], device=device)
    r = repr(x)
    assert r.startswith("tensor([1. , 2.5]") and "dtype=float32" in r
    assert ("device=" in r) == (device != "cpu")
    assert "requires_grad=True" in repr(tt.ones(2, device=device, requires_grad=True))
    y = tt.ones(2, device=device, requires_grad=True) * 2
    assert "grad_fn=<Mul>" in repr(y)
    assert "int64" in repr(tt.tensor([1, 2], device=device))
    assert repr(tt.tensor(3.0, device=device)).startswith("tensor(3.")


def test_item_tolist_and_python_numbers(device):
    x = tt.tensor([[1.5, 2.0]], device=device)
    assert x.tolist() == [[1.5, 2.0]]
    v = tt.tensor([2.5], device=device).item()
    assert type(v) is float and v == 2.5
    i = tt.tensor(3, device=device).item()
    assert type(i) is int and i == 3
    b = tt.tensor(True, device=device).item()
    assert type(b) is bool and b is True
    assert float(tt.tensor(1.5, device=device)) == 1.5 and int(tt.tensor(4, device=device)) == 4
    assert bool(tt.tensor([1.0], device=device))
    assert [t.item() for t in tt.tensor([1.0, 2.0], device=device)] == [1.0, 2.0]


def test_clone_detach_and_versions(device):
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    c = x.clone()
    assert c.requires_grad and c.grad_fn is not None
    (c * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    with tt.no_grad():
        x.add_(1.0)
    np.testing.assert_array_equal(d.numpy(), [2.0, 3.0])  # detach shares data
    np.testing.assert_array_equal(c.numpy(), [1.0, 2.0])  # clone does not


def test_inplace_methods_and_setitem(device):
    x = tt.zeros(2, 3, device=device)
    x.fill_(2.0)
    x[0] = 5.0
    x[1, 1:] = tt.tensor([7.0, 8.0], device=device)
    x[:, 0] += 1.0
    np.testing.assert_array_equal(x.numpy(), [[6, 5, 5], [3, 7, 8]])
    x.mul_(2).sub_(1).div_(2)
    np.testing.assert_array_equal(x.numpy(), [[5.5, 4.5, 4.5], [2.5, 6.5, 7.5]])
    x.clamp_(3.0, 6.0)
    x.masked_fill_(x > 5.9, 0.0)
    np.testing.assert_array_equal(x.numpy(), [[5.5, 4.5, 4.5], [3.0, 0.0, 0.0]])
    x.copy_(tt.tensor([1.0, 2.0, 3.0], device=device))
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [1, 2, 3]])
    x.zero_()
    assert not x.numpy().any()
    x += 1
    x *= 3
    np.testing.assert_array_equal(x.numpy(), np.full((2, 3), 3.0))
    m = tt.tensor([[True, False, True], [False, False, True]], device=device)
    x[m] = 0.0
    np.testing.assert_array_equal(x.numpy(), [[0, 3, 0], [3, 3, 0]])


# ---- seeded randomness ----------------------------------------------------------------------------------

def test_manual_seed_reproducible_and_equal_on_every_device():
    devices = [d for d in ("cpu", "strict") if d == "cpu" or d in backends.available()]
    draws = {}
    for dev in devices:
        tt.manual_seed(1234)
        draws[dev] = [tt.randn(3, 4, device=dev).numpy(), tt.rand(5, device=dev).numpy(),
                      tt.randint(0, 10, size=(6,), device=dev).numpy()]
    for dev in devices:
        for a, b in zip(draws[dev], draws["cpu"]):
            np.testing.assert_array_equal(a, b)
    tt.manual_seed(1235)
    assert not np.array_equal(tt.randn(3, 4).numpy(), draws["cpu"][0])


def test_rng_state_round_trip():
    tt.manual_seed(7)
    state = tt.get_rng_state()
    a = tt.randn(5).numpy()
    tt.set_rng_state(state)
    np.testing.assert_array_equal(tt.randn(5).numpy(), a)


def test_dropout_seeded(device):
    x = tt.ones(2000, device=device, requires_grad=True)
    tt.manual_seed(3)
    y1 = tt.dropout(x, 0.25)
    tt.manual_seed(3)
    y2 = tt.dropout(x, 0.25)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    kept = y1.numpy() != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y1.numpy()[kept], 1 / 0.75, rtol=1e-6)
    y1.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y1.numpy(), rtol=1e-6)  # the same mask and scale
    assert tt.dropout(x, 0.25, training=False) is x
    assert not tt.dropout(x, 1.0).numpy().any()
    if device != "cpu":  # the same seed gives the same mask on every device
        tt.manual_seed(3)
        np.testing.assert_array_equal(tt.dropout(tt.ones(2000), 0.25).numpy(), y1.numpy())
