"""Scaled dot-product attention, MultiheadAttention, the KV cache and positional encodings, without torch:
NumPy references, float64 gradient checks on every device, masks, fully masked rows, bad inputs."""
import math

import numpy as np
import pytest
from _nn_testing import module_gradcheck
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor.autograd import gradcheck, gradgradcheck
from tinytensor.testing.catalogue.base import OpSpec, Sample
from tinytensor.testing.checks import check_sample
from tinytensor.testing.draw import Draw
from tinytensor_nn import functional as F
from tinytensor_nn.functional.attention import attention, causal_mask

# ---- references -------------------------------------------------------------------------------


def np_sdpa(q, k, v, bias=None, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if bias is not None:
        s = s + bias
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(-1, keepdims=True)) @ v


def rand(*shape, device="cpu", grad=True, seed=None):
    rng = np.random.default_rng(seed if seed is not None else sum(shape))
    return tt.tensor(rng.standard_normal(shape), dtype=tt.float64, device=device, requires_grad=grad)


# ---- scaled_dot_product_attention -------------------------------------------------------------


def test_sdpa_matches_numpy_reference(device):
    q, k, v = (rand(*s, device=device) for s in [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)])
    out = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(out.numpy(), np_sdpa(q.numpy(), k.numpy(), v.numpy()), rtol=1e-12, atol=1e-12)
    out = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    np.testing.assert_allclose(out.numpy(), np_sdpa(q.numpy(), k.numpy(), v.numpy(), scale=0.3), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(batch=st.lists(st.integers(1, 3), max_size=2), L=st.integers(1, 5), S=st.integers(1, 5),
       E=st.integers(1, 4), Ev=st.integers(1, 3), mask=st.sampled_from(["none", "bool", "float", "causal"]),
       seed=st.integers(0, 1000))
def test_sdpa_drawn_shapes(batch, L, S, E, Ev, mask, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(tuple(batch) + s) for s in [(L, E), (S, E), (S, Ev)])
    bias, kw = None, {}
    if mask == "bool":
        allowed = rng.random((L, S)) > 0.5  # rows may be fully masked: they must come out zero
        bias, kw = np.where(allowed, 0.0, -np.inf), {"attn_mask": tt.tensor(allowed)}
    elif mask == "float":
        bias = rng.standard_normal((L, S))
        kw = {"attn_mask": tt.tensor(bias)}
    elif mask == "causal":
        bias, kw = np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf), {"is_causal": True}
    out = F.scaled_dot_product_attention(tt.tensor(q), tt.tensor(k), tt.tensor(v), **kw).numpy()
    assert out.shape == tuple(batch) + (L, Ev)
    with np.errstate(invalid="ignore"):
        want = np_sdpa(q, k, v, bias)
    want = np.where(np.isnan(want), 0.0, want)  # rows with no allowed key: zeros (not NaN)
    np.testing.assert_allclose(out, want, atol=1e-12)


def test_sdpa_masks_follow_pytorch_convention(device):
    q, k, v = rand(2, 4, 3, device=device), rand(2, 5, 3, device=device), rand(2, 5, 2, device=device)
    allowed = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=bool)
    bias = np.where(allowed, 0.0, -np.inf)
    want = np_sdpa(q.numpy(), k.numpy(), v.numpy(), bias)
    got_bool = F.scaled_dot_product_attention(q, k, v, attn_mask=tt.tensor(allowed, device=device))
    got_float = F.scaled_dot_product_attention(q, k, v, attn_mask=tt.tensor(bias, device=device))
    np.testing.assert_allclose(got_bool.numpy(), want, atol=1e-12)
    np.testing.assert_allclose(got_float.numpy(), want, atol=1e-12)
    # is_causal: query i sees keys j <= i (top-left aligned, as PyTorch, also for L != S)
    causal = np.tril(np.ones((4, 5), dtype=bool))
    want = np_sdpa(q.numpy(), k.numpy(), v.numpy(), np.where(causal, 0.0, -np.inf))
    got = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_sdpa_gradcheck(device):
    q, k, v = rand(2, 3, 4, device=device), rand(2, 5, 4, device=device), rand(2, 5, 3, device=device)
    allowed = tt.tensor(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool), device=device)
    fbias = rand(3, 5, device=device)
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [q, k, v])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=allowed), [q, k, v])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v])
    assert gradcheck(lambda q, k, v, b: F.scaled_dot_product_attention(q, k, v, b), [q, k, v, fbias])


def test_sdpa_second_derivatives(device):
    q, k, v = rand(1, 3, 2, device=device), rand(1, 4, 2, device=device), rand(1, 4, 2, device=device)
    allowed = tt.tensor(np.array([[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1]], bool), device=device)
    assert gradgradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, allowed), [q, k, v])


def test_sdpa_broadcast_batch_dims_gradcheck(device):
    q, k, v = (rand(*s, device=device) for s in [(2, 2, 3, 4), (1, 2, 5, 4), (2, 1, 5, 3)])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v])


def test_fully_masked_rows_give_zeros_and_finite_gradients(device):
    q, k, v = (rand(*s, device=device) for s in [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)])
    allowed = np.ones((3, 5), dtype=bool)
    allowed[1] = False  # query 1 may attend to nothing
    fmask = tt.tensor(np.where(allowed, 0.0, -np.inf), device=device, requires_grad=True)
    for mask in (tt.tensor(allowed, device=device), fmask):
        for t in (q, k, v):
            t.grad = None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert np.all(out.numpy()[:, :, 1] == 0)
        assert np.isfinite(out.numpy()).all()
        (out * rand(*out.shape, device=device, grad=False)).sum().backward()
        for t in (q, k, v):
            assert np.isfinite(t.grad.numpy()).all()
        assert np.all(q.grad.numpy()[:, :, 1] == 0)
    assert np.isfinite(fmask.grad.numpy()).all()


@pytest.mark.parametrize("spread", [0.0, 30.0, 100.0])
def test_sdpa_rows_far_apart_keep_float32_precision(spread):
    # the softmax shifts every row by the largest score of all; rows far below it take the row-max way
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s) for s in [(2, 4, 6, 8), (2, 4, 5, 8), (2, 4, 5, 3)])
    bias = rng.standard_normal((6, 5))
    bias[2] += spread  # query 2's scores sit `spread` above the others'
    q, k, v, bias = (a.astype(np.float32).astype(np.float64) for a in (q, k, v, bias))
    want = np_sdpa(q, k, v, bias)
    got = F.scaled_dot_product_attention(*(tt.tensor(a, dtype=tt.float32) for a in (q, k, v)),
                                         attn_mask=tt.tensor(bias, dtype=tt.float32))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_sdpa_dropout_uses_the_seeded_generator(device):
    q, k, v = rand(2, 3, 4, device=device), rand(2, 5, 4, device=device), rand(2, 5, 3, device=device)
    tt.manual_seed(7)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    tt.manual_seed(7)
    keep = tt.dropout(tt.ones(2, 3, 5, dtype=tt.float64), 0.4, True).numpy()
    s = q.numpy() @ np.swapaxes(k.numpy(), -1, -2) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), (p * keep) @ v.numpy(), atol=1e-12)
    assert not np.allclose(out.numpy(), F.scaled_dot_product_attention(q, k, v).numpy())

    def fn(q, k, v):
        tt.manual_seed(3)  # the same dropout mask for every evaluation
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)

    assert gradcheck(fn, [q, k, v])


def test_sdpa_bad_inputs():
    q, k, v = rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 3)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 5\) does not broadcast .*\(2, 3, 5\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=tt.ones(4, 5, dtype=tt.bool))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=tt.ones(3, 5, dtype=tt.bool), is_causal=True)
    with pytest.raises(TypeError, match="bool or have the query's dtype"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=tt.ones(3, 5, dtype=tt.int64))
    with pytest.raises(TypeError, match="bool or have the query's dtype"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=tt.ones(3, 5, dtype=tt.float32))
    with pytest.raises(ValueError, match="same last dim"):
        F.scaled_dot_product_attention(q, rand(2, 5, 3), v)
    with pytest.raises(ValueError, match="same length S"):
        F.scaled_dot_product_attention(q, k, rand(2, 4, 3))
    with pytest.raises(TypeError, match="one floating dtype"):
        F.scaled_dot_product_attention(q, k.float(), v)


def test_sdpa_device_mismatch_is_an_error():
    if "strict" not in tt.backends.available():
        pytest.skip("array_api_strict is not installed")
    q, k, v = rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 3)
    with pytest.raises(RuntimeError, match="query is on cpu but key is on strict"):
        F.scaled_dot_product_attention(q, k.detach().to("strict"), v)
    with pytest.raises(RuntimeError, match="attn_mask is on strict"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=tt.ones(3, 5, dtype=tt.bool, device="strict"))


def test_causal_mask_offset():
    m = causal_mask(2, 5, offset=3).numpy()
    np.testing.assert_array_equal(m, np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool))


# ---- MultiheadAttention -----------------------------------------------------------------------


def np_mha(mha, x_q, x_k, x_v, bias=None):
    """Reference multi-head attention in NumPy for batch_first inputs (N, L, E)."""
    E, h = mha.embed_dim, mha.num_heads
    if mha.in_proj_weight is not None:
        Wq, Wk, Wv = np.split(mha.in_proj_weight.numpy(), 3)
    else:
        Wq, Wk, Wv = (mha.q_proj_weight.numpy(), mha.k_proj_weight.numpy(), mha.v_proj_weight.numpy())
    bq, bk, bv = np.split(mha.in_proj_bias.numpy(), 3)
    q, k, v = x_q @ Wq.T + bq, x_k @ Wk.T + bk, x_v @ Wv.T + bv

    def heads(t):
        N, T, _ = t.shape
        return t.reshape(N, T, h, E // h).transpose(0, 2, 1, 3)

    y = np_sdpa(heads(q), heads(k), heads(v), bias)  # (N, h, L, hs)
    N, _, L, _ = y.shape
    y = y.transpose(0, 2, 1, 3).reshape(N, L, E)
    return y @ mha.out_proj.weight.numpy().T + mha.out_proj.bias.numpy()


def test_mha_parameters_and_init():
    tt.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2)
    assert list(mha.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert mha.in_proj_weight.shape == (24, 8)
    bound = math.sqrt(6 / (8 + 24))  # xavier_uniform_ of the (3E, E) matrix
    assert np.abs(mha.in_proj_weight.numpy()).max() <= bound
    assert np.abs(mha.in_proj_weight.numpy()).max() > 0.8 * bound
    assert np.all(mha.in_proj_bias.numpy() == 0) and np.all(mha.out_proj.bias.numpy() == 0)
    mha = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False)
    assert list(mha.state_dict()) == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"]
    assert mha.k_proj_weight.shape == (8, 3) and mha.v_proj_weight.shape == (8, 5)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_matches_numpy_reference(batch_first):
    tt.manual_seed(1)
    mha = nn.MultiheadAttention(6, 3, kdim=4, vdim=5, batch_first=batch_first, dtype=tt.float64)
    with tt.no_grad():
        mha.in_proj_bias.copy_(rand(18, grad=False))
    q, k, v = rand(2, 3, 6), rand(2, 4, 4), rand(2, 4, 5)
    kpm = np.array([[0, 0, 1, 0], [0, 0, 0, 1]], bool)
    bias = np.where(kpm, -np.inf, 0.0)[:, None, None, :]
    want = np_mha(mha, q.numpy(), k.numpy(), v.numpy(), bias)
    args = (q, k, v) if batch_first else tuple(t.transpose(0, 1) for t in (q, k, v))
    out, w = mha(*args, key_padding_mask=tt.tensor(kpm))
    out = out if batch_first else out.transpose(0, 1)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-12)
    assert w.shape == (2, 3, 4) and np.allclose(w.numpy().sum(-1), 1) and np.all(w.numpy()[0, :, 2] == 0)


def test_mha_unbatched_and_weights_per_head():
    tt.manual_seed(2)
    mha = nn.MultiheadAttention(4, 2, dtype=tt.float64)
    x = rand(3, 4)
    out, w = mha(x, x, x, average_attn_weights=False)
    out_b, w_b = mha(x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1), average_attn_weights=False)
    assert out.shape == (3, 4) and w.shape == (2, 3, 3)
    np.testing.assert_allclose(out.numpy(), out_b.numpy()[:, 0], atol=1e-14)
    np.testing.assert_allclose(w.numpy(), w_b.numpy()[0], atol=1e-14)
    assert mha(x, x, x, need_weights=False)[1] is None
    out, w = mha(x, x, x, key_padding_mask=tt.tensor([False, True, False]))
    assert np.all(w.numpy()[:, 1] == 0)


def test_mha_gradcheck(device):
    tt.manual_seed(3)
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=tt.float64).to(device)
    with tt.no_grad():
        mha.in_proj_bias.copy_(rand(12, device=device, grad=False))
    x = rand(2, 3, 4, device=device)
    mask = tt.tensor(np.triu(np.ones((3, 3), bool), 1), device=device)
    kpm = tt.tensor(np.array([[0, 0, 1], [1, 1, 1]], bool), device=device)  # batch 1: every key masked

    def call(m, x):
        out, w = m(x, x, x, attn_mask=mask, key_padding_mask=kpm, is_causal=True)
        return out, w

    assert module_gradcheck(mha, [x], call)


def test_mha_cross_attention_kdim_vdim_gradcheck(device):
    tt.manual_seed(4)
    mha = nn.MultiheadAttention(4, 2, kdim=3, vdim=2, dtype=tt.float64).to(device)
    q, k, v = rand(2, 2, 4, device=device), rand(3, 2, 3, device=device), rand(3, 2, 2, device=device)
    fmask = rand(2 * 2, 2, 3, device=device, grad=False)  # (N*h, L, S) float mask

    def call(m, q, k, v):
        return m(q, k, v, attn_mask=fmask, average_attn_weights=False)

    assert module_gradcheck(mha, [q, k, v], call)


def test_mha_dropout_only_in_training():
    tt.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, dropout=0.5, batch_first=True, dtype=tt.float64)
    x = rand(2, 5, 4, grad=False)
    out, w = mha(x, x, x)
    assert not np.allclose(w.numpy().sum(-1), 1)  # the returned weights are the dropped-out ones (PyTorch)
    mha.eval()
    out1, w1 = mha(x, x, x)
    out2, _ = mha(x, x, x)
    np.testing.assert_array_equal(out1.numpy(), out2.numpy())
    np.testing.assert_allclose(w1.numpy().sum(-1), 1)
    assert not np.allclose(out.numpy(), out1.numpy())


def test_mha_fully_masked_rows():
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=tt.float64)
    x = rand(2, 3, 4)
    kpm = tt.tensor(np.array([[0, 0, 0], [1, 1, 1]], bool))
    out, w = mha(x, x, x, key_padding_mask=kpm)
    out.sum().backward()
    assert np.isfinite(out.numpy()).all() and np.all(w.numpy()[1] == 0)
    np.testing.assert_allclose(out.numpy()[1], np.broadcast_to(mha.out_proj.bias.numpy(), (3, 4)))
    assert all(np.isfinite(p.grad.numpy()).all() for p in mha.parameters())


def test_mha_bad_inputs():
    with pytest.raises(ValueError, match="embed_dim=10 is not divisible by num_heads=3"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(4, 2)
    x = tt.randn(3, 2, 4)  # (L, N, E)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(2, 3\), but should be \(3, 3\) or \(4, 3,"):
        mha(x, x, x, attn_mask=tt.ones(2, 3, dtype=tt.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(3, 2\), but should be \(2, 3\)"):
        mha(x, x, x, key_padding_mask=tt.ones(3, 2, dtype=tt.bool))
    with pytest.raises(TypeError, match="only bool and floating attn_mask"):
        mha(x, x, x, attn_mask=tt.ones(3, 3, dtype=tt.int64))
    with pytest.raises(TypeError, match="float key_padding_mask is .*float64 but the query is .*float32"):
        mha(x, x, x, key_padding_mask=tt.zeros(2, 3, dtype=tt.float64))
    with pytest.raises(RuntimeError, match="is_causal=True is a hint that needs attn_mask"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match="query must have 4 features"):
        mha(tt.randn(3, 2, 5), x, x)
    with pytest.raises(TypeError, match="query is .*float64 but the parameters are .*float32"):
        mha(x.double(), x.double(), x.double())
    with pytest.raises(ValueError, match=r"all be 3-D \(batched\) or all 2-D"):
        mha(x, x[0], x[0])


def test_mha_device_mismatch_is_an_error():
    if "strict" not in tt.backends.available():
        pytest.skip("array_api_strict is not installed")
    mha = nn.MultiheadAttention(4, 2)
    x = tt.randn(3, 2, 4, device="strict")
    with pytest.raises(RuntimeError, match="query is on strict but the module's parameters are on cpu"):
        mha(x, x, x)
    y = tt.randn(3, 2, 4)
    with pytest.raises(RuntimeError, match="attn_mask is on strict but the query is on cpu"):
        mha(y, y, y, attn_mask=tt.ones(3, 3, dtype=tt.bool, device="strict"))


# ---- KV cache -----------------------------------------------------------------------------


@pytest.mark.parametrize("rotary", [False, True])
def test_kv_cache_gives_the_same_outputs(device, rotary):
    tt.manual_seed(5)
    rope = nn.RotaryEmbedding(2, max_len=16) if rotary else None
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=tt.float64, rotary=rope).to(device)
    x = rand(2, 6, 4, device=device, grad=False)
    full, w_full = mha(x, x, x, attn_mask=causal_mask(6, device=device).logical_not())
    cache = nn.KVCache()
    outs = []
    for start, stop in ((0, 3), (3, 4), (4, 6)):  # a prompt of 3, then 1, then 2 tokens
        xs = x[:, start:stop]
        past = len(cache)
        mask = causal_mask(stop - start, stop, offset=past, device=device).logical_not()
        out, w = mha(xs, xs, xs, attn_mask=mask, kv_cache=cache)
        assert w.shape == (2, stop - start, stop) and len(cache) == stop
        outs.append(out)
    np.testing.assert_allclose(tt.cat(outs, dim=1).numpy(), full.numpy(), atol=1e-13)
    assert cache.k.shape == (2, 2, 6, 2) and "tokens=6" in repr(cache)
    cache.reset()
    assert len(cache) == 0


def test_kv_cache_rejects_another_batch():
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    cache = nn.KVCache()
    x = tt.randn(2, 3, 4)
    mha(x, x, x, kv_cache=cache)
    y = tt.randn(3, 1, 4)
    with pytest.raises(ValueError, match="do not continue the cached"):
        mha(y, y, y, kv_cache=cache)


# ---- positional encodings --------------------------------------------------------------------


def test_sinusoidal_table_formula():
    pe = nn.sinusoidal_table(7, 6).numpy()
    pos, i = np.arange(7)[:, None], np.arange(3)[None, :]
    np.testing.assert_allclose(pe[:, 0::2], np.sin(pos / 10000 ** (2 * i / 6)), atol=1e-7)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(pos / 10000 ** (2 * i / 6)), atol=1e-7)
    assert nn.sinusoidal_table(4, 5).shape == (4, 5)  # odd d_model: the last cos column is dropped


def test_sinusoidal_encoding_module(device):
    enc = nn.SinusoidalPositionalEncoding(4, max_len=10).to(device)
    x = rand(2, 3, 4, device=device, grad=False)
    pe = nn.sinusoidal_table(10, 4).numpy()
    np.testing.assert_allclose(enc(x).numpy(), x.numpy() + pe[:3], atol=1e-7)
    np.testing.assert_allclose(enc(x, offset=5).numpy(), x.numpy() + pe[5:8], atol=1e-7)
    enc_t = nn.SinusoidalPositionalEncoding(4, max_len=10, batch_first=False)
    want = (x.numpy() + pe[:3]).transpose(1, 0, 2)
    np.testing.assert_allclose(enc_t(x.cpu().transpose(0, 1)).numpy(), want, atol=1e-7)
    assert list(enc.state_dict()) == []  # a formula, not a weight
    assert gradcheck(lambda x: enc(x, offset=2), [rand(2, 3, 4, device=device)])
    with pytest.raises(ValueError, match="max_len=10"):
        enc(rand(1, 11, 4, device=device, grad=False))
    with pytest.raises(ValueError, match="max_len=10"):
        enc(x, offset=8)


def test_learned_positional_embedding(device):
    tt.manual_seed(0)
    emb = nn.LearnedPositionalEmbedding(5, 4).double().to(device)
    x = rand(2, 3, 4, device=device)
    np.testing.assert_allclose(emb(x, offset=1).numpy(), x.numpy() + emb.weight.numpy()[1:4])
    assert list(emb.state_dict()) == ["weight"]
    assert module_gradcheck(emb, [x])
    with pytest.raises(ValueError, match="max_len=5"):
        emb(rand(1, 6, 4, device=device))


def test_rotary_embedding_is_the_paper_rotation(device):
    rope = nn.RotaryEmbedding(4, max_len=8).to(device)
    x = rand(2, 5, 4, device=device, grad=False)
    got = rope(x, offset=2).numpy()
    xn = x.numpy()
    for t in range(5):
        m = t + 2
        for i in range(2):
            th = m * 10000 ** (-2 * i / 4)
            c, s = np.cos(th), np.sin(th)
            a, b = xn[:, t, 2 * i], xn[:, t, 2 * i + 1]
            np.testing.assert_allclose(got[:, t, 2 * i], a * c - b * s, atol=1e-6)
            np.testing.assert_allclose(got[:, t, 2 * i + 1], a * s + b * c, atol=1e-6)


def test_rotary_scores_depend_on_relative_position():
    rope = nn.RotaryEmbedding(6, max_len=32).double()
    q, k = rand(1, 1, 6, grad=False), rand(1, 1, 6, grad=False, seed=9)

    def score(m, n):
        return float((rope(q, offset=m) * rope(k, offset=n)).sum().item())

    assert score(3, 1) == pytest.approx(score(12, 10), abs=1e-12)
    assert score(0, 5) == pytest.approx(score(20, 25), abs=1e-12)
    assert list(rope.state_dict()) == []


def test_rotary_gradcheck_and_errors(device):
    rope = nn.RotaryEmbedding(4, max_len=6).double().to(device)
    x = rand(2, 3, 4, device=device)
    assert gradcheck(lambda x: rope(x, offset=2), [x])
    with pytest.raises(ValueError, match="max_len=6"):
        rope(x, offset=4)
    with pytest.raises(ValueError, match="dim must be even"):
        nn.RotaryEmbedding(5)
    with pytest.raises(ValueError, match="rotary.dim=4 must be head_dim=2"):
        nn.MultiheadAttention(4, 2, rotary=nn.RotaryEmbedding(4))


def _np_rotate(x, cos, sin):
    x1, x2 = x[..., 0::2], x[..., 1::2]
    y = np.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return y.reshape(y.shape[:-2] + (2 * y.shape[-2],))


def _rotate_sample(d: Draw) -> Sample:
    """x (..., T, D) with tables (T, D/2), or tables that carry leading dims of their own and broadcast."""
    lead, T, half = d.shape(0, 2, max_side=3), d.integers(1, 3), d.integers(1, 3)
    tables = (T, half) if d.choice((True, False)) else (*(1,) * len(lead), T, half)
    if lead and d.choice((True, False)):  # a table with a leading dim the input lacks: x broadcasts
        tables, lead = (2, T, half), ()
    return Sample((d.array((*lead, T, 2 * half)), d.array(tables), d.array(tables)))


ROTATE = OpSpec("rotate", nn.positional.Rotate.apply, _np_rotate, _rotate_sample)


@pytest.mark.parametrize("seed", range(8))
def test_rotate_function_gradients_tangents_and_vmap(device, seed):
    """The Function behind RotaryEmbedding: forward, float64 gradients of x and of both tables to
    second order, its jvp two ways, vmap against a loop."""
    check_sample(ROTATE, ROTATE.sample(Draw(seed=seed)), device)


def test_rotate_is_the_module_formula_on_a_transposed_view(device):
    rope = nn.RotaryEmbedding(8, max_len=16).to(device)
    base = tt.randn(2, 5, 3, 8, device=device)  # (B, T, heads, head_dim): heads moved in front below
    x = base.transpose(1, 2)  # a strided view, as attention's q and k are
    got = rope(x, offset=3).numpy()
    cos, sin = (t[3:8].numpy().astype(np.float32) for t in (rope.cos, rope.sin))
    want = _np_rotate(x.numpy(), cos, sin)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_rotary_2d_rows_and_columns(device):
    rope = nn.RotaryEmbedding2D(8, (2, 3), num_prefix_tokens=1).double().to(device)
    x = rand(2, 1 + 6, 8, device=device)
    y = rope(x).numpy()
    np.testing.assert_allclose(y[:, 0], x.numpy()[:, 0])  # the class token is not rotated
    row_rope, col_rope = nn.RotaryEmbedding(4, max_len=3).double(), nn.RotaryEmbedding(4, max_len=3).double()
    xn = x.numpy()
    for n in range(6):
        r, c = divmod(n, 3)
        first = row_rope(tt.tensor(xn[:, 1 + n : 2 + n, :4]), offset=r).numpy()[:, 0]
        second = col_rope(tt.tensor(xn[:, 1 + n : 2 + n, 4:]), offset=c).numpy()[:, 0]
        np.testing.assert_allclose(y[:, 1 + n, :4], first, atol=1e-12)
        np.testing.assert_allclose(y[:, 1 + n, 4:], second, atol=1e-12)
    assert gradcheck(rope, [x])
    with pytest.raises(ValueError, match="1 prefix tokens \\+ 2x3 patches = 7 tokens"):
        rope(rand(2, 6, 8, device=device))
    with pytest.raises(ValueError, match="divisible by 4"):
        nn.RotaryEmbedding2D(6, 2)


def test_sinusoidal_table_2d():
    t = nn.sinusoidal_table_2d(2, 3, 8).numpy()
    one = nn.sinusoidal_table(3, 4).numpy()
    for n in range(6):
        r, c = divmod(n, 3)
        np.testing.assert_allclose(t[n], np.concatenate([one[r], one[c]]))
    with pytest.raises(ValueError, match="divisible by 4"):
        nn.sinusoidal_table_2d(2, 2, 6)


@pytest.mark.parametrize("case", ["plain", "causal", "bias", "dropout", "weights used", "shared keys"])
def test_sdpa_backward_on_arrays_equals_its_tensor_op_form(device, case):
    """With no graph being recorded, the attention Function's backward computes on the arrays; under
    create_graph=True it uses Tensor ops. The same kernels in the same order: the same gradients bit for
    bit, for every input that takes one."""
    q, k, v = (rand(2, 3, 4, 5, device=device), rand(2, 3, 6, 5, device=device),
               rand(2, 3, 6, 2, device=device))
    if case == "shared keys":  # batch dims that broadcast: the gradients are summed back to (1, 3, ...)
        k, v = rand(1, 3, 6, 5, device=device), rand(1, 3, 6, 2, device=device)
    bias = rand(2, 1, 4, 6, device=device) if case == "bias" else None
    weights_of = rand(2, 3, 4, 6, device=device, grad=False, seed=7)
    grads = []
    for create_graph in (False, True):
        tt.manual_seed(0)  # the same dropout mask both times
        p = 0.3 if case == "dropout" else 0.0
        out, w = attention(q, k, v, bias, dropout_p=p, causal=case == "causal")
        loss = (out * out).sum() + ((w * weights_of).sum() if case == "weights used" else 0.0)
        inputs = [q, k, v] + ([bias] if bias is not None else [])
        grads.append(tt.autograd.grad(loss, inputs, create_graph=create_graph))
    for plain, recorded in zip(*grads):
        np.testing.assert_array_equal(plain.numpy(), recorded.detach().numpy())
