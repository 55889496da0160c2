"""tinytensor_nn's GPT and VisionTransformer written with torch.nn primitives, for the benchmarks.

Parameter for parameter the same model: every parameter has tinytensor's name and shape, so both
libraries start from the same weights (``_models.load_weights`` sets each one from its name), and the
same computation: pre-norm blocks, interleaved rotary embeddings in the GPT, exact GELU, dropout 0.
Attention is ``F.scaled_dot_product_attention``, as a PyTorch user writes it (nanoGPT does).
Imported by the torch workers only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RotaryEmbedding(nn.Module):
    """tinytensor_nn.RotaryEmbedding: the pair (x_2i, x_2i+1) at position m turns by m·θ_i,
    θ_i = base^(-2i/dim). No parameters; cos/sin tables of shape (max_len, dim/2)."""

    def __init__(self, dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        theta = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
        angle = torch.arange(max_len, dtype=torch.float64)[:, None] * theta  # (max_len, dim/2)
        self.register_buffer("cos", angle.cos().float(), persistent=False)
        self.register_buffer("sin", angle.sin().float(), persistent=False)

    def forward(self, x):
        T = x.shape[-2]
        cos, sin = self.cos[:T], self.sin[:T]  # (T, hs/2)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2) each
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (..., T, hs)


class CausalSelfAttention(nn.Module):
    """tinytensor_nn.MultiheadAttention(batch_first=True, rotary=...) used for causal self-attention."""

    def __init__(self, d_model: int, nhead: int, rotary: RotaryEmbedding):
        super().__init__()
        self.nhead, self.rotary = nhead, rotary
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))  # W^Q, W^K, W^V stacked
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        B, T, C = x.shape
        nh, hs = self.nhead, C // self.nhead
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(C, dim=-1)  # (B, T, C) each
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class DecoderOnlyBlock(nn.Module):
    """x = x + MultiHead(LN(x)); x = x + FFN(LN(x)), FFN = linear2(gelu(linear1(x)))."""

    def __init__(self, d_model: int, nhead: int, rotary: RotaryEmbedding):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, nhead, rotary)
        self.ln_2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, 4 * d_model)
        self.linear2 = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))  # x + MultiHead(LN(x))
        return x + self.linear2(F.gelu(self.linear1(self.ln_2(x))))  # x + FFN(LN(x))


class GPT(nn.Module):
    """tinytensor_nn.GPT(positional="rope"): forward(idx (B, T)) -> logits (B, T, vocab_size)."""

    def __init__(self, vocab_size: int, block_size: int, d_model: int, nhead: int, num_layers: int):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        rotary = RotaryEmbedding(d_model // nhead, block_size)  # one table, shared by the blocks
        self.blocks = nn.ModuleList([DecoderOnlyBlock(d_model, nhead, rotary) for _ in range(num_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, idx):
        x = self.tok_emb(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)


class PatchEmbedding(nn.Module):
    """(B, C, H, W) -> (B, N, D): P×P patches by a reshape, channel-major, one Linear."""

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(in_channels * patch_size * patch_size, embed_dim)

    def forward(self, x):
        B, C, H, W = x.shape
        P = self.patch_size
        x = x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, P, P)
        return self.proj(x.reshape(B, (H // P) * (W // P), C * P * P))  # (B, N, D)


class LearnedPositionalEmbedding(nn.Module):
    """x + weight[:T], weight (max_len, d_model)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_len, d_model))

    def forward(self, x):
        return x + self.weight[: x.shape[1]]


class VisionTransformer(nn.Module):
    """tinytensor_nn.VisionTransformer (learned positions, class-token pooling, pre-norm GELU encoder,
    LayerNorm eps 1e-6): forward(images (B, C, H, W)) -> logits (B, num_classes)."""

    def __init__(self, image_size: int, patch_size: int, in_channels: int, num_classes: int, embed_dim: int,
                 depth: int, num_heads: int):
        super().__init__()
        self.patch_embed = PatchEmbedding(patch_size, in_channels, embed_dim)
        N = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = LearnedPositionalEmbedding(1 + N, embed_dim)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, 4 * embed_dim, dropout=0.0,
                                           activation="gelu", layer_norm_eps=1e-6, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(embed_dim, eps=1e-6),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, images):
        x = self.patch_embed(images)  # (B, N, D)
        B, N, D = x.shape
        x = torch.cat([self.cls_token.expand(B, 1, D), x], dim=1)  # (B, 1 + N, D)
        x = self.encoder(self.pos_embed(x))  # (B, 1 + N, D), final LayerNorm included
        return self.head(x[:, 0])  # (B, num_classes)
