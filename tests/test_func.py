"""tinytensor.func against torch.func on the same functions (float64, every device): gradients,
vjp/jvp, Jacobians and Hessians of small MLPs, softmax chains, layer norm, attention and a
TransformerEncoderLayer through functional_call; per-sample gradients against a loop; vmap's
in_dims/out_dims, nesting and randomness; and the errors for bad inputs."""
import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor import func
from tinytensor_nn import functional as F

torch = require_torch()
TOL = dict(rtol=1e-9, atol=1e-10)


def close(ours, theirs, what="", **tol):
    theirs = theirs.detach().numpy() if torch.is_tensor(theirs) else np.asarray(theirs)
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {tuple(ours.shape)} vs {theirs.shape}"
    np.testing.assert_allclose(ours.numpy(), theirs, err_msg=what, **(tol or TOL))


def pair(*shape, device, seed=0, scale=1.0):
    """The same float64 values as a tinytensor tensor on device and a torch tensor."""
    a = np.random.default_rng(seed).standard_normal(shape) * scale
    return tt.tensor(a, device=device), torch.tensor(a)


# ---- functions written twice, once per library ----------------------------------------------

def mlp_tt(w1, b1, w2, x):
    return (F.linear(x, w1, b1).tanh() @ w2.mT).softmax(-1)


def mlp_torch(w1, b1, w2, x):
    return (torch.nn.functional.linear(x, w1, b1).tanh() @ w2.mT).softmax(-1)


def chain_tt(x):
    return (x.log_softmax(-1) * x.softmax(0)).exp().sum(-1)


def chain_torch(x):
    return (x.log_softmax(-1) * x.softmax(0)).exp().sum(-1)


@pytest.fixture
def mlp(device):
    shapes = [(5, 4), (5,), (3, 5), (2, 4)]
    return [pair(*s, device=device, seed=k) for k, s in enumerate(shapes)]


def test_grad_and_vjp_of_an_mlp_match_torch(mlp):
    ours, theirs = zip(*mlp)
    loss_tt = lambda *a: mlp_tt(*a).log().sum()  # noqa: E731
    loss_torch = lambda *a: mlp_torch(*a).log().sum()  # noqa: E731
    got = func.grad(loss_tt, argnums=(0, 1, 2))(*ours)
    want = torch.func.grad(loss_torch, argnums=(0, 1, 2))(*theirs)
    for g, w, name in zip(got, want, ("w1", "b1", "w2")):
        close(g, w, name)
        assert not g.requires_grad, "an outermost transform's result is cut from its graph"
    (g, value) = func.grad_and_value(loss_tt)(*ours)
    close(value, loss_torch(*theirs))
    v_tt, v_torch = pair(2, 3, device=ours[0].device, seed=9)
    out, vjp_fn = func.vjp(mlp_tt, *ours)
    _, vjp_torch = torch.func.vjp(mlp_torch, *theirs)
    close(out, mlp_torch(*theirs))
    for g, w in zip(vjp_fn(v_tt), vjp_torch(v_torch)):
        close(g, w)


def test_jvp_jacobians_and_hessian_match_torch(device):
    x, xt = pair(3, 4, device=device, seed=1)
    t, tt_ = pair(3, 4, device=device, seed=2)
    out, jv = func.jvp(chain_tt, (x,), (t,))
    want_out, want_jv = torch.func.jvp(chain_torch, (xt,), (tt_,))
    close(out, want_out)
    close(jv, want_jv)
    close(func.jacrev(chain_tt)(x), torch.func.jacrev(chain_torch)(xt), "jacrev")
    close(func.jacfwd(chain_tt)(x), torch.func.jacfwd(chain_torch)(xt), "jacfwd")
    scalar_tt = lambda x: chain_tt(x).sum()  # noqa: E731
    scalar_torch = lambda x: chain_torch(x).sum()  # noqa: E731
    close(func.hessian(scalar_tt)(x), torch.func.hessian(scalar_torch)(xt), "hessian")
    close(func.jacfwd(func.jacrev(scalar_tt))(x), torch.func.hessian(scalar_torch)(xt), "jacfwd(jacrev)")
    close(func.jacrev(func.jacrev(scalar_tt))(x), torch.func.hessian(scalar_torch)(xt), "jacrev(jacrev)")
    _, lin = func.linearize(chain_tt, x)
    close(lin(t), want_jv, "linearize")


def test_has_aux_and_several_argnums(device):
    x, xt = pair(2, device=device, seed=30)
    f = lambda x: (x.sin(), x.sum())  # noqa: E731
    for jac in (func.jacrev, func.jacfwd):
        j, aux = jac(f, has_aux=True)(x)
        close(j, torch.func.jacrev(lambda x: x.sin())(xt))
        assert aux.item() == pytest.approx(float(xt.sum())) and not aux.requires_grad
    g, aux = func.grad(lambda x: (x.sin().sum(), x * 2), has_aux=True)(x)
    close(g, xt.cos())
    close(aux, xt * 2)
    _, vjp_fn, aux = func.vjp(f, x, has_aux=True)
    close(vjp_fn(x * 0 + 1)[0], xt.cos())
    h_tt = lambda a, b: (a * b).sin()  # noqa: E731
    h_torch = lambda a, b: (a * b).sin()  # noqa: E731
    for ours, theirs in ((func.jacrev, torch.func.jacrev), (func.jacfwd, torch.func.jacfwd)):
        want = theirs(h_torch, argnums=(0, 1))(xt, xt * 2)
        for got, w in zip(ours(h_tt, argnums=(0, 1))(x, x * 2), want):
            close(got, w)


def test_hessian_of_a_small_network_matches_torch(mlp):
    ours, theirs = zip(*mlp)

    def loss_tt(w1):
        return mlp_tt(w1, *ours[1:]).log().sum()

    def loss_torch(w1):
        return mlp_torch(w1, *theirs[1:]).log().sum()

    close(func.hessian(loss_tt)(ours[0]), torch.func.hessian(loss_torch)(theirs[0]), "hessian (5, 4, 5, 4)")


def test_higher_order_compositions(device):
    x, xt = pair(4, device=device, seed=3)
    v, vt = pair(4, device=device, seed=4)

    def f(x):
        return (x.sin() * x.exp()).sum()

    d2 = func.grad(lambda x: func.grad(f)(x).sum())(x)
    want = torch.func.grad(lambda x: torch.func.grad(lambda y: (y.sin() * y.exp()).sum())(x).sum())(xt)
    close(d2, want, "grad(grad(f))")
    hvp = func.jvp(func.grad(f), (x,), (v,))[1]  # forward over reverse
    want_hvp = torch.func.jvp(torch.func.grad(lambda y: (y.sin() * y.exp()).sum()), (xt,), (vt,))[1]
    close(hvp, want_hvp, "jvp(grad(f))")
    rev_fwd = func.grad(lambda x: func.jvp(f, (x,), (v,))[1])(x)  # reverse over forward
    close(rev_fwd, want_hvp, "grad(jvp(f))")
    fwd_fwd = func.jvp(lambda x: func.jvp(f, (x,), (v,))[1], (x,), (v,))[1]
    want_ff = torch.func.jvp(lambda y: torch.func.jvp(lambda z: (z.sin() * z.exp()).sum(), (y,), (vt,))[1],
                             (xt,), (vt,))[1]
    close(fwd_fwd, want_ff, "jvp(jvp(f))")


def test_layer_norm_and_attention_match_torch(device):
    x, xt = pair(2, 3, 4, device=device, seed=5)
    w, wt = pair(4, device=device, seed=6)
    b, bt = pair(4, device=device, seed=7)
    tx, txt = pair(2, 3, 4, device=device, seed=8)
    ln_tt = lambda x, w, b: F.layer_norm(x, (4,), w, b)  # noqa: E731
    ln_torch = lambda x, w, b: torch.nn.functional.layer_norm(x, (4,), w, b)  # noqa: E731
    got = func.jvp(ln_tt, (x, w, b), (tx, w * 0.5, b * -1.0))[1]
    want = torch.func.jvp(ln_torch, (xt, wt, bt), (txt, wt * 0.5, bt * -1.0))[1]
    close(got, want, "layer_norm jvp")
    close(func.jacrev(ln_tt)(x, w, b), torch.func.jacrev(ln_torch)(xt, wt, bt), "layer_norm jacrev")
    q, qt = pair(2, 3, 4, device=device, seed=10)
    k, kt = pair(2, 5, 4, device=device, seed=11)
    v, vt = pair(2, 5, 4, device=device, seed=12)
    mask = np.tril(np.ones((3, 5), dtype=bool))
    mask_tt, mask_torch = tt.tensor(mask, device=device), torch.tensor(mask)
    att_tt = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask_tt)  # noqa: E731
    att_torch = lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(  # noqa: E731
        q, k, v, attn_mask=mask_torch)
    got = func.jvp(att_tt, (q, k, v), (k[:, :3] * 1.0, q.sum() * 0.0 + k, v * 2.0))[1]
    want = torch.func.jvp(att_torch, (qt, kt, vt), (kt[:, :3] * 1.0, qt.sum() * 0.0 + kt, vt * 2.0))[1]
    close(got, want, "attention jvp")
    cot, cott = pair(2, 3, 4, device=device, seed=13)
    for g, w_ in zip(func.vjp(att_tt, q, k, v)[1](cot), torch.func.vjp(att_torch, qt, kt, vt)[1](cott)):
        close(g, w_, "attention vjp")


def _encoder_layers(device):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
                                              dtype=torch.float64)
    ours = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True).double()
    ours.load_state_dict({k: tt.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours.to(device), theirs


def test_transformer_encoder_layer_through_functional_call(device):
    ours, theirs = _encoder_layers(device)
    x, xt = pair(2, 5, 8, device=device, seed=14)
    params = dict(ours.named_parameters())
    tparams = dict(theirs.named_parameters())

    def loss_tt(p, x):
        return func.functional_call(ours, p, (x,)).tanh().sum()

    def loss_torch(p, x):
        return torch.func.functional_call(theirs, p, (x,)).tanh().sum()

    got = func.grad(loss_tt)(params, x)
    want = torch.func.grad(loss_torch)(tparams, xt)
    assert set(got) == set(want)
    for name in want:
        close(got[name], want[name], name, rtol=1e-8, atol=1e-10)
    tangents = {n: p * 0.1 for n, p in params.items()}
    ttangents = {n: p.detach() * 0.1 for n, p in tparams.items()}
    _, jv = func.jvp(lambda p: loss_tt(p, x), (params,), (tangents,))
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):  # torch's fused CPU kernel has no forward-mode derivative
        _, jv_t = torch.func.jvp(lambda p: loss_torch(p, xt), (tparams,), (ttangents,))
    close(jv, jv_t, "jvp through the layer", rtol=1e-8, atol=1e-10)
    for name, p in ours.named_parameters():  # the module itself is left as it was
        assert p is params[name]


def test_per_sample_gradients_match_a_loop_and_torch(device):
    model = nn.Linear(6, 4).double().to(device)
    x, xt = pair(8, 6, device=device, seed=15)
    y = np.random.default_rng(16).integers(0, 4, 8)
    y_tt, y_torch = tt.tensor(y, device=device), torch.tensor(y)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y):
        logits = func.functional_call(model, p, (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no op falls back to a loop, also for integer targets
        per_sample = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, x, y_tt)

    def loss_probs(p, x, t):  # the target as probabilities
        return F.cross_entropy(func.functional_call(model, p, (x.unsqueeze(0),)), t.unsqueeze(0))

    onehot = F.one_hot(y_tt, 4).double()
    fast = func.vmap(func.grad(loss_probs), in_dims=(None, 0, 0))(params, x, onehot)
    tmodel = torch.nn.Linear(6, 4, dtype=torch.float64)
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.tensor(params[name].numpy()))
    tparams = dict(tmodel.named_parameters())

    def tloss(p, x, y):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(tmodel, p, (x.unsqueeze(0),)),
                                                 y.unsqueeze(0))

    want = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))(tparams, xt, y_torch)
    for name in params:
        loop = tt.stack([func.grad(loss)(params, x[i], y_tt[i])[name] for i in range(8)])
        close(per_sample[name], loop.numpy(), f"{name}: vmap(grad) against a loop")
        close(fast[name], loop.numpy(), f"{name}: vmap(grad), probability targets")
        close(per_sample[name], want[name], f"{name}: against torch.func")


def test_per_sample_gradients_of_a_token_model_need_no_loop(device):
    tt.manual_seed(0)
    model = nn.Sequential(nn.Embedding(11, 8), nn.Tanh(), nn.Linear(8, 11)).double().to(device)
    params = {k: v.detach() for k, v in model.named_parameters()}
    tokens = tt.randint(0, 11, (5, 4), device=device)
    targets = tt.randint(0, 11, (5, 4), device=device)

    def loss(p, x, y):
        return F.cross_entropy(func.functional_call(model, p, (x,)), y, label_smoothing=0.1, ignore_index=3)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, tokens, targets)
    for i in range(5):
        g = func.grad(loss)(params, tokens[i], targets[i])
        for name in params:
            close(grads[name][i], g[name].numpy(), name)
    with pytest.raises(IndexError, match="target 30 is out of bounds for 11 classes"):
        func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, tokens, targets + 20)
    with pytest.raises(IndexError, match="embedding: index 30 is out of range for a weight with 11 rows"):
        func.vmap(lambda x: model(x))(tokens + 20)


def test_per_sample_gradients_of_an_mlp_need_no_loop(device):
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double().to(device)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, _ = pair(6, 5, device=device, seed=17)
    t = F.one_hot(tt.tensor([0, 2, 1, 1, 0, 2], device=device), 3).double()

    def loss(p, x, t):
        out = func.functional_call(model, p, (x.unsqueeze(0),))
        return F.cross_entropy(out, t.unsqueeze(0)) + (p["0.weight"] ** 2).sum() * 0.01

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no op falls back to a loop
        grads = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, x, t)
    for i in range(6):
        g = func.grad(loss)(params, x[i], t[i])
        for name in params:
            close(grads[name][i], g[name].numpy(), name)


# ---- vmap ------------------------------------------------------------------------------------

def test_vmap_in_dims_out_dims_and_nesting(device):
    a, _ = pair(3, 4, device=device, seed=20)
    b, _ = pair(4, 5, device=device, seed=21)
    got = func.vmap(lambda x, y: x @ y, in_dims=(0, None))(a, b)
    close(got, (a @ b).numpy())
    got = func.vmap(lambda x: x.sum(0), in_dims=1, out_dims=0)(b)  # (5,) per column... of dim 1
    close(got, b.sum(0).numpy())
    got = func.vmap(lambda x: (x, x * 2), out_dims=(0, 1))(a)
    close(got[0], a.numpy())
    close(got[1], (a * 2).numpy().T)
    outer = func.vmap(func.vmap(lambda x, y: x * y, in_dims=(0, None)), in_dims=(None, 0))(a[0], b[0])
    close(outer, (b[0].numpy()[:, None] * a[0].numpy()[None, :]))
    dicts = func.vmap(lambda d: d["u"] + d["v"].sum())({"u": a, "v": a})
    close(dicts, (a + a.sum(1, keepdim=True)).numpy())
    chunked = func.vmap(lambda x: x.exp(), chunk_size=2)(a)
    close(chunked, a.exp().numpy())
    const = func.vmap(lambda x: tt.ones(2, dtype=tt.float64, device=device))(a)
    assert const.shape == (3, 2)
    once = func.vmap(lambda x: (x * 2, tt.ones(2, device=device)), out_dims=(0, None))(a)[1]
    assert once.shape == (2,), "out_dims None: an output shared by every sample, returned once"
    with pytest.raises(ValueError, match="out_dims None for an output that differs across the batch"):
        func.vmap(lambda x: x * 2, out_dims=None)(a)


def test_vmap_randomness_modes(device):
    x = tt.ones(4, 50, dtype=tt.float64, device=device)
    with pytest.raises(RuntimeError, match="randomness='error'"):
        func.vmap(lambda v: tt.dropout(v, 0.5))(x)
    same = func.vmap(lambda v: tt.dropout(v, 0.5), randomness="same")(x).numpy()
    assert (same == same[0]).all(), "randomness='same': one draw shared by every sample"
    with pytest.warns(UserWarning, match="once per sample"):
        different = func.vmap(lambda v: tt.dropout(v, 0.5), randomness="different")(x).numpy()
    assert not (different == different[0]).all(), "randomness='different': each sample its own draw"
    assert set(np.unique(different)) <= {0.0, 2.0}


def test_an_op_without_a_rule_loops_with_a_warning(device):
    from tinytensor.func import batching

    batching._warned.discard(tt.ops.indexing.Nonzero)  # the warning comes once per op and process
    x, _ = pair(3, 4, device=device, seed=22)
    with pytest.warns(UserWarning, match="Nonzero has no batching rule"):
        out = func.vmap(lambda v: tt.nonzero(v > -10))(x)
    assert out.shape == (3, 4, 1)


# ---- bad inputs ------------------------------------------------------------------------------

def test_bad_inputs_get_errors_naming_the_transform_and_the_argument(device):
    x, _ = pair(3, 4, device=device, seed=23)
    y, _ = pair(5, 4, device=device, seed=24)
    with pytest.raises(ValueError, match=r"jvp: tangent 0 has shape \(4,\), but primal 0 has shape \(3, 4\)"):
        func.jvp(lambda v: v.exp(), (x,), (x[0],))
    with pytest.raises(TypeError, match="jvp: tangent 0 is float32, but primal 0 is float64"):
        func.jvp(lambda v: v.exp(), (x,), (x.float(),))
    with pytest.raises(TypeError, match="jvp: primals must be a tuple"):
        func.jvp(lambda v: v.exp(), x, (x,))
    with pytest.raises(ValueError, match=r"vmap\(<lambda>\): in_dims=2 for input 0 of shape \(3, 4\)"):
        func.vmap(lambda v: v, in_dims=2)(x)
    with pytest.raises(ValueError, match="input 0: 3, input 1: 5"):
        func.vmap(lambda a, b: a + b)(x, y)
    with pytest.raises(ValueError, match="every in_dims is None"):
        func.vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="randomness must be one of"):
        func.vmap(lambda a: a, randomness="sometimes")
    with pytest.raises(ValueError, match="in_dims.*does not match the structure"):
        func.vmap(lambda a, b: a, in_dims=(0, 0, 0))(x, x)
    with pytest.raises(RuntimeError, match=r"grad: the function must return a tensor with one element"):
        func.grad(lambda v: v * 2)(x)
    with pytest.raises(ValueError, match="argnums=3 asks for argument 3, but the function was given 1"):
        func.grad(lambda v: v.sum(), argnums=3)(x)
    with pytest.raises(TypeError, match="grad: argument 0 is int64"):
        func.grad(lambda v: v.sum())(tt.tensor([1, 2], device=device))
    _, vjp_fn = func.vjp(lambda v: v.exp(), x)
    with pytest.raises(ValueError, match=r"vjp_fn: cotangent 0 has shape \(4,\), but output 0 has shape"):
        vjp_fn(x[0])
    with pytest.raises(RuntimeError, match="item\\(\\) of a batched tensor"):
        func.vmap(lambda v: v.sum().item())(x)
    lin = nn.Linear(4, 2).double().to(device)
    with pytest.raises(ValueError, match="functional_call: Linear has no parameter or buffer named 'wieght'"):
        func.functional_call(lin, {"wieght": x}, (x,))
    with pytest.raises(ValueError, match=r"'weight' has shape \(2, 4\) in the module"):
        func.functional_call(lin, {"weight": x}, (x,))


def test_the_per_sample_gradients_example_runs(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    script = root / "examples" / "per_sample_gradients.py"
    argv = [sys.executable, str(script), "--device", "cpu", "--samples", "8", "--out", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "all checks passed"
