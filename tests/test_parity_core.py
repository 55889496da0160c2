"""PyTorch (CPU) parity: every catalogue op with a torch equivalent gives the same values, dtypes and
gradients (float64 within 1e-10; float32 within the op's parity tolerance), on hypothesis-drawn samples."""
import numpy as np
import pytest
from _torch import require_torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinytensor as tt
from tinytensor.testing import OPS, Draw
from tinytensor.testing.checks import as_list, make_inputs

torch = require_torch()

PARITY_OPS = [s for s in OPS if s.torch_ref is not None]
F64_TOL = 1e-10


def _torch_inputs(sample, dtype):
    out = []
    for a, diff in zip(sample.inputs, sample.differentiable()):
        if a.dtype.kind == "f":
            out.append(torch.tensor(a.astype(dtype), requires_grad=diff))
        else:
            out.append(torch.from_numpy(a.copy()))
    return out


def _close(ours, theirs, rtol, atol, what):
    assert ours.shape == tuple(theirs.shape), f"{what}: shape {ours.shape} vs torch {tuple(theirs.shape)}"
    theirs_np = theirs.detach().numpy()
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (
        f"{what}: dtype {ours.dtype.name} vs torch {theirs.dtype}")
    if theirs_np.dtype.kind == "f":
        np.testing.assert_allclose(ours.numpy(), theirs_np, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(ours.numpy(), theirs_np, err_msg=what)


def check_parity(spec, sample, dtype):
    rtol, atol = (F64_TOL, F64_TOL) if dtype == "float64" else (spec.parity_rtol, spec.parity_atol)
    ours_in = make_inputs(sample, "cpu", dtype, requires_grad=spec.differentiable)
    theirs_in = _torch_inputs(sample, dtype)
    if not spec.differentiable:
        for t in theirs_in:
            t.requires_grad_(False)
    ours = as_list(spec.fn(*ours_in, **sample.params))
    theirs = as_list(spec.torch_ref(torch, *theirs_in, **sample.params))
    assert len(ours) == len(theirs), f"{len(ours)} outputs vs torch {len(theirs)}"
    for i, (o, t) in enumerate(zip(ours, theirs)):
        _close(o, t, rtol, atol, f"{spec.name} output {i} ({dtype})")
    if not spec.differentiable:
        return
    rng = np.random.default_rng(0)
    pairs = [(o, t) for o, t in zip(ours, theirs) if o.dtype.is_floating_point]
    ups = [rng.standard_normal(o.shape).astype(dtype) for o, _ in pairs]
    diff = [i for i, t in enumerate(ours_in) if t.requires_grad]
    if not diff:
        return
    g_ours = tt.autograd.grad([o for o, _ in pairs], [ours_in[i] for i in diff],
                              [tt.tensor(u) for u in ups], allow_unused=True)
    g_theirs = torch.autograd.grad([t for _, t in pairs], [theirs_in[i] for i in diff],
                                   [torch.from_numpy(u) for u in ups], allow_unused=True)
    for i, go, gt in zip(diff, g_ours, g_theirs):
        if gt is None:
            gt = torch.zeros_like(theirs_in[i])
        if go is None:
            go = tt.zeros(*ours_in[i].shape, dtype=ours_in[i].dtype)
        _close(go, gt, rtol * 10 if dtype == "float32" else rtol, atol * 10 if dtype == "float32" else atol,
               f"{spec.name} gradient of input {i} ({dtype})")


@pytest.mark.parametrize("spec", PARITY_OPS, ids=[s.name for s in PARITY_OPS])
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_catalogue_parity_with_torch(spec, data):
    sample = spec.sample(Draw(data))
    for dtype in ("float64", "float32"):
        try:
            check_parity(spec, sample, dtype)
        except Exception as e:
            e.add_note(f"op {spec.name!r}: {sample.describe()}")
            raise


def test_every_op_but_dropout_has_a_torch_equivalent():
    missing = {s.name for s in OPS if s.torch_ref is None}
    # dropout: torch's generator draws other masks; getitem: torch has no negative slice steps
    # (getitem_torch covers indexing with everything else)
    assert missing == {"dropout", "getitem"}


# ---- beyond the catalogue: degenerate cases and long float32 reductions --------------------------

def _both(values, dtype="float64", requires_grad=True):
    a = np.asarray(values, dtype=dtype)
    return (tt.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad))


@pytest.mark.parametrize("values,correction", [([1.0, 2.0], 2), ([1.5], 1), ([3.0, 3.0], 2), ([1.0, 4.0], 3)])
def test_var_std_with_no_degrees_of_freedom(values, correction):
    import warnings

    ours, theirs = _both(values)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name in ("var", "std"):
            a = getattr(ours, name)(correction=correction)
            b = getattr(theirs, name)(correction=correction)
            np.testing.assert_equal(a.item(), b.item(), err_msg=f"{name}{values} correction={correction}")


def test_std_gradient_at_zero_spread_is_zero_like_torch():
    ours, theirs = _both([2.0, 2.0, 2.0])
    ours.std().backward()
    theirs.std().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_long_float32_reductions_and_matmul():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 512)).astype("float32"), rng.standard_normal((512, 32)).astype("float32")
    ours, theirs = tt.tensor(a) @ tt.tensor(b), torch.tensor(a) @ torch.tensor(b)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-4)
    x = rng.standard_normal(100_000).astype("float32")
    for name in ("sum", "mean", "var", "std", "logsumexp"):
        kw = {"dim": 0} if name == "logsumexp" else {}
        ours = getattr(tt.tensor(x), name)(**kw).item()
        theirs = getattr(torch.tensor(x), name)(**kw).item()
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-3), name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_at_large_logits(dtype):
    tol = 1e-10 if dtype == "float64" else 1e-6
    ours, theirs = _both([[1e4, -1e4, 0.0, 1e4 - 3.0], [-5e3, 2.0, 7.0, -1e4]], dtype)
    for f in (lambda x: x.softmax(-1), lambda x: x.log_softmax(-1), lambda x: x.logsumexp(-1)):
        a, b = f(ours), f(theirs)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)
        up = np.linspace(-1, 1, b.numel()).reshape(tuple(b.shape)).astype(dtype)
        (ga,) = tt.autograd.grad(a, ours, tt.tensor(up))
        (gb,) = torch.autograd.grad(b, theirs, torch.tensor(up))
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=tol, atol=tol)


def test_composite_graph_parity():
    """A small MLP-with-attention-like graph: values and all gradients agree in float64."""
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 4), (4, 4), (4,), (4, 5)]]
    ours = [tt.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]

    def f(lib, x, w, b, v, F):
        h = F.gelu(x @ w + b)
        att = (h @ h.transpose(-1, -2) / 2.0).softmax(-1)
        y = (att @ h) @ v
        return (y.tanh() * y.sigmoid()).logsumexp(-1).mean() + (y - y.mean(-1, keepdim=True)).pow(2).sum()

    a = f(tt, *ours, F=tt)
    b = f(torch, *theirs, F=torch.nn.functional)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)
