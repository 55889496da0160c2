"""einops on tinytensor tensors (tinytensor/_einops.py) and its layers (tinytensor.nn.einops) against the same
einops calls on torch tensors: values and gradients in float64 on every device, the errors einops raises,
EinMix's parameters, init and state_dict keys, and how the backend gets registered.

The "strict" stand-in backend has no einsum kernel: einops.einsum and EinMix raise tinytensor's
NotImplementedError there (declared below); everything else runs on it."""
import copy
import importlib.machinery
import pickle
import re
import subprocess
import sys
import types

import einops
import numpy as np
import pytest
import torch
from einops import EinopsError
from einops.layers import torch as torch_layers

import tinytensor as tt
import tinytensor._einops  # registers the backend (until tinytensor/__init__.py imports it)
from tinytensor.nn import einops as tt_layers

NO_EINSUM = "einsum is not available on the 'strict' backend"


def leaves(shapes, device, seed=0):
    """Random float64 leaves of ``shapes``: tinytensor ones on ``device`` and torch copies."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [tt.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def backward_with_random_weights(outputs, framework, seed=1):
    """Σ_k sum(out_k · W_k) with the same random W_k for both frameworks, then backward."""
    rng = np.random.default_rng(seed)
    loss = 0
    for out in outputs:
        w = rng.standard_normal(tuple(out.shape))
        loss = loss + (out * (tt.tensor(w, device=out.device) if framework is tt else torch.tensor(w))).sum()
    loss.backward()


def assert_close(ours, theirs, what):
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {ours.shape} != {tuple(theirs.shape)}"
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12,
                               err_msg=what)


def compare(fn, shapes, device, uses_einsum=False, listed=False):
    """fn(inputs) on tinytensor and torch inputs: the same outputs and input gradients."""
    ours, theirs = leaves(shapes, device)
    if device == "strict" and uses_einsum:
        with pytest.raises(NotImplementedError, match=NO_EINSUM):
            fn(ours)
        return
    out_ours, out_theirs = fn(ours), fn(theirs)
    if not isinstance(out_ours, (list, tuple)):
        out_ours, out_theirs = [out_ours], [out_theirs]
    assert len(out_ours) == len(out_theirs)
    for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
        assert isinstance(a, tt.Tensor) and a.device == ours[0].device, f"output {k}: {type(a)} on {a.device}"
        assert a.dtype.name == str(b.dtype).removeprefix("torch."), f"output {k}: dtype"
        assert_close(a, b, f"output {k}")
    floats = [(a, b) for a, b in zip(out_ours, out_theirs) if b.dtype.is_floating_point]
    if not floats:
        return
    backward_with_random_weights([a for a, _ in floats], tt)
    backward_with_random_weights([b for _, b in floats], torch)
    for i, (x, tx) in enumerate(zip(ours, theirs)):
        if tx.grad is None:
            assert x.grad is None, f"input {i}: a gradient where torch has none"
        else:
            assert x.grad.device == x.device
            assert_close(x.grad, tx.grad, f"gradient of input {i}")


# ---- functions ---------------------------------------------------------------------------------------

REARRANGE = [
    ("b c h w -> b h w c", [(2, 3, 4, 5)], {}),
    ("b c (h h2) (w w2) -> b (c h2 w2) h w", [(2, 3, 4, 6)], dict(h2=2, w2=3)),
    ("... c -> c ...", [(2, 3, 4)], {}),
    ("b c h w -> (b h) w c", [(2, 3, 4, 5)], {}),
    ("b 1 c -> b c", [(2, 1, 3)], {}),
    ("b c -> b () c 1", [(2, 3)], {}),
    ("(a b) c -> b (c a)", [(6, 2)], dict(a=3)),
    ("a -> a", [(5,)], {}),
    ("-> ", [()], {}),
]


@pytest.mark.parametrize("pattern, shapes, lengths", REARRANGE, ids=[c[0] for c in REARRANGE])
def test_rearrange(device, pattern, shapes, lengths):
    compare(lambda xs: einops.rearrange(xs[0], pattern, **lengths), shapes, device)


def test_rearrange_of_a_list_stacks(device):
    compare(lambda xs: einops.rearrange(list(xs), "n b c -> b (n c)"), [(2, 3)] * 4, device)


REDUCE = [
    ("b c (h 2) (w 2) -> b c h w", [(2, 3, 4, 6)], {}),
    ("b c h w -> c", [(2, 3, 4, 5)], {}),
    ("... c -> c", [(2, 3, 4)], {}),
    ("b (c k) -> b c", [(3, 8)], dict(k=4)),
    ("b c -> b c 1", [(2, 3)], {}),
    ("a b -> ", [(3, 4)], {}),
]


@pytest.mark.parametrize("reduction", ["max", "min", "sum", "mean", "prod"])
@pytest.mark.parametrize("pattern, shapes, lengths", REDUCE, ids=[c[0] for c in REDUCE])
def test_reduce(device, pattern, shapes, lengths, reduction):
    compare(lambda xs: einops.reduce(xs[0], pattern, reduction, **lengths), shapes, device)


def test_reduce_ties_share_the_gradient_as_torch(device):
    x = tt.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], device=device, requires_grad=True)
    tx = torch.tensor(x.numpy(), requires_grad=True)
    einops.reduce(x, "a b -> a", "max").sum().backward()
    einops.reduce(tx, "a b -> a", "max").sum().backward()
    assert_close(x.grad, tx.grad, "max with ties")


@pytest.mark.parametrize("reduction", ["any", "all", "max", "min", "sum", "prod"])
def test_reduce_bools_and_integers(device, reduction):
    rng = np.random.default_rng(0)
    for values in (rng.standard_normal((3, 4, 2)) > 0, rng.integers(-3, 4, (3, 4, 2)).astype(np.int32)):
        if values.dtype == bool and reduction in ("sum", "prod"):
            continue  # torch's bool sum/prod are int64, as ours: compared with the integers
        ours = einops.reduce(tt.tensor(values, device=device), "a b c -> b", reduction)
        theirs = einops.reduce(torch.tensor(values), "a b c -> b", reduction)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (values.dtype, reduction)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


REPEAT = [
    ("h w -> h w c", [(2, 3)], dict(c=3)),
    ("h w -> (h 2) (w 3)", [(2, 3)], {}),
    ("h w -> (r h) w", [(2, 3)], dict(r=2)),
    ("b c -> b r c", [(2, 3)], dict(r=4)),
    ("... -> ... 2", [(2, 3)], {}),
    (" -> a", [()], dict(a=3)),
]


@pytest.mark.parametrize("pattern, shapes, lengths", REPEAT, ids=[c[0] for c in REPEAT])
def test_repeat(device, pattern, shapes, lengths):
    compare(lambda xs: einops.repeat(xs[0], pattern, **lengths), shapes, device)


EINSUM = [
    ("b i, i j -> b j", [(2, 3), (3, 4)]),
    ("batch head i d, batch head j d -> batch head i j", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("... i, i j -> ... j", [(2, 3, 4), (4, 5)]),
    ("... i, ... i -> ...", [(2, 3, 4), (3, 4)]),  # ellipses of different lengths, right-aligned
    ("... b, b -> ", [(2, 3, 4), (4,)]),  # '...' dims left out of the output are summed
    ("i i ->", [(3, 3)]),
    ("a b, a b -> a b", [(1, 3), (2, 3)]),  # a size-1 dim broadcasts, as torch.einsum's
    ("a, b, c -> a b c", [(2,), (3,), (4,)]),
    ("a b ->", [(2, 3)]),
]


@pytest.mark.parametrize("pattern, shapes", EINSUM, ids=[c[0] for c in EINSUM])
def test_einsum(device, pattern, shapes):
    compare(lambda xs: einops.einsum(*xs, pattern), shapes, device, uses_einsum=True)


def test_pack_and_unpack(device):
    shapes = [(2, 3, 5), (2, 3), (2, 3, 4, 1)]

    def pack_then_unpack(xs):
        packed, ps = einops.pack(list(xs), "i j *")
        assert ps == [(5,), (), (4, 1)]
        return [packed, *einops.unpack(packed * 2, ps, "i j *")]

    compare(pack_then_unpack, shapes, device)
    compare(lambda xs: einops.unpack(xs[0], [(2,), (-1,), (3,)], "b *"), [(2, 9)], device)


def test_other_einops_functions_and_backend_methods(device):
    x = tt.tensor(np.arange(6.0).reshape(2, 3), device=device)
    assert einops.parse_shape(x, "a b") == {"a": 2, "b": 3}
    np.testing.assert_array_equal(einops.asnumpy(x), np.arange(6.0).reshape(2, 3))
    backend = einops._backends.get_backend(x)
    assert isinstance(backend, tinytensor._einops.TinytensorBackend)
    assert backend.framework_name == "tinytensor"
    tiled = backend.tile(x, (2, 3))
    assert tiled.device == x.device
    np.testing.assert_array_equal(tiled.numpy(), np.tile(x.numpy(), (2, 3)))
    a = backend.from_numpy(np.ones(3))
    assert a.requires_grad and not backend.from_numpy(np.ones(3, dtype=np.int64)).requires_grad
    np.testing.assert_array_equal(backend.arange(2, 5).numpy(), [2, 3, 4])
    assert not backend.is_float_type(tt.tensor([1])) and backend.is_float_type(x)


# ---- errors -------------------------------------------------------------------------------------------

def _normalised(message: str) -> str:
    """einops' message with torch's shape spelling (torch.Size([6, 3])) written as a tuple."""
    return re.sub(r"torch\.Size\(\[(.*?)\]\)", r"(\1)", message)


ERRORS = [
    ("unknown output axis", lambda x, y: einops.rearrange(x, "b c -> b c d")),
    ("wrong ndim", lambda x, y: einops.rearrange(x, "a b c -> a")),
    ("indivisible axis", lambda x, y: einops.rearrange(x, "(a b) c -> a b c", a=4)),
    ("repeat without a length", lambda x, y: einops.repeat(x, "a b -> a b c")),
    ("reduce to a new axis", lambda x, y: einops.reduce(x, "a b -> a b c", "sum")),
    ("unknown reduction", lambda x, y: einops.reduce(x, "a b -> a", "median")),
    ("mean of integers", lambda x, y: einops.reduce(y, "a b -> a", "mean")),
    ("einsum unknown axis", lambda x, y: einops.einsum(x, "a b -> a c")),
    ("einsum without ->", lambda x, y: einops.einsum(x, "a b")),
    ("unpack wrong sizes", lambda x, y: einops.unpack(x, [(2,), (2,)], "a *")),
    ("pack wrong dims", lambda x, y: einops.pack([x, y], "a b c *")),
]


@pytest.mark.parametrize("what, call", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_from_einops_surface_as_with_torch(device, what, call):
    x, tx = tt.zeros((6, 3), device=device), torch.zeros(6, 3)
    y, ty = tt.zeros((6, 3), dtype=tt.int64, device=device), torch.zeros(6, 3, dtype=torch.int64)
    with pytest.raises(Exception) as theirs:
        call(tx, ty)
    with pytest.raises(type(theirs.value)) as ours:
        call(x, y)
    assert type(ours.value) is type(theirs.value)
    assert _normalised(str(ours.value)) == _normalised(str(theirs.value))


# ---- layers --------------------------------------------------------------------------------------------

LAYERS = [
    ("Rearrange", ("b c (h p1) (w p2) -> b (h w) (p1 p2 c)",), dict(p1=2, p2=2), (2, 3, 4, 6)),
    ("Rearrange", ("b ... -> b (...)",), {}, (2, 3, 4)),
    ("Reduce", ("b c (h 2) (w 2) -> b c h w", "max"), {}, (2, 3, 4, 6)),
    ("Reduce", ("b t c -> b c", "mean"), {}, (2, 5, 3)),
    ("Reduce", ("b ... c -> b c", "sum"), {}, (2, 5, 4, 3)),
]


@pytest.mark.parametrize("name, args, lengths, shape", LAYERS, ids=[f"{c[0]}({c[1][0]})" for c in LAYERS])
def test_rearrange_and_reduce_layers(device, name, args, lengths, shape):
    ours, theirs = getattr(tt_layers, name)(*args, **lengths), getattr(torch_layers, name)(*args, **lengths)
    assert isinstance(ours, tt.nn.Module) and repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    compare(lambda xs: (ours if isinstance(xs[0], tt.Tensor) else theirs)(xs[0]), [shape], device)
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        x = tt.randn(*shape, device=device)
        assert repr(clone) == repr(ours)
        np.testing.assert_array_equal(clone(x).numpy(), ours(x).numpy())


EINMIX = [
    ("t b cin -> t b cout", "cin cout", "cout", dict(cin=4, cout=5), (3, 2, 4)),
    ("t b (head cin) -> t b (head cout)", "head cin cout", "head cout", dict(head=2, cin=3, cout=4),
     (3, 2, 6)),
    ("b ... c -> b ... d", "c d", None, dict(c=3, d=2), (2, 4, 5, 3)),
    ("h w c -> hout w c", "h hout", "hout", dict(h=4, hout=3), (4, 2, 5)),
    ("b (h p) c -> b h (p d)", "c d", "d", dict(p=2, c=3, d=4), (2, 6, 3)),
    ("b c -> b c", "c", None, dict(c=3), (2, 3)),
]


def einmix_pair(pattern, weight_shape, bias_shape, lengths, device):
    """Our EinMix and einops' torch one with our weights, both float64."""
    tt.manual_seed(0)
    ours = tt_layers.EinMix(pattern, weight_shape, bias_shape, **lengths).to(device).double()
    theirs = torch_layers.EinMix(pattern, weight_shape, bias_shape, **lengths).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            q.copy_(torch.tensor(p.numpy()))
    return ours, theirs


@pytest.mark.parametrize("pattern, weight_shape, bias_shape, lengths, shape", EINMIX,
                         ids=[c[0] for c in EINMIX])
def test_einmix(device, pattern, weight_shape, bias_shape, lengths, shape):
    ours, theirs = einmix_pair(pattern, weight_shape, bias_shape, lengths, device)
    assert repr(ours) == repr(theirs)
    assert all(isinstance(p, tt.nn.Parameter) and p.device == tt.zeros(1, device=device).device
               for p in ours.parameters())
    (x,), (tx,) = leaves([shape], device)
    if device == "strict":
        with pytest.raises(NotImplementedError, match=NO_EINSUM):
            ours(x)
        return
    y, ty = ours(x), theirs(tx)
    assert_close(y, ty, "output")
    backward_with_random_weights([y], tt)
    backward_with_random_weights([ty], torch)
    assert_close(x.grad, tx.grad, "input gradient")
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad, f"gradient of {name}")


def test_einmix_init_as_einops_torch():
    lengths = dict(cin=300, cout=200)
    tt.manual_seed(0)
    ours = tt_layers.EinMix("b cin -> b cout", "cin cout", "cout", **lengths)
    torch.manual_seed(0)
    theirs = torch_layers.EinMix("b cin -> b cout", "cin cout", "cout", **lengths)
    for name, bound in (("weight", (3 / 300) ** 0.5), ("bias", (1 / 300) ** 0.5)):
        w, tw = getattr(ours, name).numpy(), getattr(theirs, name).detach().numpy()
        assert w.dtype == tw.dtype == np.float32
        assert np.abs(w).max() <= bound and np.abs(tw).max() <= bound
        assert abs(w.std() - bound / 3 ** 0.5) < 0.05 * bound and abs(w.std() - tw.std()) < 0.05 * bound
        assert abs(w.mean()) < 0.05 * bound
    tt.manual_seed(0)
    again = tt_layers.EinMix("b cin -> b cout", "cin cout", "cout", **lengths)
    np.testing.assert_array_equal(again.weight.numpy(), ours.weight.numpy())
    loaded = tt_layers.EinMix("b cin -> b cout", "cin cout", "cout", **lengths)
    loaded.load_state_dict(ours.state_dict())
    np.testing.assert_array_equal(loaded.bias.numpy(), ours.bias.numpy())


def test_layer_errors():
    for make in (lambda m: m.EinMix("a b -> a c", "b c", b=2),  # no size for c
                 lambda m: m.EinMix("a ... -> a c", "c", c=2),  # '...' on one side only
                 lambda m: m.Rearrange("a b -> a b c"),
                 lambda m: m.Reduce("a b -> a", "median")):
        with pytest.raises(EinopsError) as theirs:
            make(torch_layers)
        with pytest.raises(EinopsError) as ours:
            make(tt_layers)
        assert str(ours.value) == str(theirs.value)
    # a wrong ndim: einops' torch layers raise KeyError(ndim); ours say what they expected
    with pytest.raises(KeyError):
        torch_layers.Rearrange("b c h -> b (c h)")(torch.zeros(2, 3))
    with pytest.raises(EinopsError, match=r"Rearrange\('b c h -> b \(c h\)'\): expected an input with 3 "
                                          r"dims, got shape \(2, 3\)"):
        tt_layers.Rearrange("b c h -> b (c h)")(tt.zeros(2, 3))
    with pytest.raises(EinopsError, match="1 to 8 dims"):
        tt_layers.Reduce("b ... -> b", "sum")(tt.zeros(*[1] * 9))
    with pytest.raises(EinopsError, match="can't divide axis of length 6 in chunks of 4"):
        tt_layers.Rearrange("(a b) c -> a b c", a=4)(tt.zeros(6, 3))


def test_layers_train_inside_a_model():
    tt.manual_seed(0)
    model = tt.nn.Sequential(tt_layers.Rearrange("b (h p) -> b h p", p=2),
                             tt_layers.EinMix("b h p -> b h d", "p d", "d", p=2, d=3),
                             tt_layers.Reduce("b h d -> b d", "mean"))
    assert list(model.state_dict()) == ["1.weight", "1.bias"]
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    x, target = tt.randn(4, 6), tt.randn(4, 3)
    losses = []
    for _ in range(5):
        loss = ((model(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ---- registration ---------------------------------------------------------------------------------------

def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_backend_registers_when_einops_is_imported_later():
    out = _run(
        "import sys, tinytensor as tt, tinytensor._einops as e\n"
        "assert 'einops' not in sys.modules, 'imported eagerly'\n"
        "import einops\n"
        "assert not any(isinstance(f, e._EinopsImportHook) for f in sys.meta_path), 'hook left behind'\n"
        "assert type(einops.__loader__).__name__ == 'SourceFileLoader', einops.__loader__\n"
        "x = tt.ones(2, 3, requires_grad=True)\n"
        "einops.rearrange(x, 'a b -> b a').sum().backward()\n"
        "print(einops.reduce(x, 'a b -> b', 'sum').tolist(), x.grad.tolist())\n"
    )
    assert out.strip() == "[2.0, 2.0, 2.0] [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]"


def test_backend_registers_when_einops_was_imported_first():
    out = _run("import einops, tinytensor as tt, tinytensor._einops\n"
               "print(einops.repeat(tt.tensor([1, 2]), 'a -> a r', r=2).tolist())")
    assert out.strip() == "[[1, 1], [2, 2]]"


def test_layers_module_registers_the_backend_itself():
    out = _run("from tinytensor.nn.einops import Rearrange\nimport tinytensor as tt, einops\n"
               "print(einops.rearrange(tt.zeros(2, 3), 'a b -> b a').shape)")
    assert out.strip() == "(3, 2)"


def test_import_hook_waits_while_einops_is_missing(monkeypatch):
    hook = tinytensor._einops._EinopsImportHook()
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    assert hook.find_spec("numpy") is None and hook in sys.meta_path  # other imports pass through
    monkeypatch.setattr(tinytensor._einops.importlib.util, "find_spec", lambda name: None)
    assert hook.find_spec("einops") is None and hook in sys.meta_path  # not installed: still waiting
    loader = importlib.machinery.SourceFileLoader("einops", "einops/__init__.py")
    found = importlib.machinery.ModuleSpec("einops", loader)  # what the finders after it would give
    monkeypatch.setattr(tinytensor._einops.importlib.util, "find_spec", lambda name: found)
    spec = hook.find_spec("einops")
    assert spec is found and isinstance(spec.loader, tinytensor._einops._RegisterAfterImport)
    assert spec.loader.loader is loader
    assert hook in sys.meta_path  # a spec found (importlib.util.find_spec) is not yet an import

    class Ran:  # einops' loader, as far as the wrapper sees it
        def exec_module(self, module):
            module.ran = True

    module = types.ModuleType("einops")
    module.__spec__ = importlib.machinery.ModuleSpec("einops", None)
    tinytensor._einops._RegisterAfterImport(Ran()).exec_module(module)
    assert module.ran and hook not in sys.meta_path  # einops has run: the finder is gone
