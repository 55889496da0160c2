"""The Vision Transformer ("An Image is Worth 16x16 Words", Dosovitskiy et al. 2020): step 4.

An image becomes a sequence of tokens, and from there it is the Transformer encoder unchanged:

    image (B, C, H, W) -> P×P patches (B, N, C·P·P) -> Linear -> tokens (B, N, D)     N = (H/P)·(W/P)
    prepend a learned class token, add positions      -> (B, 1 + N, D)
    Transformer encoder (pre-norm), final LayerNorm    -> (B, 1 + N, D)
    class token (or mean of patch tokens) -> Linear    -> logits (B, num_classes)

Positions: "learned" (a table per token), "sinusoidal" (the fixed 2-D table: half the features encode
the patch row, half its column; the class token gets none), "rope" (2-D rotary embedding inside every
attention), or "none".
"""
from __future__ import annotations

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .layers import Dropout, LayerNorm, Linear
from .module import Module, Parameter
from .positional import LearnedPositionalEmbedding, RotaryEmbedding2D, sinusoidal_table_2d
from .transformer import TransformerEncoder, TransformerEncoderLayer

__all__ = ["PatchEmbedding", "VisionTransformer"]


def _pair(x) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


class PatchEmbedding(Module):
    """(B, C, H, W) images -> (B, N, embed_dim) tokens: cut into P×P patches by a reshape, flatten each
    patch (channel-major, as a Conv2d kernel is laid out), project it by one Linear.

    The same as Conv2d(C, D, kernel_size=P, stride=P) followed by flattening the grid; ``proj.weight`` is
    that convolution's weight reshaped to (D, C·P·P).
    """

    def __init__(self, image_size: int | tuple[int, int], patch_size: int | tuple[int, int], in_channels: int,
                 embed_dim: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        (H, W), (ph, pw) = _pair(image_size), _pair(patch_size)
        if H % ph or W % pw:
            raise ValueError(
                f"PatchEmbedding: image size {H}x{W} is not divisible by patch size {ph}x{pw}; pick a patch "
                f"size that divides it, or resize/pad the images"
            )
        self.image_size, self.patch_size, self.in_channels = (H, W), (ph, pw), in_channels
        self.grid_size = (H // ph, W // pw)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = Linear(in_channels * ph * pw, embed_dim, bias=bias, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels,) + self.image_size:
            raise ValueError(
                f"PatchEmbedding: expected images (B, {self.in_channels}, {self.image_size[0]}, "
                f"{self.image_size[1]}), got shape {x.shape}"
            )
        B, C, H, W = x.shape
        (ph, pw), (gh, gw) = self.patch_size, self.grid_size
        x = x.reshape(B, C, gh, ph, gw, pw)  # (B, C, gh, ph, gw, pw)
        x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, ph, pw)
        x = x.reshape(B, gh * gw, C * ph * pw)  # (B, N, C·ph·pw): one row per patch, row-major grid
        return self.proj(x)  # (B, N, D)

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, patch_size={self.patch_size}, in_channels={self.in_channels}"


class VisionTransformer(Module):
    """ViT classifier: PatchEmbedding, class token, positions, a pre-norm Transformer encoder, a linear head.

    Args: image_size, patch_size (must divide it), in_channels, num_classes, embed_dim, depth (encoder
    layers), num_heads, mlp_ratio (dim_feedforward = mlp_ratio·embed_dim), dropout, pos_embedding
    ("learned" | "sinusoidal" | "rope" | "none"), pool ("cls" | "mean"), activation, layer_norm_eps.
    forward(images (B, C, H, W)) -> logits (B, num_classes).
    """

    def __init__(self, image_size: int | tuple[int, int] = 32, patch_size: int | tuple[int, int] = 4,
                 in_channels: int = 3, num_classes: int = 10, embed_dim: int = 64, depth: int = 4,
                 num_heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 pos_embedding: str = "learned", pool: str = "cls", activation: str = "gelu",
                 layer_norm_eps: float = 1e-6, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        if pos_embedding not in ("learned", "sinusoidal", "rope", "none"):
            raise ValueError(
                f"VisionTransformer: pos_embedding must be 'learned', 'sinusoidal', 'rope' or 'none', got "
                f"{pos_embedding!r}"
            )
        if pool not in ("cls", "mean"):
            raise ValueError(f"VisionTransformer: pool must be 'cls' or 'mean', got {pool!r}")
        if embed_dim % num_heads:
            raise ValueError(
                f"VisionTransformer: embed_dim={embed_dim} is not divisible by num_heads={num_heads}"
            )
        if pos_embedding == "rope" and (embed_dim // num_heads) % 4:
            raise ValueError(
                f"VisionTransformer: 2-D RoPE needs a head dim divisible by 4 (row and column pairs), got "
                f"embed_dim // num_heads = {embed_dim} // {num_heads} = {embed_dim // num_heads}"
            )
        self.pos_embedding, self.pool, self.embed_dim = pos_embedding, pool, embed_dim
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, embed_dim, **kw)
        N = self.patch_embed.num_patches
        self.cls_token = Parameter(tt.zeros(1, 1, embed_dim, dtype=dtype or tt.float32, device=device))
        init.trunc_normal_(self.cls_token, std=0.02)
        rotary = None
        if pos_embedding == "learned":
            self.pos_embed = LearnedPositionalEmbedding(1 + N, embed_dim, **kw)
        elif pos_embedding == "sinusoidal":  # the class token (row 0) gets no position
            gh, gw = self.patch_embed.grid_size
            table = sinusoidal_table_2d(gh, gw, embed_dim, dtype=tt.float64, device=device)  # (N, D)
            table = tt.cat([tt.zeros(1, embed_dim, dtype=tt.float64, device=device), table])  # (1 + N, D)
            self.register_buffer("pos_table", table, persistent=False)
        elif pos_embedding == "rope":
            rotary = RotaryEmbedding2D(embed_dim // num_heads, self.patch_embed.grid_size,
                                       num_prefix_tokens=1, device=device)
        self.dropout = Dropout(dropout)
        layer = TransformerEncoderLayer(embed_dim, num_heads, int(mlp_ratio * embed_dim), dropout,
                                        activation, layer_norm_eps, batch_first=True, norm_first=True,
                                        rotary=rotary, **kw)
        self.encoder = TransformerEncoder(layer, depth, norm=LayerNorm(embed_dim, eps=layer_norm_eps, **kw))
        for block in self.encoder.layers:  # independent starting weights in every layer
            block.apply(_reset)
        self.head = Linear(embed_dim, num_classes, **kw)

    def forward(self, images: Tensor) -> Tensor:
        x = self.patch_embed(images)  # (B, N, D)
        B, N, D = x.shape
        cls = self.cls_token.expand(B, 1, D)  # (B, 1, D)
        x = tt.cat([cls, x], dim=1)  # (B, 1 + N, D)
        if self.pos_embedding == "learned":
            x = self.pos_embed(x)  # (B, 1 + N, D)
        elif self.pos_embedding == "sinusoidal":
            x = x + self.pos_table.to(dtype=x.dtype)  # (B, 1 + N, D)
        x = self.dropout(x)
        x = self.encoder(x)  # (B, 1 + N, D), final LayerNorm included
        x = x[:, 0] if self.pool == "cls" else x[:, 1:].mean(dim=1)  # (B, D)
        return self.head(x)  # (B, num_classes)


def _reset(module: Module) -> None:
    reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
    if reset is not None:
        reset()
