"""The Vision Transformer: patches by reshape, positions, shapes, float64 gradient checks on every device,
bad inputs, and a tiny training run."""
import numpy as np
import pytest
from _nn_testing import module_gradcheck

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor_nn import functional as F

TINY = dict(image_size=4, patch_size=2, in_channels=1, embed_dim=8, depth=1, num_heads=2)


def rand(*shape, device="cpu", grad=True, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return tt.tensor(rng.standard_normal(shape), dtype=tt.float64, device=device, requires_grad=grad)


def test_patch_embedding_cuts_row_major_channel_major_patches():
    pe = nn.PatchEmbedding((4, 6), (2, 3), 2, 5, dtype=tt.float64)
    assert pe.grid_size == (2, 2) and pe.num_patches == 4
    x = rand(3, 2, 4, 6, grad=False)
    xn = x.numpy()
    patches = np.stack([xn[:, :, r * 2 : r * 2 + 2, c * 3 : c * 3 + 3].reshape(3, -1)
                        for r in range(2) for c in range(2)], axis=1)  # (B, N, C*ph*pw)
    want = patches @ pe.proj.weight.numpy().T + pe.proj.bias.numpy()
    np.testing.assert_allclose(pe(x).numpy(), want, atol=1e-13)


def test_patch_embedding_errors():
    with pytest.raises(ValueError, match="image size 10x10 is not divisible by patch size 4x4"):
        nn.PatchEmbedding(10, 4, 3, 8)
    with pytest.raises(ValueError, match="image size 8x9 is not divisible by patch size 4x4"):
        nn.VisionTransformer(image_size=(8, 9), patch_size=4)
    pe = nn.PatchEmbedding(8, 4, 3, 8)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 8, 8\), got shape \(2, 1, 8, 8\)"):
        pe(tt.randn(2, 1, 8, 8))


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rope", "none"])
@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_shapes_and_state(pos, pool):
    tt.manual_seed(0)
    model = nn.VisionTransformer(image_size=8, patch_size=4, in_channels=3, num_classes=5, embed_dim=8,
                                 depth=2, num_heads=2, pos_embedding=pos, pool=pool)
    out = model(tt.randn(2, 3, 8, 8))
    assert out.shape == (2, 5)
    keys = list(model.state_dict())
    assert keys[:3] == ["cls_token", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    assert ("pos_embed.weight" in keys) == (pos == "learned")
    assert "encoder.layers.1.self_attn.in_proj_weight" in keys and keys[-2:] == ["head.weight", "head.bias"]
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_vit_layers_start_from_different_weights():
    model = nn.VisionTransformer(image_size=8, patch_size=4, embed_dim=8, depth=2, num_heads=2)
    a, b = (model.encoder.layers[i].self_attn.in_proj_weight.numpy() for i in range(2))
    assert not np.array_equal(a, b)
    assert np.all(model.encoder.layers[0].self_attn.in_proj_bias.numpy() == 0)


def test_vit_sinusoidal_positions_are_the_2d_table():
    model = nn.VisionTransformer(image_size=(4, 6), patch_size=2, embed_dim=8, depth=1, num_heads=2,
                                 pos_embedding="sinusoidal")
    table = model.pos_table.numpy()
    np.testing.assert_array_equal(table[0], 0)  # the class token has no position
    np.testing.assert_allclose(table[1:], nn.sinusoidal_table_2d(2, 3, 8, dtype=tt.float64).numpy())


def test_vit_rope_is_translation_aware():
    """With 2-D RoPE and no absolute table, attention scores depend on patch offsets only, so a ViT still
    tells apart two images that hold the same patches in other places."""
    tt.manual_seed(1)
    model = nn.VisionTransformer(num_classes=3, pos_embedding="rope", **TINY).double()
    x = rand(1, 1, 4, 4, grad=False)
    swapped = tt.tensor(np.roll(x.numpy(), 2, axis=3))  # patch columns swapped
    assert not np.allclose(model(x).numpy(), model(swapped).numpy())
    nopos = nn.VisionTransformer(num_classes=3, pos_embedding="none", **TINY).double()
    np.testing.assert_allclose(nopos(x).numpy(), nopos(swapped).numpy(), atol=1e-12)  # permutation-invariant


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_vit_gradcheck(device, pos):
    tt.manual_seed(2)
    tiny = dict(TINY, embed_dim=4, num_heads=1)
    model = nn.VisionTransformer(num_classes=2, mlp_ratio=0.5, pos_embedding=pos, dtype=tt.float64, **tiny)
    model = model.to(device)
    x = rand(1, 1, 4, 4, device=device)
    assert module_gradcheck(model, [x])


def test_vit_errors():
    with pytest.raises(ValueError, match="pos_embedding must be"):
        nn.VisionTransformer(pos_embedding="absolute")
    with pytest.raises(ValueError, match="pool must be 'cls' or 'mean'"):
        nn.VisionTransformer(pool="max")
    with pytest.raises(ValueError, match="embed_dim=10 is not divisible by num_heads=4"):
        nn.VisionTransformer(embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="head dim divisible by 4 .* = 8 // 4 = 2"):
        nn.VisionTransformer(embed_dim=8, num_heads=4, pos_embedding="rope")
    model = nn.VisionTransformer(image_size=8, patch_size=4, embed_dim=8, depth=1, num_heads=2)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 8, 8\)"):
        model(tt.randn(1, 3, 16, 16))
    if "strict" in tt.backends.available():
        with pytest.raises(RuntimeError, match="on strict but the parameters are on cpu"):
            model(tt.randn(1, 3, 8, 8, device="strict"))


def test_vit_learns_two_classes():
    tt.manual_seed(0)
    model = nn.VisionTransformer(num_classes=2, **TINY)
    opt = nn.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 2, 16)
    x[y == 1, :, :2, :2] += 2.0  # class 1: a bright top-left patch
    x, y = tt.tensor(x), tt.tensor(y)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert (model(x).argmax(dim=-1).numpy() == y.numpy()).mean() == 1.0
