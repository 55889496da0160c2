"""Attention checks its operands (issue 8): batch, length and feature dims of query/key/value and of every
mask in scaled_dot_product_attention, MultiheadAttention (both layouts, batched and unbatched), the KV
cache, the Transformer layers and GPT; masks become one additive bias once; attention over zero keys
gives PyTorch's zeros; GPT.generate's prompt and temperature. PyTorch parity where torch has the case."""
import warnings

import numpy as np
import pytest
from _torch import require_torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional.attention as FA
import tinytensor_nn.transformer as transformer_module
from tinytensor_nn import functional as F


def rand(*shape, device="cpu", grad=True, seed=0):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    return tt.tensor(rng.standard_normal(shape), dtype=tt.float64, device=device, requires_grad=grad)


def from_torch(t, device="cpu", grad=None):
    rg = t.requires_grad if grad is None else grad
    return tt.tensor(t.detach().numpy(), device=device, requires_grad=rg)


def assert_close(ours, theirs, what=""):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {ours.shape} vs {theirs.shape}"
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-10, atol=1e-12, err_msg=what)


def torch_raises(fn) -> bool:
    try:
        fn()
    except (RuntimeError, AssertionError, ValueError):
        return True
    return False


def mha_pair(torch, E=4, h=2, batch_first=False, device="cpu", **kw):
    """A torch MultiheadAttention with non-zero biases and ours with its weights."""
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(E, h, batch_first=batch_first, dtype=torch.float64, **kw)
    with torch.no_grad():
        for p in ref.parameters():
            if p.ndim == 1:
                p.normal_()
    ours = nn.MultiheadAttention(E, h, batch_first=batch_first, dtype=tt.float64, **kw)
    ours.load_state_dict({k: from_torch(v, grad=False) for k, v in ref.state_dict().items()})
    return ref, ours.to(device)


# ---- scaled_dot_product_attention -------------------------------------------------------------


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_sdpa_over_zero_keys_gives_torchs_zeros(device, mask):
    # before: ValueError "zero-size array to reduction operation maximum"; torch: zeros, zero gradients
    torch = require_torch()
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    k = torch.randn(2, 0, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 0, 5, dtype=torch.float64, requires_grad=True)
    kw, tkw = {}, {}
    if mask == "bool":
        kw["attn_mask"] = torch.ones(3, 0, dtype=torch.bool)
    elif mask == "float":
        kw["attn_mask"] = torch.zeros(3, 0, dtype=torch.float64, requires_grad=True)
    elif mask == "causal":
        kw["is_causal"] = True
    for name, value in kw.items():
        tkw[name] = from_torch(value, device) if isinstance(value, torch.Tensor) else value
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
    tq, tk, tv = (from_torch(t, device) for t in (q, k, v))
    out = F.scaled_dot_product_attention(tq, tk, tv, **tkw)
    assert_close(out, ref, "output")
    assert np.all(out.numpy() == 0)
    g = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    (ref * g).sum().backward()
    (out * from_torch(g, device, grad=False)).sum().backward()
    for name, a, b in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        assert_close(b.grad, a.grad, f"grad of {name}")
    assert np.all(tq.grad.numpy() == 0)
    if mask == "float":
        assert tkw["attn_mask"].grad.shape == (3, 0)


@pytest.mark.parametrize("case", ["q2d_k3d", "q3d_k2d", "k_v_broadcast", "v_wider", "mask_L1", "mask_S",
                                  "no_queries", "empty_batch"])
def test_sdpa_accepts_what_torch_accepts(device, case):
    # v_wider (value's batch broadcasts the weights further): before, backward raised a vecdot ValueError
    torch = require_torch()
    gen = torch.Generator().manual_seed(1)

    def r(*s):
        return torch.randn(*s, dtype=torch.float64, generator=gen, requires_grad=True)

    shapes = {"q2d_k3d": [(4, 8), (2, 5, 8), (2, 5, 3)], "q3d_k2d": [(2, 4, 8), (5, 8), (5, 3)],
              "k_v_broadcast": [(2, 2, 4, 8), (2, 1, 5, 8), (1, 2, 5, 3)],
              "v_wider": [(4, 8), (5, 8), (2, 5, 3)], "no_queries": [(2, 0, 8), (2, 5, 8), (2, 5, 3)],
              "empty_batch": [(0, 4, 8), (0, 5, 8), (0, 5, 3)]}
    q, k, v = (r(*s) for s in shapes.get(case, [(3, 4, 8), (3, 5, 8), (3, 5, 3)]))
    kw = {"mask_L1": {"attn_mask": r(4, 1)}, "mask_S": {"attn_mask": r(5)}}.get(case, {})
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
    ours = [from_torch(t, device) for t in (q, k, v)]
    tkw = {a: from_torch(b, device) for a, b in kw.items()}
    out = F.scaled_dot_product_attention(*ours, **tkw)
    assert_close(out, ref, case)
    g = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    (ref * g).sum().backward()
    (out * from_torch(g, device, grad=False)).sum().backward()
    for name, a, b in zip("qkv", (q, k, v), ours):
        assert_close(b.grad, a.grad, f"{case}: grad of {name}")
    for name in tkw:
        assert_close(tkw[name].grad, kw[name].grad, f"{case}: grad of {name}")


@pytest.mark.parametrize("shapes", [[(2, 4, 8), (3, 5, 8), (3, 5, 3)], [(2, 4, 8), (2, 5, 8), (3, 5, 3)],
                                    [(2, 3, 4, 8), (3, 3, 5, 8), (3, 3, 5, 3)]])
def test_sdpa_rejects_batch_dims_that_do_not_broadcast(device, shapes):
    torch = require_torch()
    q, k, v = (rand(*s, device=device) for s in shapes)
    assert torch_raises(lambda: torch.nn.functional.scaled_dot_product_attention(
        *(torch.zeros(*s, dtype=torch.float64) for s in shapes)))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: the batch dims .* do not broadcast"):
        F.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("mask_shape", [(2, 1, 4, 5), (1, 1, 4, 5), (2, 4, 5)])
def test_sdpa_mask_may_not_widen_the_scores(device, mask_shape):
    # before: the mask broadcast the scores up and the output grew extra batch dims; torch raises
    torch = require_torch()
    q, k, v = rand(3, 4, 8, device=device), rand(3, 5, 8, device=device), rand(3, 5, 3, device=device)
    assert torch_raises(lambda: torch.nn.functional.scaled_dot_product_attention(
        torch.zeros(3, 4, 8), torch.zeros(3, 5, 8), torch.zeros(3, 5, 3), attn_mask=torch.zeros(mask_shape)))
    mask = tt.zeros(*mask_shape, dtype=tt.float64, device=device)
    with pytest.raises(ValueError, match=r"does not broadcast to the attention scores' shape \(3, 4, 5\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    q1 = rand(1, 4, 8, device=device)  # a mask may not widen a batch of 1 either (torch raises)
    with pytest.raises(ValueError, match=r"scores' shape \(1, 4, 5\)"):
        F.scaled_dot_product_attention(q1, k[:1], v[:1], attn_mask=tt.zeros(3, 4, 5, dtype=tt.float64,
                                                                             device=device))


# ---- MultiheadAttention: one batch for query, key, value and the masks ------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_rejects_a_key_batch_other_than_the_querys(device, batch_first):
    # before: the keys were reshaped into the query's batch and samples attended to each other's keys
    torch = require_torch()
    ref, mha = mha_pair(torch, batch_first=batch_first, device=device)
    B, L, S, E = 2, 3, 5, 4
    wrong = (S, B, E) if batch_first else (B, S, E)  # key/value in the other layout
    q = (B, L, E) if batch_first else (L, B, E)
    assert torch_raises(lambda: ref(*(torch.zeros(*s, dtype=torch.float64) for s in (q, wrong, wrong))))
    key = rand(*wrong, device=device)
    with pytest.raises(ValueError, match=r"MultiheadAttention: query \(.*\) has batch size 2 but key .* have "
                                         r"5 .*each sample may attend only to its own keys"):
        mha(rand(*q, device=device), key, key)
    # all three in the other layout: the batches agree in the other dim, so the error names the flag
    other_q = (L, B, E) if batch_first else (B, L, E)
    other_k = (S, B, E) if batch_first else (B, S, E)
    assert torch_raises(lambda: ref(*(torch.zeros(*s, dtype=torch.float64) for s in (other_q, other_k,
                                                                                      other_k))))
    xk = rand(*other_k, device=device)
    with pytest.raises(ValueError, match=rf"did you mean batch_first={not batch_first}\?"):
        mha(rand(*other_q, device=device), xk, xk)
    # value with another batch than key (torch: AssertionError "key shape ... does not match value shape")
    with pytest.raises(ValueError, match="key .* and value .* must agree in all but the last dim"):
        right_k = (B, S, E) if batch_first else (S, B, E)
        mha(rand(*q, device=device), rand(*right_k, device=device), rand(*other_k, device=device))


def test_mha_masks_of_the_other_layout_name_batch_first(device):
    mha = nn.MultiheadAttention(4, 2, dtype=tt.float64).to(device)  # batch_first=False: (L, B, E)
    x = rand(2, 3, 4, device=device)  # meant as (B=2, L=3, E): read as L=2, B=3
    kpm = tt.zeros(2, 3, dtype=tt.bool, device=device)  # (B, S) of the meant layout
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 3\), but should be \(3, 2\); .*"
                                         r"did you mean batch_first=True\?"):
        mha(x, x, x, key_padding_mask=kpm)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(3, 3\), but should be \(2, 2\) or "
                                         r"\(6, 2, 2\).*did you mean batch_first=True\?"):
        mha(x, x, x, attn_mask=tt.zeros(3, 3, dtype=tt.bool, device=device))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(4, 2\), but should be \(3, 2\)$"):
        mha(x, x, x, key_padding_mask=tt.zeros(4, 2, dtype=tt.bool, device=device))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_over_zero_keys_matches_torch(device, batch_first, need_weights):
    # before: ValueError from the softmax; torch: attention 0, the output out_proj.bias, weights (B, L, 0)
    torch = require_torch()
    ref, mha = mha_pair(torch, batch_first=batch_first, device=device)
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(*((2, 3, 4) if batch_first else (3, 2, 4)), dtype=torch.float64, generator=gen,
                    requires_grad=True)
    k = torch.randn(*((2, 0, 4) if batch_first else (0, 2, 4)), dtype=torch.float64, requires_grad=True)
    kpm = torch.zeros(2, 0, dtype=torch.bool)
    # torch's need_weights=False path fails on this (a reshape by -1 of an empty mask): compare with its
    # need_weights=True output, the same numbers
    out_t, w_t = ref(q, k, k, key_padding_mask=kpm)
    tq, tk = from_torch(q, device), from_torch(k, device)
    out, w = mha(tq, tk, tk, key_padding_mask=from_torch(kpm, device), need_weights=need_weights)
    assert_close(out, out_t, "output")
    if need_weights:
        assert_close(w, w_t, "weights")
    else:
        assert w is None
    g = torch.randn(out_t.shape, dtype=torch.float64, generator=gen)
    (out_t * g).sum().backward()
    (out * from_torch(g, device, grad=False)).sum().backward()
    for (name, pt), (_, po) in zip(ref.named_parameters(), mha.named_parameters()):
        assert_close(po.grad, pt.grad, f"grad of {name}")
    assert_close(tq.grad, q.grad, "grad of query")
    assert tk.grad.shape == tuple(k.shape)


def test_mha_zero_keys_unbatched_and_empty_batch_match_torch(device):
    torch = require_torch()
    ref, mha = mha_pair(torch, batch_first=True, device=device)
    gen = torch.Generator().manual_seed(3)
    for q_shape, k_shape in [((3, 4), (0, 4)), ((0, 3, 4), (0, 5, 4)), ((2, 0, 4), (2, 5, 4))]:
        q = torch.randn(*q_shape, dtype=torch.float64, generator=gen)
        k = torch.randn(*k_shape, dtype=torch.float64, generator=gen)
        out_t, w_t = ref(q, k, k)
        out, w = mha(from_torch(q, device), from_torch(k, device), from_torch(k, device))
        assert_close(out, out_t, f"output for query {q_shape}, key {k_shape}")
        assert_close(w, w_t, f"weights for query {q_shape}, key {k_shape}")


def test_mha_fully_masked_rows_keep_their_documented_zeros(device):
    torch = require_torch()
    ref, mha = mha_pair(torch, batch_first=True, device=device)
    x = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    kpm = torch.tensor([[False, True, False], [True, True, True]])
    out_t, _ = ref(x, x, x, key_padding_mask=kpm, need_weights=False)  # torch's fused path: zeros
    tx = from_torch(x, device)
    out, w = mha(tx, tx, tx, key_padding_mask=from_torch(kpm, device))
    assert_close(out, out_t, "output")
    assert np.all(w.numpy()[1] == 0)


# ---- the KV cache ----------------------------------------------------------------------------


def test_kv_cache_masks_must_cover_the_cached_keys(device):
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=tt.float64).to(device)
    cache = nn.KVCache()
    x = rand(2, 3, 4, device=device, grad=False)
    mha(x, x, x, kv_cache=cache)
    y = rand(2, 1, 4, device=device, grad=False)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(1, 1\), but should be \(1, 4\) or "
                                         r"\(4, 1, 4\) \(S counts the 3 keys in kv_cache too"):
        mha(y, y, y, attn_mask=tt.zeros(1, 1, dtype=tt.bool, device=device), kv_cache=cache)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 1\), but should be \(2, 4\) "
                                         r"\(S counts the 3 keys"):
        mha(y, y, y, key_padding_mask=tt.zeros(2, 1, dtype=tt.bool, device=device), kv_cache=cache)
    assert len(cache) == 3  # a rejected call leaves the cache as it was
    out, w = mha(y, y, y, key_padding_mask=tt.tensor([[True, False, False, False]] * 2, device=device),
                 kv_cache=cache)
    assert w.shape == (2, 1, 4) and np.all(w.numpy()[:, :, 0] == 0) and len(cache) == 4


def test_kv_cache_rejects_what_does_not_continue_it(device):
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=tt.float64).to(device)
    cache = nn.KVCache()
    x = rand(2, 3, 4, device=device, grad=False)
    mha(x, x, x, kv_cache=cache)
    with pytest.raises(ValueError, match=r"do not continue the cached .*batch, heads, head_dim, dtype"):
        mha.float()(x.float(), x.float(), x.float(), kv_cache=cache)  # another dtype
    with pytest.raises(ValueError, match="keys and values must be .* one B, h and T_new"):
        cache.update(tt.zeros(2, 2, 1, 2, device=device), tt.zeros(2, 2, 2, 2, device=device))
    with pytest.raises(TypeError, match="kv_cache must be a KVCache or None, got list"):
        mha(x.float(), x.float(), x.float(), kv_cache=[cache])
    assert len(cache) == 3


# ---- one mask representation, made once ------------------------------------------------------


def test_as_bias_converts_each_convention_once():
    allowed = tt.tensor([[True, False], [False, False]])
    np.testing.assert_array_equal(FA.as_bias(allowed, tt.float64, allowed_when=True).numpy(),
                                  [[0, -np.inf], [-np.inf, -np.inf]])
    np.testing.assert_array_equal(FA.as_bias(allowed, tt.float64, allowed_when=False).numpy(),
                                  [[-np.inf, 0], [0, 0]])
    bias = tt.zeros(2, 2, dtype=tt.float64)
    assert FA.as_bias(bias, tt.float64, allowed_when=False) is bias  # a bias passes through unchanged
    assert FA.as_bias(None, tt.float64, allowed_when=True) is None
    with pytest.raises(TypeError, match="float attn_mask is .*float32 but the query is .*float64"):
        FA.as_bias(bias.float(), tt.float64, allowed_when=True)
    np.testing.assert_array_equal(FA.causal_bias(2, 3, offset=1).numpy(), [[0, 0, -np.inf], [0, 0, 0]])
    np.testing.assert_array_equal(FA.causal_bias(2, 3, offset=1).numpy() == 0,
                                  FA.causal_mask(2, 3, offset=1).numpy())


def test_transformer_stacks_turn_masks_into_a_bias_once(monkeypatch, device):
    calls = []
    real = FA.mask_to_bias

    def counting(mask, dtype, allowed_when=True):
        calls.append(tuple(mask.shape))
        return real(mask, dtype, allowed_when)

    monkeypatch.setattr(FA, "mask_to_bias", counting)
    tt.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 6, 0.0, batch_first=True, dtype=tt.float64),
                                3).to(device)
    x = rand(2, 3, 4, device=device, grad=False)
    blocked = tt.tensor(np.triu(np.ones((3, 3), bool), 1), device=device)
    kpm = tt.tensor([[False, False, True], [False, False, False]], device=device)
    out = enc(x, mask=blocked, src_key_padding_mask=kpm)
    assert calls == [(3, 3), (2, 3)]  # once each, not once per layer (before: 6 conversions)
    bias = tt.zeros(3, 3, dtype=tt.float64, device=device).masked_fill(blocked, float("-inf"))
    pad = tt.zeros(2, 3, dtype=tt.float64, device=device).masked_fill(kpm, float("-inf"))
    np.testing.assert_allclose(enc(x, mask=bias, src_key_padding_mask=pad).numpy(), out.numpy(), atol=1e-14)


def test_gpt_makes_its_causal_bias_once_per_forward(monkeypatch):
    calls = []
    real = transformer_module.causal_bias

    def counting(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(transformer_module, "causal_bias", counting)
    model = nn.GPT(5, 8, d_model=4, nhead=2, num_layers=3)
    caches = model.new_kv_caches()
    model(tt.zeros(1, 3, dtype=tt.int64), caches)
    model(tt.zeros(1, 1, dtype=tt.int64), caches)
    assert calls == [(3, 3), (1, 4)]  # (T, past + T), one per forward for all three blocks


# ---- the Transformer layers ------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_rejects_a_memory_batch_other_than_tgts(device, batch_first):
    torch = require_torch()
    torch.manual_seed(0)
    ref = torch.nn.TransformerDecoderLayer(4, 2, 6, 0.0, batch_first=batch_first, dtype=torch.float64)
    layer = nn.TransformerDecoderLayer(4, 2, 6, 0.0, batch_first=batch_first, dtype=tt.float64).to(device)
    B, T, S = 2, 3, 5
    tgt = (B, T, 4) if batch_first else (T, B, 4)
    memory = (S, B, 4) if batch_first else (B, S, 4)  # the other layout
    assert torch_raises(lambda: ref(torch.zeros(*tgt, dtype=torch.float64),
                                    torch.zeros(*memory, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: tgt .* has batch size 2 but memory .* "
                                         r"has 5.*give tgt and memory one batch size"):
        layer(rand(*tgt, device=device), rand(*memory, device=device))
    flipped_tgt = (T, B, 4) if batch_first else (B, T, 4)
    with pytest.raises(ValueError, match=rf"did you mean batch_first={not batch_first}\?"):
        layer(rand(*flipped_tgt, device=device), rand(*memory, device=device))
    stack = nn.TransformerDecoder(layer, 2)
    with pytest.raises(ValueError, match="TransformerDecoderLayer: tgt"):
        stack(rand(*tgt, device=device), rand(*memory, device=device))


def test_encoder_layer_and_transformer_name_the_layout(device):
    layer = nn.TransformerEncoderLayer(4, 2, 6, 0.0, dtype=tt.float64).to(device)  # (S, B, E)
    x = rand(2, 5, 4, device=device)  # meant as (B=2, S=5)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 5\), but should be \(5, 2\).*"
                                         r"did you mean batch_first=True\?"):
        layer(x, src_key_padding_mask=tt.zeros(2, 5, dtype=tt.bool, device=device))
    model = nn.Transformer(4, 2, 1, 1, 6, 0.0, dtype=tt.float64).to(device)
    with pytest.raises(RuntimeError, match=r"batch number of src and tgt must be equal.*did you mean "
                                           r"batch_first=True\?"):
        model(rand(2, 5, 4, device=device), rand(2, 3, 4, device=device))
    with pytest.raises(TypeError, match="float src_key_padding_mask is .*float32 but the query is .*float64"):
        layer(x, src_key_padding_mask=tt.zeros(5, 2, device=device))


# ---- GPT -----------------------------------------------------------------------------------


def test_gpt_prompt_must_be_batch_by_time():
    # before: IndexError "tuple index out of range" (1-D) and a softmax ValueError (empty prompt)
    model = nn.GPT(5, 8, d_model=4, nhead=2, num_layers=1)
    with pytest.raises(ValueError, match=r"GPT.generate: idx must be .*shape \(B, T\) with T >= 1, got shape "
                                         r"\(2,\); for one sequence pass idx.unsqueeze\(0\)"):
        model.generate(tt.tensor([1, 2]), 2)
    with pytest.raises(ValueError, match=r"shape \(B, T\) with T >= 1, got shape \(1, 0\)"):
        model.generate(tt.zeros(1, 0, dtype=tt.int64), 2)
    with pytest.raises(ValueError, match=r"GPT: idx must be token ids of shape \(B, T\), got shape \(2,\)"):
        model(tt.tensor([1, 2]))
    assert model(tt.zeros(2, 0, dtype=tt.int64)).shape == (2, 0, 5)  # no tokens in, no logits out
    with pytest.raises(ValueError, match="DecoderOnlyBlock: x must be \\(B, T, C\\)"):
        model.blocks[0](tt.zeros(3, 4))


def test_gpt_temperature_zero_is_greedy():
    # before: logits / 0 (a divide-by-zero warning, inf/NaN logits, tokens from the noise)
    tt.manual_seed(0)
    model = nn.GPT(7, 8, d_model=8, nhead=2, num_layers=1)
    prompt = tt.tensor([[1, 2, 3], [4, 5, 6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for use_cache in (True, False):
            tt.manual_seed(1)
            zero = model.generate(prompt, 5, temperature=0, use_cache=use_cache)
            np.testing.assert_array_equal(zero.numpy(), model.generate(prompt, 5, greedy=True).numpy())
    logits = tt.tensor([[0.0, 3.0, 2.9]] * 50)
    assert nn.GPT._pick(logits, 0.0, None, False).numpy().ravel().tolist() == [1] * 50


def test_gpt_generate_and_caches_reject_bad_arguments():
    model = nn.GPT(5, 8, d_model=4, nhead=2, num_layers=2)
    prompt = tt.tensor([[1, 2]])
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be finite and >= 0"):
            model.generate(prompt, 1, temperature=bad)
    with pytest.raises(ValueError, match="top_k must be None or >= 1, got 0"):
        model.generate(prompt, 1, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0"):
        model.generate(prompt, -1)
    with pytest.raises(ValueError, match=r"one KVCache per block \(2\), got 1"):
        model(prompt, model.new_kv_caches()[:1])
    caches = model.new_kv_caches()
    model.blocks[0](model.tok_emb(prompt), caches[0])
    with pytest.raises(ValueError, match=r"different numbers of tokens \[2, 0\]"):
        model(prompt, caches)


# ---- drawn operands against torch: which side raises, and the numbers ------------------------


def _drawn_mask_shape(draw, scores_shape):
    """A mask shape for scores (..., L, S): a suffix with some sizes 1, now and then an extra leading dim
    or a wrong size (then it must be rejected, as torch does)."""
    n = draw(st.integers(1, len(scores_shape)))
    shape = [draw(st.sampled_from([d, 1])) for d in scores_shape[-n:]]
    kind = draw(st.sampled_from(["fits", "fits", "fits", "leading", "wrong"]))
    if kind == "leading":
        shape = [draw(st.integers(1, 2))] + shape
    elif kind == "wrong":
        shape[-1] = scores_shape[-1] + 1
    return tuple(shape)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), L=st.integers(0, 3), S=st.integers(0, 3), E=st.integers(1, 3), Ev=st.integers(1, 3),
       mask=st.sampled_from(["none", "bool", "float", "causal"]))
def test_drawn_sdpa_operands_match_torch(data, L, S, E, Ev, mask):
    torch = require_torch()
    draw = data.draw
    batch = st.lists(st.sampled_from([1, 2, 3]), max_size=2)
    bq, bk, bv = draw(batch), draw(batch), draw(batch)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 1000)))
    q, k, v = (torch.randn(*b, n, e, dtype=torch.float64, generator=gen, requires_grad=True)
               for b, n, e in ((bq, L, E), (bk, S, E), (bv, S, Ev)))
    kw = {}
    try:
        scores = tuple(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])) + (L, S)
    except RuntimeError:
        scores = (L, S)
    if mask == "causal":
        kw["is_causal"] = True
    elif mask != "none":
        shape = _drawn_mask_shape(draw, scores)
        kw["attn_mask"] = (torch.rand(*shape, generator=gen) > 0.5 if mask == "bool" else
                           torch.randn(*shape, dtype=torch.float64, generator=gen))
    torch_kw = dict(kw)  # torch: the same mask as a float bias of >= 2 dims (its fused 4-D path raises
    if mask in ("bool", "float"):  # IndexError on a legal 1-D mask)
        m = kw["attn_mask"]
        m = m.reshape((1,) * (2 - m.ndim) + tuple(m.shape))
        torch_kw["attn_mask"] = (m if mask == "float" else
                                 torch.zeros(m.shape, dtype=torch.float64).masked_fill(~m, float("-inf")))
    try:
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, **torch_kw)
    except RuntimeError:
        ref = None
    tq, tk, tv = (from_torch(t) for t in (q, k, v))
    tkw = {a: (from_torch(b, grad=False) if isinstance(b, torch.Tensor) else b) for a, b in kw.items()}
    if L == 0 or S == 0:  # torch returns zeros (q.shape[:-1] + (Ev,)) here without checking any shape;
        try:  # tinytensor checks as for non-empty operands and gives the broadcast shape, as torch does then
            batch = torch.broadcast_shapes(tuple(bq), tuple(bk), tuple(bv))
            fits = "attn_mask" not in kw or torch.broadcast_shapes(kw["attn_mask"].shape, scores) == scores
        except RuntimeError:
            fits = False
        if not fits:
            with pytest.raises(ValueError, match="scaled_dot_product_attention: "):
                F.scaled_dot_product_attention(tq, tk, tv, **tkw)
            return
        ref = torch.zeros(*batch, L, Ev, dtype=torch.float64)
        out = F.scaled_dot_product_attention(tq, tk, tv, **tkw)
        assert_close(out, ref, "output over no queries or no keys")
        out.sum().backward()
        assert np.all(tq.grad.numpy() == 0) and tk.grad.shape == tuple(k.shape)
        return
    if ref is None:
        with pytest.raises(ValueError, match="scaled_dot_product_attention: "):
            F.scaled_dot_product_attention(tq, tk, tv, **tkw)
        return
    out = F.scaled_dot_product_attention(tq, tk, tv, **tkw)
    nan_rows = torch.isnan(ref)  # torch's math path: NaN where a query may attend to no key; ours: 0
    assert_close(out, torch.where(nan_rows, 0.0, ref), "output")
    if not nan_rows.any():
        g = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
        (ref * g).sum().backward()
        (out * from_torch(g, grad=False)).sum().backward()
        for name, a, b in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
            assert_close(b.grad, a.grad, f"grad of {name}")


@settings(max_examples=60, deadline=None)
@given(data=st.data(), batch_first=st.booleans(), batched=st.booleans(), B=st.integers(1, 3),
       L=st.integers(1, 3), S=st.integers(0, 3), bool_masks=st.booleans())
def test_drawn_mha_operands_match_torch(data, batch_first, batched, B, L, S, bool_masks):
    torch = require_torch()
    draw = data.draw
    h = 2
    ref, mha = mha_pair(torch, batch_first=batch_first)
    Bk = draw(st.sampled_from([B, B, 1, 2, 3])) if batched else B
    gen = torch.Generator().manual_seed(draw(st.integers(0, 1000)))

    def x(b, n):
        shape = ((b, n) if batch_first else (n, b)) if batched else (n,)
        return torch.randn(*shape, 4, dtype=torch.float64, generator=gen, requires_grad=True)

    q, k = x(B, L), x(Bk, S)

    def mask(shape, columns_kept):
        if bool_masks:
            m = torch.rand(*shape, generator=gen) > 0.5
            if S:
                m[..., 0] = False  # key 0 stays visible: no fully masked rows (torch gives NaN there)
            return m
        return torch.randn(*shape, dtype=torch.float64, generator=gen)

    ok_kpm = [(B, S)] if batched else [(S,)]
    ok_attn = [(L, S), ((B if batched else 1) * h, L, S)]
    kpm_shape = draw(st.sampled_from([None] + ok_kpm + ([(S, B), (B, S + 1), (S,)] if batched else
                                                       [(S + 1,), (1, S)])))
    attn_shape = draw(st.sampled_from([None] + ok_attn + [(S, L), (L, S + 1), (1, L, S), (h + 1, L, S)]))
    kw = {}
    if kpm_shape is not None:
        kw["key_padding_mask"] = mask(kpm_shape, True)
    if attn_shape is not None:
        kw["attn_mask"] = mask(attn_shape, True)
    valid = (Bk == B and (kpm_shape is None or kpm_shape in ok_kpm)
             and (attn_shape is None or attn_shape in ok_attn))
    try:
        ref_out = ref(q, k, k, **kw)
    except (RuntimeError, AssertionError):
        ref_out = None
    tq, tk = from_torch(q), from_torch(k)
    tkw = {a: from_torch(b, grad=False) for a, b in kw.items()}
    if not valid:
        with pytest.raises(ValueError, match="MultiheadAttention: "):
            mha(tq, tk, tk, **tkw)
        assert ref_out is None or S == 0  # torch, too, rejects it (with no keys its reshapes cannot tell)
        return
    assert ref_out is not None, "torch rejects operands tinytensor checks as valid"
    out, w = mha(tq, tk, tk, **tkw)
    assert_close(out, ref_out[0], "output")
    assert_close(w, ref_out[1], "weights")
    g = torch.randn(ref_out[0].shape, dtype=torch.float64, generator=gen)
    (ref_out[0] * g).sum().backward()
    (out * from_torch(g, grad=False)).sum().backward()
    assert_close(tq.grad, q.grad, "grad of query")
    assert_close(tk.grad, k.grad, "grad of key")


# ---- positions ------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [True, False])
def test_positional_encodings_read_one_unbatched_sequence_as_T_by_C(device, batch_first):
    # before: (3, 4) with batch_first=False came out (3, 3, 4) (every position added to every token)
    tt.manual_seed(0)
    x = rand(3, 4, device=device)
    for enc in (nn.SinusoidalPositionalEncoding(4, 10, batch_first=batch_first),
                nn.LearnedPositionalEmbedding(10, 4, batch_first=batch_first).double()):
        enc = enc.to(device)
        batched = enc(x.unsqueeze(0) if batch_first else x.unsqueeze(1), offset=2)
        out = enc(x, offset=2)
        assert out.shape == (3, 4)
        np.testing.assert_allclose(out.numpy(), (batched[0] if batch_first else batched[:, 0]).numpy())
        with pytest.raises(ValueError, match=r"expected \(.*\) or one sequence \(T, 4\), got input \(4,\)"):
            enc(rand(4, device=device))
        with pytest.raises(ValueError, match="got input \\(2, 3, 5\\)"):
            enc(rand(2, 3, 5, device=device))
