"""The Transformer modules without torch: float64 gradient checks of every module (parameters and inputs)
on every device, the decoder-only GPT's KV cache (same logits, same generated tokens), bad inputs."""
import numpy as np
import pytest
from _nn_testing import module_gradcheck

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor_nn import functional as F


def rand(*shape, device="cpu", grad=True, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return tt.tensor(rng.standard_normal(shape), dtype=tt.float64, device=device, requires_grad=grad)


def _randomize_vectors(module, device):
    """Non-trivial biases and LayerNorm weights, so that their gradients are not all alike."""
    with tt.no_grad():
        for i, p in enumerate(module.parameters()):
            if p.ndim == 1:
                p.copy_(rand(*p.shape, device=device, grad=False, seed=i))


# ---- gradient checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradcheck(device, norm_first):
    tt.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 6, 0.0, "gelu", norm_first=norm_first, batch_first=True,
                                       dtype=tt.float64).to(device)
    _randomize_vectors(layer, device)
    x = rand(2, 3, 4, device=device)
    kpm = tt.tensor([[False, False, True], [False, False, False]], device=device)
    mask = nn.Transformer.generate_square_subsequent_mask(3, device=device, dtype=tt.float64)

    def call(m, x):
        return m(x, src_mask=mask, src_key_padding_mask=kpm, is_causal=True)

    assert module_gradcheck(layer, [x], call)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_gradcheck(device, norm_first):
    tt.manual_seed(1)
    layer = nn.TransformerDecoderLayer(4, 2, 6, 0.0, "relu", norm_first=norm_first, dtype=tt.float64)
    layer = layer.to(device)
    _randomize_vectors(layer, device)
    tgt, mem = rand(3, 1, 4, device=device), rand(2, 1, 4, device=device)
    mask = nn.Transformer.generate_square_subsequent_mask(3, device=device, dtype=tt.float64)

    def call(m, tgt, mem):
        return m(tgt, mem, tgt_mask=mask)

    assert module_gradcheck(layer, [tgt, mem], call)


def test_transformer_gradcheck(device):
    tt.manual_seed(2)
    model = nn.Transformer(4, 2, 1, 1, 4, 0.0, batch_first=True, dtype=tt.float64).to(device)
    _randomize_vectors(model, device)
    src, tgt = rand(1, 3, 4, device=device), rand(1, 2, 4, device=device)
    mask = nn.Transformer.generate_square_subsequent_mask(2, device=device, dtype=tt.float64)

    def call(m, src, tgt):
        return m(src, tgt, tgt_mask=mask)

    assert module_gradcheck(model, [src, tgt], call)


def test_decoder_only_block_gradcheck(device):
    tt.manual_seed(3)
    rope = nn.RotaryEmbedding(2, max_len=8)
    block = nn.DecoderOnlyBlock(4, 2, 6, rotary=rope, dtype=tt.float64).double().to(device)
    _randomize_vectors(block, device)
    x = rand(2, 3, 4, device=device)
    assert module_gradcheck(block, [x])


# ---- structure ---------------------------------------------------------------------------------


def test_encoder_clones_are_independent_copies():
    layer = nn.TransformerEncoderLayer(4, 2, 6)
    enc = nn.TransformerEncoder(layer, 3)
    w = [enc.layers[i].linear1.weight for i in range(3)]
    assert w[0] is not w[1] and w[0].array is not w[1].array and w[0].backend is w[1].backend
    np.testing.assert_array_equal(w[0].numpy(), w[2].numpy())  # PyTorch: every clone starts equal
    with tt.no_grad():
        w[0].add_(1.0)
    assert not np.array_equal(w[0].numpy(), w[1].numpy())
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))
    # the Transformer re-initialises every matrix, so its layers differ
    model = nn.Transformer(4, 2, 2, 2, 6)
    a, b = model.encoder.layers[0].linear1.weight, model.encoder.layers[1].linear1.weight
    assert not np.array_equal(a.numpy(), b.numpy())


def test_unbatched_inputs():
    tt.manual_seed(4)
    model = nn.Transformer(4, 2, 1, 1, 6, 0.0, dtype=tt.float64)
    src, tgt = rand(3, 4, grad=False), rand(2, 4, grad=False)
    out = model(src, tgt)
    out_b = model(src.unsqueeze(1), tgt.unsqueeze(1))
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out.numpy(), out_b.numpy()[:, 0], atol=1e-14)


def test_custom_activation_and_bad_arguments():
    layer = nn.TransformerEncoderLayer(4, 2, 6, 0.0, activation=F.silu)
    assert layer(tt.randn(3, 2, 4)).shape == (3, 2, 4)
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu'"):
        nn.TransformerEncoderLayer(4, 2, activation="swish")
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        nn.TransformerEncoderLayer(6, 4)
    model = nn.Transformer(4, 2, 1, 1, 6)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(tt.randn(3, 2, 4), tt.randn(3, 1, 4))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal to d_model=4"):
        model(tt.randn(3, 2, 5), tt.randn(3, 2, 5))
    with pytest.raises(RuntimeError, match="is_causal=True is a hint that needs attn_mask"):
        model(tt.randn(3, 2, 4), tt.randn(3, 2, 4), tgt_is_causal=True)
    with pytest.raises(TypeError, match="only bool and floating types of src_mask"):
        model(tt.randn(3, 2, 4), tt.randn(3, 2, 4), src_mask=tt.zeros(3, 3, dtype=tt.int64))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(2, 2\), but should be \(3, 3\)"):
        model(tt.randn(3, 2, 4), tt.randn(3, 2, 4), tgt_mask=tt.zeros(2, 2))


def test_square_subsequent_mask():
    m = nn.Transformer.generate_square_subsequent_mask(3).numpy()
    np.testing.assert_array_equal(m, np.array([[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]]))
    assert m.dtype == np.float32


# ---- decoder-only GPT and the KV cache --------------------------------------------------------


@pytest.mark.parametrize("positional", ["rope", "learned"])
def test_gpt_cached_logits_equal_full_logits(device, positional):
    tt.manual_seed(5)
    model = nn.GPT(11, 10, d_model=8, nhead=2, num_layers=2, positional=positional).double().to(device)
    _randomize_vectors(model, device)
    idx = tt.tensor(np.random.default_rng(0).integers(0, 11, (2, 7)), device=device)
    full = model(idx)
    caches = model.new_kv_caches()
    steps = [model(idx[:, :4], caches)] + [model(idx[:, t : t + 1], caches) for t in range(4, 7)]
    np.testing.assert_allclose(tt.cat(steps, dim=1).numpy(), full.numpy(), atol=1e-12)
    assert [len(c) for c in caches] == [7, 7]


@pytest.mark.parametrize("positional", ["rope", "learned"])
def test_generate_with_and_without_cache_gives_the_same_tokens(positional):
    tt.manual_seed(6)
    model = nn.GPT(13, 6, d_model=8, nhead=2, num_layers=2, positional=positional).double()
    _randomize_vectors(model, "cpu")
    prompt = tt.tensor([[1, 2, 3], [4, 5, 6]])
    # greedy, running past block_size=6 so that the context slides (and the cache is refilled)
    a = model.generate(prompt, 9, greedy=True, use_cache=True)
    b = model.generate(prompt, 9, greedy=True, use_cache=False)
    assert a.shape == (2, 12) and a.tolist() == b.tolist()
    assert a.tolist()[0][:3] == [1, 2, 3]
    # sampling with top_k: the same seed draws the same tokens
    tt.manual_seed(11)
    a = model.generate(prompt, 5, temperature=0.8, top_k=4, use_cache=True)
    tt.manual_seed(11)
    b = model.generate(prompt, 5, temperature=0.8, top_k=4, use_cache=False)
    assert a.tolist() == b.tolist()


def test_top_k_restricts_the_choice():
    logits = tt.tensor([[0.0, 5.0, 4.0, -1.0, 3.0]] * 200)
    tt.manual_seed(0)
    picks = nn.GPT._pick(logits, 1.0, 2, False).numpy().ravel()
    assert set(picks.tolist()) == {1, 2}
    assert nn.GPT._pick(logits, 1.0, None, True).numpy().ravel().tolist() == [1] * 200


def test_gpt_errors():
    model = nn.GPT(5, 4, d_model=4, nhead=2, num_layers=1)
    with pytest.raises(ValueError, match="exceed block_size=4"):
        model(tt.zeros(1, 5, dtype=tt.int64))
    caches = model.new_kv_caches()
    model(tt.zeros(1, 3, dtype=tt.int64), caches)
    with pytest.raises(ValueError, match="3 cached \\+ 2 new tokens exceed block_size=4"):
        model(tt.zeros(1, 2, dtype=tt.int64), caches)
    with pytest.raises(ValueError, match="positional must be 'rope' or 'learned'"):
        nn.GPT(5, 4, positional="alibi")


def test_gpt_learns_a_repeating_sequence():
    tt.manual_seed(0)
    model = nn.GPT(4, 8, d_model=16, nhead=2, num_layers=1)
    opt = nn.optim.AdamW(model.parameters(), lr=1e-2)
    data = tt.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 0]])
    x, y = data[:, :-1], data[:, 1:]
    losses = []
    for _ in range(40):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, 4), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    out = model.generate(tt.tensor([[0, 1]]), 4, greedy=True)
    assert out.tolist() == [[0, 1, 2, 3, 0, 1]]
