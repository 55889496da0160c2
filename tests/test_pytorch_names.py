"""PyTorch's module and dtype names on tinytensor: the import lines of PyTorch code, rewritten by the
rule ``torch`` -> ``tinytensor``, resolve to tinytensor_nn's objects (issue: running PyTorch code)."""
import subprocess
import sys

import numpy as np
import pytest

import tinytensor as tt
import tinytensor_nn


def test_import_tinytensor_does_not_import_the_nn_package():
    code = "import sys, tinytensor; print('tinytensor_nn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_rewritten_import_lines_resolve():
    import tinytensor.nn.functional
    import tinytensor.optim.lr_scheduler as lr_scheduler
    from tinytensor.optim.lr_scheduler import LambdaLR

    import tinytensor as torch
    import tinytensor.nn as nn
    import tinytensor.optim as optim
    from tinytensor import nn as nn2
    from tinytensor.nn import functional as F
    from tinytensor.nn import init

    assert nn is nn2 is torch.nn and F is torch.nn.functional is tinytensor.nn.functional
    assert nn.Linear is tinytensor_nn.Linear and nn.MultiheadAttention is tinytensor_nn.MultiheadAttention
    assert F.scaled_dot_product_attention is tinytensor_nn.functional.scaled_dot_product_attention
    assert init.normal_ is tinytensor_nn.init.normal_ and torch.nn.init.normal_ is init.normal_
    assert optim.AdamW is torch.optim.AdamW is tinytensor_nn.optim.AdamW
    assert lr_scheduler is tinytensor_nn.optim.lr_scheduler and LambdaLR is lr_scheduler.LambdaLR


def test_a_model_written_with_pytorch_names_trains():
    import tinytensor.nn.functional as F

    import tinytensor as torch
    import tinytensor.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    losses = []
    for _ in range(100):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses[::10]


def test_pytorch_dtype_names():
    assert (tt.long, tt.int, tt.float, tt.double, tt.half) == (tt.int64, tt.int32, tt.float32, tt.float64,
                                                              tt.float16)
    assert tt.tensor([1, 2]).to(tt.float).dtype is tt.float32 and tt.zeros(2, dtype=tt.long).dtype is tt.int64
    assert tt.bool.name == "bool"


# ---- dtypes ---------------------------------------------------------------------------------------
def test_every_dtype_promotes_as_pytorch():
    import itertools

    import torch

    names = ["float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool"]
    for a, b in itertools.product(names, names):
        want = str(torch.promote_types(getattr(torch, a), getattr(torch, b))).removeprefix("torch.")
        assert tt.dtypes.promote(tt.dtypes.DTYPES[a], tt.dtypes.DTYPES[b]).name == want, (a, b)


@pytest.mark.parametrize("name", ["uint8", "int8", "int16"])
def test_small_integer_dtypes_compute_as_pytorch(device, name):
    import torch

    values = [[0, 1, 7], [100, 3, 2]]
    x = tt.tensor(values, dtype=getattr(tt, name), device=device)
    tx = torch.tensor(values, dtype=getattr(torch, name))
    for f in (lambda a: a + a, lambda a: a * 2, lambda a: a.sum(), lambda a: a.float() / 2,
              lambda a: a + tt.ones(3, dtype=tt.int8, device=device) if isinstance(a, tt.Tensor) else
              a + torch.ones(3, dtype=torch.int8), lambda a: a.max(), lambda a: a == 7):
        got, want = f(x), f(tx)
        assert got.dtype.name == str(want.dtype).removeprefix("torch."), name
        assert np.array_equal(got.numpy(), want.numpy()), name


def test_numpy_arrays_keep_their_small_integer_dtype():
    for dtype in (np.uint8, np.int8, np.int16):
        assert tt.tensor(np.arange(3, dtype=dtype)).dtype.name == np.dtype(dtype).name
    assert tt.tensor(np.arange(3, dtype=np.uint32)).dtype is tt.int64  # as int64, values kept


def test_bfloat16_is_named_and_refused_by_a_backend_without_it():
    assert tt.bfloat16.is_floating_point and tt.finfo(tt.bfloat16).bits == 16
    with pytest.raises(NotImplementedError, match="does not support dtype tinytensor.bfloat16.*float32"):
        tt.zeros(2, dtype=tt.bfloat16)


def test_finfo_and_iinfo_match_pytorch():
    import torch

    for name in ("float16", "bfloat16", "float32", "float64"):
        a, b = tt.finfo(getattr(tt, name)), torch.finfo(getattr(torch, name))
        for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(a, field) == getattr(b, field), (name, field)
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        a, b = tt.iinfo(getattr(tt, name)), torch.iinfo(getattr(torch, name))
        assert (a.bits, a.min, a.max) == (b.bits, b.min, b.max), name
    with pytest.raises(TypeError, match="iinfo"):
        tt.finfo(tt.int64)


# ---- legacy constructors and type strings ----------------------------------------------------------
def test_legacy_constructors_as_pytorch():
    import torch

    cases = [((), ()), (([1, 2],), ()), (([[1.5], [2]],), ()), ((2, 3), ()), ((np.arange(3),), ())]
    for args, _ in cases:
        got, want = tt.Tensor(*args), torch.Tensor(*args)
        assert got.shape == tuple(want.shape) and got.dtype is tt.float32
        if want.numel() and not all(type(a) is int for a in args):
            assert np.array_equal(got.numpy(), want.numpy())
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor", "ByteTensor"):
        got, want = getattr(tt, name)([1, 0, 2]), getattr(torch, name)([1, 0, 2])
        assert got.dtype.name == str(want.dtype).removeprefix("torch.")
        assert np.array_equal(got.numpy(), want.numpy())
        assert isinstance(got, getattr(tt, name)) and not isinstance(got.to(tt.float16), getattr(tt, name))
    with pytest.raises(TypeError, match="FloatTensor.*tt.tensor"):
        tt.Tensor(2.5)


def test_tensor_type_as_pytorch():
    import torch

    x, tx = tt.tensor([1.5, -2.0]), torch.tensor([1.5, -2.0])
    assert x.type() == tx.type() == "torch.FloatTensor"
    assert x.long().type() == tx.long().type() == "torch.LongTensor"
    for target, ttarget in ((tt.LongTensor, torch.LongTensor), ("torch.DoubleTensor", "torch.DoubleTensor"),
                            (tt.int16, torch.int16)):
        got, want = x.type(target), tx.type(ttarget)
        assert got.dtype.name == str(want.dtype).removeprefix("torch.")
        assert np.array_equal(got.numpy(), want.numpy())


# ---- grad mode --------------------------------------------------------------------------------------
def test_grad_mode_switches_are_context_managers_and_decorators():
    x = tt.ones(2, requires_grad=True)

    @tt.no_grad
    def bare():
        return (x * 2).requires_grad

    @tt.no_grad()
    def called():
        return (x * 2).requires_grad

    @tt.inference_mode()
    def inference():
        return (x * 2).requires_grad

    assert not bare() and not called() and not inference() and (x * 2).requires_grad
    with tt.no_grad():
        with tt.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with tt.inference_mode(False):
        assert (x * 2).requires_grad
    tt.set_grad_enabled(False)  # a call sets the mode, as in PyTorch
    try:
        assert not tt.is_grad_enabled()
    finally:
        tt.set_grad_enabled(True)
    with tt.set_grad_enabled(False):
        assert not tt.is_grad_enabled()
    assert tt.is_grad_enabled()


def test_a_decorated_function_can_call_itself():
    @tt.no_grad()
    def depth(n):
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3 and tt.is_grad_enabled()


# ---- devices ----------------------------------------------------------------------------------------
def test_device_objects_as_pytorch():
    import torch

    for args in (("cpu",), ("cuda",), ("cuda", 1), ("cuda:2",)):
        got, want = tt.device(*args), torch.device(*args)
        assert got.type == want.type and got.index == (0 if want.type == "cuda" and want.index is None
                                                       else want.index)
    assert tt.device("cpu") == "cpu" and tt.ones(2).device.type == "cpu"
    assert tt.zeros(2, device=tt.device("cpu")).device == "cpu"
    dev = tt.device("cuda" if tt.cuda.is_available() else "cpu")  # the first line of many scripts
    assert tt.ones(1, device=dev).device == dev
    with pytest.raises(RuntimeError, match="invalid device string"):
        tt.device("cuda:x")


def test_cuda_module_reports_availability_and_refuses_what_it_lacks():
    assert isinstance(tt.cuda.is_available(), bool)
    assert tt.cuda.device_count() == (tt.cuda.device_count() if tt.cuda.is_available() else 0)
    tt.cuda.synchronize()
    with pytest.raises(NotImplementedError, match=r"torch\.cuda\.Stream.*tinytensor"):
        tt.cuda.Stream()
    with pytest.raises(AttributeError):
        _ = tt.cuda.no_such_thing


# ---- small functions --------------------------------------------------------------------------------
def test_is_tensor_numel_compile_and_unsupported_names():
    x = tt.ones(2, 3)
    assert tt.is_tensor(x) and not tt.is_tensor(np.ones(2)) and tt.numel(x) == 6
    model = tinytensor_nn.Linear(2, 2)
    assert tt.compile(model) is model
    with pytest.raises(NotImplementedError, match=r"torch\.sparse_coo_tensor.*dense"):
        _ = tt.sparse_coo_tensor
    with pytest.raises(AttributeError):
        _ = tt.no_such_function


def test_generator_streams_are_their_own_and_seeded():
    a, b = tt.Generator().manual_seed(7), tt.Generator().manual_seed(7)
    assert np.array_equal(tt.randperm(10, generator=a).numpy(), tt.randperm(10, generator=b).numpy())
    assert tt.randperm(10).dtype is tt.int64 and sorted(tt.randperm(10).tolist()) == list(range(10))
    state = a.get_state()
    first = tt.rand(3, generator=a).numpy()
    assert np.array_equal(tt.rand(3, generator=a.set_state(state)).numpy(), first)
    with pytest.raises(TypeError, match="tinytensor.Generator"):
        tt.rand(2, generator=np.random.default_rng())


def test_the_default_dtype_as_pytorch():
    import torch

    def made(lib):
        return [lib.tensor([1.5]), lib.tensor([1]) * 1.5, lib.tensor([1]).exp(), lib.arange(3.0),
                lib.Tensor([1]), lib.zeros(2), lib.rand(2), lib.full((2,), 0.5), lib.tensor([1]) / 2,
                lib.zeros(2, dtype=float), lib.tensor([1]).to(float), lib.ones(2).float()]

    for default in ("float64", "float32"):
        tt.set_default_dtype(getattr(tt, default))
        torch.set_default_dtype(getattr(torch, default))
        try:
            got = [t.dtype.name for t in made(tt)]
            want = [str(t.dtype).removeprefix("torch.") for t in made(torch)]
            assert got == want, default
            assert tt.get_default_dtype().name == default
        finally:
            tt.set_default_dtype(tt.float32)
            torch.set_default_dtype(torch.float32)
    with pytest.raises(TypeError, match="floating-point"):
        tt.set_default_dtype(tt.int64)


def test_numpy_integer_scalars_index_as_ints(device):
    x = tt.arange(6, device=device).reshape(2, 3)
    assert x[np.int64(1)].tolist() == [3, 4, 5] and x[np.int32(1), np.int64(2)].item() == 5
    assert x[:, np.int64(0):np.int64(2)].shape == (2, 2)


def test_setting_requires_grad_checks_as_pytorch(device):
    x = tt.tensor([1.0, 2.0], dtype=tt.float64, device=device)
    x.requires_grad = True  # micrograd's tests write it this way
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    with pytest.raises(TypeError, match="floating-point"):
        tt.tensor([1, 2], device=device).requires_grad = True
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).requires_grad = False


def test_new_tensors_clamp_aliases_and_nelement_as_pytorch(device):
    x = tt.ones(2, 3, dtype=tt.float64, device=device)
    for t in (x.new_zeros(4, 2), x.new_zeros((4, 2)), x.new_ones(3), x.new_full((2,), 7.5)):
        assert t.dtype is tt.float64 and t.device == x.device and not t.requires_grad
    np.testing.assert_array_equal(x.new_full((2,), 7.5).numpy(), [7.5, 7.5])
    np.testing.assert_array_equal(x.new_ones(3).numpy(), [1.0, 1.0, 1.0])
    assert x.new_zeros(2, dtype=tt.int64).dtype is tt.int64
    assert x.new_ones(2, requires_grad=True).requires_grad
    y = tt.tensor([-1.0, 0.5, 3.0], device=device, requires_grad=True)
    np.testing.assert_array_equal(y.clamp_min(0).numpy(), [0.0, 0.5, 3.0])
    np.testing.assert_array_equal(y.clamp_max(1).numpy(), [-1.0, 0.5, 1.0])
    y.clamp_min(0).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 1.0, 1.0])
    assert x.nelement() == x.numel() == 6


def test_integer_division_and_rounding_refusals_as_pytorch(device):
    i = tt.tensor([5, -7], device=device)
    with pytest.raises(ZeroDivisionError, match="floor_divide: integer division by zero"):
        i // 0
    with pytest.raises(ZeroDivisionError, match="remainder"):
        i % tt.tensor([1, 0], device=device)
    empty = tt.zeros(1, 2, 0, dtype=tt.int64, device=device)  # an empty result divides nothing, as PyTorch
    assert (empty % 0).shape == (empty // tt.tensor([2, 0], device=device).reshape(2, 1)).shape == (1, 2, 0)
    assert empty.clone().remainder_(False).shape == (1, 2, 0)
    np.testing.assert_array_equal((i // 2).numpy(), [2, -4])  # toward -inf, as PyTorch (not C's -3)
    np.testing.assert_array_equal((i % -3).numpy(), [-1, -1])  # the sign of the divisor
    np.testing.assert_array_equal((7 // tt.tensor([2, -2], device=device)).numpy(), [3, -4])
    assert tt.floor(i).dtype is tt.int64  # integers are already whole
    with pytest.raises(TypeError, match="round: not defined for a bool tensor"):
        tt.round(tt.tensor([True], device=device))
    with pytest.raises(TypeError, match="norm: expected a floating-point tensor"):
        i.norm()
    np.testing.assert_array_equal(tt.square(tt.tensor([True, False], device=device)).numpy(), [1, 0])


def test_max_min_any_all_and_where_forms_as_pytorch(device):
    x = tt.tensor([[1.0, 5.0], [3.0, 2.0]], device=device)
    r = x.min(0)
    np.testing.assert_array_equal(r.values.numpy(), [1.0, 2.0])  # a named tuple, as torch.return_types
    np.testing.assert_array_equal(r.indices.numpy(), [0, 1])
    values, indices = tt.max(x, dim=1, keepdim=True)
    assert values.shape == indices.shape == (2, 1)
    np.testing.assert_array_equal(tt.max(x[0], x[1]).numpy(), [3.0, 5.0])  # two tensors: elementwise
    np.testing.assert_array_equal(x.min(x.flip(0)).numpy(), [[1.0, 2.0], [1.0, 2.0]])
    e = tt.eye(2, 3, device=device) > 0
    np.testing.assert_array_equal(e.any(dim=0).numpy(), [True, True, False])
    np.testing.assert_array_equal(e.all(1, keepdim=True).numpy(), [[False], [False]])
    assert e.any(dim=()).shape == (2, 3)  # dim=() reduces nothing for all/any, as PyTorch's
    rows, cols = tt.where(e)  # where(condition) is nonzero(condition, as_tuple=True)
    np.testing.assert_array_equal(rows.numpy(), [0, 1])
    np.testing.assert_array_equal(cols.numpy(), [0, 1])
    with pytest.raises(TypeError, match="where: give both input and other"):
        tt.where(e, 1.0)


def test_dot_outer_lerp_isclose_as_pytorch(device):
    a, b = tt.tensor([1.0, 2.0], device=device), tt.tensor([3.0, 4.0], device=device)
    assert tt.dot(a, b).item() == 11.0 and a.outer(b).shape == (2, 2)
    with pytest.raises(ValueError, match="dot: lengths differ"):
        tt.dot(a, tt.ones(3, device=device))
    with pytest.raises(ValueError, match="outer: expected two 1-D tensors"):
        tt.outer(a.reshape(1, 2), b)
    np.testing.assert_array_equal(a.lerp(b, 0.25).numpy(), [1.5, 2.5])
    x = tt.tensor([1.0, float("inf"), float("nan"), float("inf")], device=device)
    y = tt.tensor([1.0 + 1e-9, float("inf"), float("nan"), float("-inf")], device=device)
    np.testing.assert_array_equal(tt.isclose(x, y).numpy(), [True, True, False, False])
    np.testing.assert_array_equal(x.isclose(y, equal_nan=True).numpy(), [True, True, True, False])
    assert tt.allclose(a, a + 1e-9) is True and not tt.allclose(a, b)


def test_pad_refuses_a_fill_an_integer_dtype_cannot_hold(device):
    """A -inf fill of an int64 tensor was cast silently (found by the fuzzer); PyTorch raises."""
    F = tinytensor_nn.functional
    x = tt.zeros(2, 1, dtype=tt.int64, device=device)
    for value in (float("-inf"), float("nan"), 1e30):
        with pytest.raises(RuntimeError, match="pad: value .* cannot be converted to int64"):
            F.pad(x, (1, -1), value=value)
    with pytest.raises(RuntimeError, match="uint8"):
        F.pad(tt.zeros(2, dtype=tt.uint8, device=device), (1, 0), value=300)
    np.testing.assert_array_equal(F.pad(x, (1, 0), value=2.5).numpy(), [[2, 0], [2, 0]])  # truncated (torch)


def test_random_fills_and_fused_updates_as_pytorch(device):
    w = tt.zeros(400, 5, device=device)
    assert w.normal_(0.5, 0.02) is w and abs(w.mean().item() - 0.5) < 0.01 and 0.018 < w.std().item() < 0.022
    assert w.uniform_(-2, -1) is w and -2 <= w.min().item() and w.max().item() < -1
    tt.manual_seed(3)
    a = tt.empty(4, device=device).normal_(0, 2)
    tt.manual_seed(3)  # the stream nn.init.normal_ draws from
    b = tinytensor_nn.init.normal_(tt.empty(4, device=device), 0, 2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(TypeError, match="normal_: needs a floating-point tensor, got int64"):
        tt.zeros(2, dtype=tt.int64, device=device).normal_()
    with pytest.raises(RuntimeError, match="uniform_: in-place update of a leaf tensor that requires grad"):
        tt.zeros(2, device=device, requires_grad=True).uniform_()
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 1.0
    y.normal_()  # a non-leaf refilled: no gradient reaches x through it (PyTorch's)
    (y.sum() + x.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    v = tt.ones(3, dtype=tt.float64, device=device)
    t1, t2 = tt.tensor([1.0, 2.0, 3.0], dtype=tt.float64, device=device), tt.full((3,), 4.0, dtype=tt.float64,
                                                                                 device=device)
    np.testing.assert_array_equal(v.clone().addcmul_(t1, t2, value=0.5).numpy(), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(v.clone().addcdiv_(t1, t2, value=2).numpy(), [1.5, 2.0, 2.5])
    np.testing.assert_array_equal(v.clone().lerp_(t2, 0.5).numpy(), [2.5, 2.5, 2.5])


def test_in_place_forms_and_other_names_as_pytorch(device):
    x = tt.tensor([0.25, 1.0, 4.0], device=device)
    assert x.sqrt_() is x
    np.testing.assert_array_equal(x.numpy(), [0.5, 1.0, 2.0])
    np.testing.assert_array_equal(x.log2_().numpy(), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x.exp2_().pow_(2).numpy(), [0.25, 1.0, 4.0])
    with pytest.raises(RuntimeError, match="exp_: result type float32 can't be cast to the tensor's dtype"):
        tt.tensor([1, 2], device=device).exp_()
    i = tt.tensor([1, 2, 3], dtype=tt.int32, device=device)
    assert i.cumsum_(0) is i and i.dtype is tt.int32  # in its own dtype, as PyTorch's
    np.testing.assert_array_equal(i.numpy(), [1, 3, 6])
    with pytest.raises(RuntimeError, match="cumsum_: bad in-place call"):
        i.cumsum_(0, dtype=tt.int64)
    a = tt.tensor([0.5, 2.0], dtype=tt.float64, device=device, requires_grad=True)
    b = a * 1.0
    b.sqrt_().pow_(3)  # recorded: the gradient of a^1.5
    b.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 1.5 * np.sqrt([0.5, 2.0]), rtol=1e-15)
    m = tt.ones(2, 3, device=device)
    np.testing.assert_array_equal(m.triu_(1).numpy(), [[0, 1, 1], [0, 0, 1]])
    y = tt.tensor([1.0, -2.0, 3.0], device=device)
    np.testing.assert_array_equal(y.where(y > 0, 0.0).numpy(), [1.0, 0.0, 3.0])
    assert y.multiply(2).tolist() == [2.0, -4.0, 6.0] and y.less(0).tolist() == [False, True, False]
    assert y.reshape_as(tt.ones(3, 1)).shape == (3, 1) and y.is_contiguous()
    n = y.new_tensor([[1, 2]])
    assert n.dtype is tt.float32 and n.device == y.device and y.new_empty(2, 2).shape == (2, 2)
    b = tt.tensor([True, False], device=device)
    np.testing.assert_array_equal((b ** False).numpy(), [True, True])  # bool logic, as PyTorch (not int8)
    assert (b ** True).dtype is tt.bool and (b ** 2).dtype is tt.int64
    with pytest.raises(TypeError, match="pow: a bool base to a bool tensor power is not supported"):
        b ** b


def test_every_integer_fill_refuses_a_value_its_dtype_cannot_hold(device):
    """tt.full((2,), nan, dtype=int64) gave -2^63 silently; every op that writes a Python number into an
    integer tensor now refuses inf, NaN and out-of-range values, as PyTorch does (and truncates 2.7)."""
    z = lambda dtype=tt.int64: tt.zeros(2, dtype=dtype, device=device)  # noqa: E731
    writes = {
        "full": lambda v: tt.full((2,), v, dtype=tt.int64, device=device),
        "fill_": lambda v: z().fill_(v),
        "__setitem__": lambda v: z().__setitem__(0, v),
        "masked_fill": lambda v: z().masked_fill(tt.tensor([True, False], device=device), v),
        "index_fill": lambda v: z().index_fill(0, tt.tensor([0], device=device), v),
        "scatter": lambda v: z().scatter_(0, tt.tensor([0], device=device), value=v),
        "pad": lambda v: tinytensor_nn.functional.pad(z(), (1, 0), value=v),
    }
    for op, write in writes.items():
        for v in (float("nan"), float("inf"), 1e30, 2.0 ** 63):
            with pytest.raises(RuntimeError, match=f"{op}: value .* cannot be converted to int64 without"):
                write(v)
    np.testing.assert_array_equal(writes["full"](2.7).numpy(), [2, 2])
    with pytest.raises(RuntimeError, match=r"uint8 without overflow \(its range is 0..255\)"):
        z(tt.uint8).fill_(256)
    assert z(tt.uint8).fill_(255).tolist() == [255, 255] and z(tt.int8).fill_(-128).tolist() == [-128, -128]
    empty = tt.zeros(0, dtype=tt.int64, device=device)  # an empty index writes nothing: nothing to convert
    assert empty.scatter_(0, tt.zeros(0, dtype=tt.int64, device=device), value=float("nan")).shape == (0,)


def test_distances_positions_and_distinct_values_as_pytorch(device):
    """The corners of atan2, nan_to_num, cdist, cosine_similarity, searchsorted, unique and diff that the
    catalogue's samples avoid, each against PyTorch's answer (written out)."""
    inf, nan = float("inf"), float("nan")
    t = lambda v, **kw: tt.tensor(v, device=device, **kw)  # noqa: E731
    # atan2: the gradient at the origin is 0 (PyTorch's), and numbers are refused as PyTorch refuses them
    a, b = t([0.0, 1e-200], dtype=tt.float64, requires_grad=True), t([0.0, 1e-200], dtype=tt.float64,
                                                                      requires_grad=True)
    tt.atan2(a, b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0] and b.grad.tolist() == [0.0, 0.0]
    with pytest.raises(TypeError, match="atan2: other must be a Tensor, got float"):
        tt.atan2(a, 2.0)
    assert tt.atan2(t([1]), t([3])).dtype is tt.float32
    # nan_to_num: the default replacements are the dtype's limits; the gradient is 0 where x was not finite
    for dtype in (tt.float32, tt.float64):
        big = float(np.finfo(dtype.name).max)
        x = t([1.0, inf, -inf, nan], dtype=dtype, requires_grad=True)
        y = tt.nan_to_num(x)
        assert y.tolist() == [1.0, big, -big, 0.0]
        y.backward(t([1.0, 2.0, 3.0, 4.0], dtype=dtype))
        assert x.grad.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert tt.nan_to_num(t([1, 2])).dtype is tt.int64
    # cdist: p = inf gives each tied element the full gradient (PyTorch's; amax would split it)
    x1, x2 = t([[0.0, 0.0]], requires_grad=True), t([[1.0, -1.0]])
    tt.cdist(x1, x2, p=inf).sum().backward()
    assert x1.grad.tolist() == [[-1.0, 1.0]]
    x1 = t([[1.0, 2.0]], requires_grad=True)  # a zero distance has gradient 0, also for p < 1
    for p in (2.0, 1.0, 0.5, 0.0):
        x1.grad = None
        tt.cdist(x1, t([[1.0, 2.0]]), p=p).sum().backward()
        assert x1.grad.tolist() == [[0.0, 0.0]], p
    with pytest.raises(RuntimeError, match="cdist: x1 and x2 must have one dtype, got float64 and float32"):
        tt.cdist(t([[1.0]], dtype=tt.float64), t([[1.0]]))
    with pytest.raises(RuntimeError, match="cdist: p must be a non-negative number"):
        tt.cdist(t([[1.0]]), t([[1.0]]), p=-1)
    with pytest.raises(RuntimeError, match="cdist: x1 must be a tensor of at least 2 dimensions, got"):
        tt.cdist(t([1.0]), t([[1.0]]))
    # cosine_similarity: a zero vector's norm is held at eps, as PyTorch's (its gradient is 1/eps-sized)
    u, v = t([[0.0, 0.0]], dtype=tt.float64, requires_grad=True), t([[1.0, 2.0]], dtype=tt.float64)
    c = tt.cosine_similarity(u, v)
    c.backward()
    assert c.tolist() == [0.0]
    np.testing.assert_allclose(u.grad.numpy(), [[4.47213595e7, 8.94427191e7]], rtol=1e-8)
    with pytest.raises(RuntimeError, match="cosine_similarity: expected floating-point inputs"):
        tt.cosine_similarity(t([[1, 2]]), t([[1, 3]]))
    # searchsorted: NaN values go past the end; sorter; side and right
    seq = t([1.0, 2.0, 3.0])
    assert tt.searchsorted(seq, t([nan, 2.0, -inf])).tolist() == [3, 1, 0]
    assert tt.searchsorted(seq, 2.0, side="right").tolist() == 2  # a number gives a 0-d result
    assert tt.searchsorted(t([3.0, 1.0, 2.0]), t([2.5]), sorter=t([1, 2, 0])).tolist() == [2]
    assert tt.searchsorted(seq, t([2.0]), out_int32=True).dtype is tt.int32
    with pytest.raises(RuntimeError, match="searchsorted: side='left' and right=True contradict"):
        tt.searchsorted(seq, t([2.0]), right=True, side="left")
    with pytest.raises(RuntimeError, match="searchsorted: sorted_sequence must be 1-d, or its leading dims"):
        tt.searchsorted(t([[1.0, 2.0], [3.0, 4.0]]), t([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="bucketize: boundaries must be a 1-d tensor"):
        tt.bucketize(t([1.0]), t([[1.0]]))
    # unique: each NaN is a value of its own; inverse and counts; rows along a dim
    values, inverse, counts = tt.unique(t([3.0, nan, 1.0, 3.0, nan]), return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(values.numpy(), [1.0, 3.0, nan, nan])
    assert inverse.tolist() == [1, 2, 0, 1, 3] and counts.tolist() == [1, 2, 1, 1]
    rows, inverse = t([[1, 2], [1, 2], [0, 4]]).unique(dim=0, return_inverse=True)
    assert rows.tolist() == [[0, 4], [1, 2]] and inverse.tolist() == [1, 1, 0]
    assert not tt.unique(t([1.0, 2.0], requires_grad=True)).requires_grad
    with pytest.raises(RuntimeError, match="unique: a tensor of shape \\(0, 3\\) has 0-sized dims"):
        tt.unique(tt.zeros(0, 3, device=device), dim=1)
    # diff: bool differences are xor; n = 0 is the input itself (prepend and append left out)
    assert tt.diff(t([True, False, False])).tolist() == [True, False]
    assert tt.diff(t([1.0]), n=0, append=t([2.0])).tolist() == [1.0]
    with pytest.raises(RuntimeError, match="diff: expects input to be at least one-dimensional"):
        tt.diff(t(1.0))
    with pytest.raises(RuntimeError, match="diff: order n must be non-negative"):
        tt.diff(t([1.0]), n=-1)
    with pytest.raises(RuntimeError, match="diff: prepend must have the input's 1 dimensions"):
        tt.diff(t([1.0]), prepend=t(1.0))
    # PyTorch's other names, and comparisons in place (the bool result in the tensor's dtype)
    assert tt.multiply is tt.mul and tt.arctan2 is tt.atan2 and tt.concat is tt.cat and tt.less is tt.lt
    x = t([1.0, 2.0, 3.0])
    assert x.eq_(t([1.0, 0.0, 3.0])) is x and x.tolist() == [1.0, 0.0, 1.0] and x.dtype is tt.float32
    assert t([1, 5]).lt_(2).tolist() == [1, 0]
    assert t([True, True]).logical_xor_(t([True, False])).tolist() == [False, True]


def test_dtype_questions_and_module_level_truth_tests_as_pytorch():
    """torch.result_type, promote_types, can_cast, is_complex, empty_like, and torch.all/any(x, dim)."""
    from _torch import require_torch

    torch = require_torch()
    for a, b in [(tt.tensor([1]), 2.0), (2, 3.0), (2, 3), (True, False), (tt.tensor([True]), 2),
                 (tt.tensor(1.0, dtype=tt.float64), tt.tensor([1], dtype=tt.int32)),
                 (tt.tensor([1], dtype=tt.int32), tt.tensor(5)),
                 (tt.tensor([1.0]), tt.tensor([2.0], dtype=tt.float16))]:
        ta, tb = (torch.tensor(v.numpy()) if isinstance(v, tt.Tensor) else v for v in (a, b))
        assert tt.result_type(a, b).name == str(torch.result_type(ta, tb)).removeprefix("torch.")
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
    for x in names:
        for y in names:
            t1, t2 = getattr(torch, x), getattr(torch, y)
            assert tt.promote_types(x, y).name == str(torch.promote_types(t1, t2)).removeprefix("torch.")
            assert tt.can_cast(getattr(tt, x), getattr(tt, y)) == torch.can_cast(t1, t2), (x, y)
    assert tt.is_complex(tt.ones(2)) is False
    e = tt.empty_like(tt.ones(2, 3, dtype=tt.int64), requires_grad=False)
    assert e.shape == (2, 3) and e.dtype is tt.int64
    m = tt.tensor([[0, 1], [2, 3]])
    assert tt.all(m).item() is False and tt.any(m, 1).tolist() == [True, True]
    assert tt.all(m, dim=0, keepdim=True).tolist() == [[False, True]]


def test_triangle_indices_as_pytorch(device):
    from _torch import require_torch

    torch = require_torch()
    for fn in ("tril_indices", "triu_indices"):
        for row, col, offset in [(3, 4, 1), (4, 3, -1), (0, 3, 0), (3, 3, 5), (3, 3, -5), (1, 1, 0)]:
            ours = getattr(tt, fn)(row, col, offset, device=device)
            theirs = getattr(torch, fn)(row, col, offset)
            assert ours.dtype is tt.int64 and ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert getattr(tt, fn)(2, 2, dtype=tt.int32).dtype is tt.int32
        with pytest.raises(RuntimeError, match=f"{fn}: row must be non-negative, got -1"):
            getattr(tt, fn)(-1, 3)
        with pytest.raises(TypeError, match=f"{fn}: the indices are integers; dtype float32"):
            getattr(tt, fn)(3, 3, dtype=tt.float32)
