"""PyTorch parity of attention and the Transformer: the torch module is built first, its state_dict is
copied into tinytensor_nn, and outputs, attention weights, every parameter gradient and the input gradients
are compared (float64 within 1e-9, float32 within 1e-4 relative). Dropout is 0; modules run in training
mode so that torch takes its reference (non-fused) path."""
import numpy as np
import pytest
from _torch import require_torch

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor_nn import functional as F

torch = require_torch()

DTYPES = {"float64": (torch.float64, tt.float64), "float32": (torch.float32, tt.float32)}


def tol(dtype: str) -> dict:
    return dict(rtol=1e-9, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=2e-5)


def close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    np.testing.assert_allclose(ours.numpy(), theirs, err_msg=what, **tol(dtype))


def to_tt(t, requires_grad=None):
    rg = t.requires_grad if requires_grad is None else requires_grad
    return tt.tensor(t.detach().numpy(), requires_grad=rg)


def copy_state(torch_module, tt_module):
    assert list(tt_module.state_dict()) == list(torch_module.state_dict()), "state_dict keys differ"
    tt_module.load_state_dict({k: to_tt(v, False) for k, v in torch_module.state_dict().items()})


def randn(*shape, dtype, grad=True, gen=None):
    return torch.randn(*shape, dtype=dtype, generator=gen).requires_grad_(grad)


def compare(torch_module, tt_module, torch_args, tt_args, dtype, torch_kw=None, tt_kw=None):
    """Run both, backprop the same random upstream gradients, compare everything."""
    out_t = torch_module(*torch_args, **(torch_kw or {}))
    out_o = tt_module(*tt_args, **(tt_kw or {}))
    outs_t = out_t if isinstance(out_t, tuple) else (out_t,)
    outs_o = out_o if isinstance(out_o, tuple) else (out_o,)
    loss_t, loss_o = 0, 0
    gen = torch.Generator().manual_seed(123)
    for i, (a, b) in enumerate(zip(outs_t, outs_o)):
        assert (a is None) == (b is None), f"output {i}: torch gives {a is None and 'None'}"
        if a is None:
            continue
        close(b, a, dtype, f"output {i}")
        g = torch.randn(a.shape, dtype=a.dtype, generator=gen)
        loss_t = loss_t + (a * g).sum()
        loss_o = loss_o + (b * to_tt(g, False)).sum()
    loss_t.backward()
    loss_o.backward()
    for (name, pt), (name_o, po) in zip(torch_module.named_parameters(), tt_module.named_parameters()):
        assert name == name_o
        close(po.grad, pt.grad, dtype, f"grad of {name}")
    for i, (a, b) in enumerate(zip(torch_args, tt_args)):
        if isinstance(a, torch.Tensor) and a.requires_grad:
            close(b.grad, a.grad, dtype, f"grad of input {i}")


# ---- scaled_dot_product_attention -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["plain", "bool", "float", "causal", "causal_rect", "causal_wide",
                                  "causal_long", "scale", "broadcast"])
def test_sdpa_parity(dtype, case):
    tdt, _ = DTYPES[dtype]
    gen = torch.Generator().manual_seed(0)
    L, S = {"causal_rect": (5, 3), "causal_wide": (3, 7), "causal_long": (70, 70)}.get(case, (4, 6))
    q, k, v = (randn(2, 3, L, 8, dtype=tdt, gen=gen), randn(2, 3, S, 8, dtype=tdt, gen=gen),
               randn(2, 3, S, 5, dtype=tdt, gen=gen))
    kw = {}
    if case == "bool":
        m = torch.rand(4, 6, generator=gen) > 0.4
        m[:, 0] = True  # every query may attend somewhere (torch gives NaN otherwise)
        kw["attn_mask"] = m
    elif case == "float":
        kw["attn_mask"] = randn(2, 1, 4, 6, dtype=tdt, gen=gen)
    elif case.startswith("causal"):
        kw["is_causal"] = True
    elif case == "scale":
        kw["scale"] = 0.37
    elif case == "broadcast":
        k, v = k[:1].detach().requires_grad_(), v[:1].detach().requires_grad_()
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
    tq, tk, tv = to_tt(q), to_tt(k), to_tt(v)
    tkw = {a: (to_tt(b) if isinstance(b, torch.Tensor) else b) for a, b in kw.items()}
    out = F.scaled_dot_product_attention(tq, tk, tv, **tkw)
    close(out, ref, dtype, "output")
    g = torch.randn(ref.shape, dtype=tdt, generator=gen)
    (ref * g).sum().backward()
    (out * to_tt(g, False)).sum().backward()
    for name, a, b in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        close(b.grad, a.grad, dtype, f"grad of {name}")
    if case == "float":
        close(tkw["attn_mask"].grad, kw["attn_mask"].grad, dtype, "grad of the float mask")


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_attention_ignores_the_scores_of_future_keys(dtype):
    """With is_causal, a NaN (or inf) key that a query may not see leaves its output and gradients finite,
    as in PyTorch: the masked scores are replaced, not added to."""
    tdt, _ = DTYPES[dtype]
    gen = torch.Generator().manual_seed(1)
    q, k, v = (randn(2, 3, 70, 8, dtype=tdt, gen=gen) for _ in range(3))
    with torch.no_grad():
        k[0, :, 40] = float("nan")
        k[1, :, 50] = float("inf")
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    tq, tk, tv = to_tt(q), to_tt(k), to_tt(v)
    out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    got = out.numpy()
    np.testing.assert_array_equal(np.isnan(got), torch.isnan(ref).numpy())
    assert np.isfinite(got[0, :, :40]).all() and np.isfinite(got[1, :, :50]).all()
    fin = torch.isfinite(ref).numpy()
    rtol, atol = (1e-5, 1e-6) if dtype == "float32" else (1e-12, 1e-12)
    np.testing.assert_allclose(got[fin], ref.detach().numpy()[fin], rtol=rtol, atol=atol)


def test_fully_masked_rows_are_zero():
    """A query with no allowed key: zero output and finite gradients, as torch's CPU SDPA kernel gives
    (and torch's MultiheadAttention with need_weights=False); torch's need_weights=True path gives NaN."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (randn(2, 3, 4, dtype=torch.float64, gen=gen), randn(2, 5, 4, dtype=torch.float64, gen=gen),
               randn(2, 5, 2, dtype=torch.float64, gen=gen))
    allowed = torch.ones(3, 5, dtype=torch.bool)
    allowed[1] = False
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    tq, tk, tv = to_tt(q), to_tt(k), to_tt(v)
    out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=to_tt(allowed))
    close(out, ref, "float64", "output")
    np.testing.assert_array_equal(out.numpy()[:, 1], 0.0)
    g = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    (ref * g).sum().backward()
    (out * to_tt(g, False)).sum().backward()
    for name, a, b in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        close(b.grad, a.grad, "float64", f"grad of {name}")

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(4, 2, batch_first=True, dtype=torch.float64)
    ours = nn.MultiheadAttention(4, 2, batch_first=True, dtype=tt.float64)
    copy_state(mha, ours)
    x = torch.randn(2, 3, 4, dtype=torch.float64, generator=gen)
    kpm = torch.tensor([[False, False, True], [True, True, True]])  # batch 1: every key is padding
    ref_nw, _ = mha(x, x, x, key_padding_mask=kpm, need_weights=False)
    ref_w, _ = mha(x, x, x, key_padding_mask=kpm)
    out, w = ours(to_tt(x), to_tt(x), to_tt(x), key_padding_mask=to_tt(kpm))
    close(out, ref_nw, "float64", "output (torch need_weights=False)")
    assert torch.isnan(ref_w[1]).all() and np.all(w.numpy()[1] == 0)


# ---- MultiheadAttention -------------------------------------------------------------------


MHA_CASES = {
    "self": dict(),
    "self_bool_mask": dict(attn_mask="bool2d"),
    "self_float_mask": dict(attn_mask="float2d"),
    "self_3d_mask": dict(attn_mask="bool3d"),
    "self_float_3d_mask": dict(attn_mask="float3d"),
    "self_causal": dict(attn_mask="causal", is_causal=True),
    "self_kpm": dict(key_padding_mask="bool"),
    "self_float_kpm": dict(key_padding_mask="float"),
    "self_kpm_and_mask": dict(key_padding_mask="bool", attn_mask="bool2d"),
    "per_head_weights": dict(average_attn_weights=False, attn_mask="float2d"),
    "no_weights": dict(need_weights=False, key_padding_mask="bool"),
    "no_weights_causal": dict(need_weights=False, attn_mask="causal", is_causal=True),
    "cross": dict(cross=True, key_padding_mask="bool"),
    "cross_kdim_vdim": dict(cross=True, kdim=3, vdim=5, attn_mask="float2d"),
    "no_bias": dict(bias=False, attn_mask="bool2d"),
    "unbatched": dict(unbatched=True, attn_mask="bool2d"),
}


def _mask(kind, L, S, N, h, dtype, gen):
    if kind == "bool2d":
        m = torch.rand(L, S, generator=gen) > 0.5
        m[:, 0] = False  # keep key 0 visible (bool True = masked out in MultiheadAttention)
        return m
    if kind == "float2d":
        return torch.randn(L, S, dtype=dtype, generator=gen)
    if kind == "bool3d":
        m = torch.rand(N * h, L, S, generator=gen) > 0.5
        m[..., 1] = False
        return m
    if kind == "float3d":
        return torch.randn(N * h, L, S, dtype=dtype, generator=gen)
    if kind == "causal":
        return torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=dtype)
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multihead_attention_parity(dtype, batch_first, case):
    cfg = dict(MHA_CASES[case])
    tdt, odt = DTYPES[dtype]
    E, h, N, L = 8, 2, 3, 4
    S = 5 if cfg.get("cross") else L
    kdim, vdim, bias = cfg.pop("kdim", None), cfg.pop("vdim", None), cfg.pop("bias", True)
    torch.manual_seed(0)
    opts = dict(bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first)
    ref = torch.nn.MultiheadAttention(E, h, dtype=tdt, **opts)
    with torch.no_grad():  # non-zero biases, so that their gradients and roles are tested
        for p in ref.parameters():
            if p.ndim == 1:
                p.normal_()
    ours = nn.MultiheadAttention(E, h, dtype=odt, **opts)
    copy_state(ref, ours)
    gen = torch.Generator().manual_seed(1)
    unbatched = cfg.pop("unbatched", False)

    def x(T, feat):
        if unbatched:
            return randn(T, feat, dtype=tdt, gen=gen)
        return randn(N, T, feat, dtype=tdt, gen=gen) if batch_first else randn(T, N, feat, dtype=tdt, gen=gen)

    if cfg.pop("cross", False):
        args = (x(L, E), x(S, kdim or E), x(S, vdim or E))
        targs = tuple(to_tt(a) for a in args)
    else:
        q = x(L, E)
        args = (q, q, q)
        tq = to_tt(q)
        targs = (tq, tq, tq)
    kw = dict(cfg)
    if "attn_mask" in kw:
        kw["attn_mask"] = _mask(kw["attn_mask"], L, S, 1 if unbatched else N, h, tdt, gen)
    if kw.get("key_padding_mask") == "bool":
        kpm = torch.zeros(N, S, dtype=torch.bool)
        kpm[0, -2:] = True
        kpm[2, 1] = True
        kw["key_padding_mask"] = kpm
    elif kw.get("key_padding_mask") == "float":
        kw["key_padding_mask"] = torch.randn(N, S, dtype=tdt, generator=gen)
    tkw = {a: (to_tt(b, False) if isinstance(b, torch.Tensor) else b) for a, b in kw.items()}
    compare(ref, ours, args, targs, dtype, kw, tkw)


# ---- Transformer layers ---------------------------------------------------------------------


def _layer_pair(kind, dtype, **kw):
    tdt, odt = DTYPES[dtype]
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(8, 2, 16, 0.0, dtype=tdt, **kw)
    with torch.no_grad():
        for p in ref.parameters():
            if p.ndim == 1:
                p.normal_()  # non-trivial LayerNorm weights and biases
    ours = getattr(nn, kind)(8, 2, 16, 0.0, dtype=odt, **kw)
    copy_state(ref, ours)
    return ref, ours


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_parity(dtype, norm_first, activation, batch_first):
    tdt = DTYPES[dtype][0]
    ref, ours = _layer_pair("TransformerEncoderLayer", dtype, activation=activation, norm_first=norm_first,
                            batch_first=batch_first)
    gen = torch.Generator().manual_seed(2)
    x = randn(*((3, 5, 8) if batch_first else (5, 3, 8)), dtype=tdt, gen=gen)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=tdt)
    kpm = torch.zeros(3, 5, dtype=tdt)
    kpm[1, 3:] = float("-inf")
    kw = dict(src_mask=mask, src_key_padding_mask=kpm, is_causal=True)
    compare(ref, ours, (x,), (to_tt(x),), dtype, kw, {a: to_tt(b, False) if a != "is_causal" else b
                                                      for a, b in kw.items()})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_parity(dtype, norm_first, activation, batch_first):
    tdt = DTYPES[dtype][0]
    ref, ours = _layer_pair("TransformerDecoderLayer", dtype, activation=activation, norm_first=norm_first,
                            batch_first=batch_first)
    gen = torch.Generator().manual_seed(3)
    tgt = randn(*((2, 4, 8) if batch_first else (4, 2, 8)), dtype=tdt, gen=gen)
    mem = randn(*((2, 6, 8) if batch_first else (6, 2, 8)), dtype=tdt, gen=gen)
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=tdt)
    mem_kpm = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    kw = dict(tgt_mask=tgt_mask, memory_key_padding_mask=mem_kpm, tgt_is_causal=True,
              memory_mask=torch.randn(4, 6, dtype=tdt, generator=gen))
    tkw = {a: to_tt(b, False) if isinstance(b, torch.Tensor) else b for a, b in kw.items()}
    compare(ref, ours, (tgt, mem), (to_tt(tgt), to_tt(mem)), dtype, kw, tkw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_parity(dtype, norm_first):
    tdt, odt = DTYPES[dtype]
    torch.manual_seed(0)
    ref = torch.nn.Transformer(8, 2, 2, 2, 16, 0.0, activation="gelu", norm_first=norm_first, dtype=tdt)
    ours = nn.Transformer(8, 2, 2, 2, 16, 0.0, activation="gelu", norm_first=norm_first, dtype=odt)
    keys = list(ref.state_dict())
    assert "encoder.layers.0.self_attn.in_proj_weight" in keys and "decoder.norm.weight" in keys
    copy_state(ref, ours)
    gen = torch.Generator().manual_seed(4)
    src, tgt = randn(6, 2, 8, dtype=tdt, gen=gen), randn(4, 2, 8, dtype=tdt, gen=gen)
    src_kpm = torch.tensor([[False] * 6, [False] * 5 + [True]])
    kw = dict(tgt_mask=ref.generate_square_subsequent_mask(4, dtype=tdt), src_key_padding_mask=src_kpm,
              memory_key_padding_mask=src_kpm)
    tkw = dict(tgt_mask=ours.generate_square_subsequent_mask(4, dtype=odt),
               src_key_padding_mask=to_tt(src_kpm), memory_key_padding_mask=to_tt(src_kpm))
    compare(ref, ours, (src, tgt), (to_tt(src), to_tt(tgt)), dtype, kw, tkw)


def test_transformer_encoder_and_decoder_stacks_parity():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=torch.float64)
    ref = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(8, dtype=torch.float64),
                                      enable_nested_tensor=False)
    ours_layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=tt.float64)
    ours = nn.TransformerEncoder(ours_layer, 2, norm=nn.LayerNorm(8, dtype=tt.float64))
    copy_state(ref, ours)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    compare(ref, ours, (x,), (to_tt(x),), "float64", dict(mask=mask), dict(mask=to_tt(mask, False)))

    dl = torch.nn.TransformerDecoderLayer(8, 2, 16, 0.0, dtype=torch.float64)
    ref = torch.nn.TransformerDecoder(dl, 2, norm=torch.nn.LayerNorm(8, dtype=torch.float64))
    ours = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, 0.0, dtype=tt.float64), 2,
                                 norm=nn.LayerNorm(8, dtype=tt.float64))
    copy_state(ref, ours)
    tgt = torch.randn(3, 2, 8, dtype=torch.float64, requires_grad=True)
    mem = torch.randn(4, 2, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64)
    compare(ref, ours, (tgt, mem), (to_tt(tgt), to_tt(mem)), "float64", dict(tgt_mask=mask),
            dict(tgt_mask=to_tt(mask, False)))


def test_square_subsequent_mask_parity():
    for sz in (1, 4):
        np.testing.assert_array_equal(nn.Transformer.generate_square_subsequent_mask(sz).numpy(),
                                      torch.nn.Transformer.generate_square_subsequent_mask(sz).numpy())
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=tt.float64).dtype is tt.float64


def test_state_dict_keys_match_torch():
    pairs = [
        (torch.nn.MultiheadAttention(8, 2, kdim=3, vdim=4), nn.MultiheadAttention(8, 2, kdim=3, vdim=4)),
        (torch.nn.Transformer(8, 2, 1, 1, 16, bias=False), nn.Transformer(8, 2, 1, 1, 16, bias=False)),
    ]
    for ref, ours in pairs:
        assert [(k, tuple(v.shape)) for k, v in ref.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]


def test_patch_embedding_equals_conv2d():
    gen = torch.Generator().manual_seed(5)
    conv = torch.nn.Conv2d(3, 6, kernel_size=(2, 4), stride=(2, 4), dtype=torch.float64)
    pe = nn.PatchEmbedding((4, 8), (2, 4), 3, 6, dtype=tt.float64)
    pe.load_state_dict({"proj.weight": to_tt(conv.weight.reshape(6, -1), False),
                        "proj.bias": to_tt(conv.bias, False)})
    x = torch.randn(2, 3, 4, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    ref = conv(x).flatten(2).transpose(1, 2)  # (B, N, D)
    tx = to_tt(x)
    out = pe(tx)
    close(out, ref, "float64", "patch tokens")
    g = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    (ref * g).sum().backward()
    (out * to_tt(g, False)).sum().backward()
    close(tx.grad, x.grad, "float64", "grad of the image")
    close(pe.proj.weight.grad, conv.weight.grad.reshape(6, -1), "float64", "grad of the projection")
