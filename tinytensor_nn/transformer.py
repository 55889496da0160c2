"""The Transformer ("Attention Is All You Need", Vaswani et al. 2017) and a decoder-only GPT.

torch.nn.Transformer's classes with its constructor arguments, forward signatures and state_dict keys
(encoder.layers.0.self_attn.in_proj_weight, ..., encoder.norm.weight, decoder.layers.0.multihead_attn...):

    TransformerEncoderLayer   x = LN(x + SelfAttn(x));  x = LN(x + FFN(x))         (post-norm, the paper)
                              x = x + SelfAttn(LN(x));  x = x + FFN(LN(x))         (norm_first=True)
    TransformerDecoderLayer   the same with a cross-attention to the encoder's memory in between
    TransformerEncoder/Decoder   N copies of a layer, then an optional final LayerNorm
    Transformer               encoder + decoder

and the decoder-only model GPT-style language models use, with rotary positions and a KV cache:

    DecoderOnlyBlock          x = x + CausalSelfAttn(LN(x));  x = x + FFN(LN(x))
    GPT                       token embedding -> blocks -> LN -> logits; generate() with or without cache

MASK CONVENTION (PyTorch's modules): bool masks are **True where attention is BLOCKED**; float masks
are **added** (-inf blocks). Transformer.generate_square_subsequent_mask(sz) gives the causal float mask.
"""
from __future__ import annotations

import copy
from typing import Callable

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .attention import KVCache, MultiheadAttention
from .functional import basic as F
from .functional.attention import causal_mask
from .layers import Dropout, Embedding, LayerNorm, Linear
from .module import Module, ModuleList
from .positional import LearnedPositionalEmbedding, RotaryEmbedding

__all__ = [
    "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder", "TransformerDecoder",
    "Transformer", "DecoderOnlyBlock", "GPT",
]


def _get_activation_fn(activation: str | Callable) -> Callable:
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ValueError(f"activation should be 'relu', 'gelu' or a callable, not {activation!r}")


def _get_clones(module: Module, N: int) -> ModuleList:
    """N independent deep copies of module (as PyTorch: every layer starts from the same weights)."""
    return ModuleList([copy.deepcopy(module) for _ in range(N)])


def _check_mask_dtype(name: str, mask: Tensor | None) -> None:
    if mask is not None and mask.dtype is not tt.bool and not mask.dtype.is_floating_point:
        raise TypeError(f"only bool and floating types of {name} are supported, got {mask.dtype}")


# ---- encoder ----------------------------------------------------------------------------------

class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each wrapped in a residual connection and LayerNorm.

    FFN(x) = linear2(dropout(activation(linear1(x)))). Inputs (S, N, E), or (N, S, E) with
    batch_first=True, or unbatched (S, E). src_mask (S, S) / (N*nhead, S, S) and src_key_padding_mask
    (N, S): bool **True = blocked**, float = added. Extension: ``rotary`` (e.g. a RotaryEmbedding2D for
    ViT patches) is handed to the self-attention, which rotates every head's queries and keys.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None,
                 rotary: RotaryEmbedding | None = None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, rotary=rotary, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _get_activation_fn(activation)

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        _check_mask_dtype("src_key_padding_mask", src_key_padding_mask)
        _check_mask_dtype("src_mask", src_mask)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer applied in turn, then ``norm`` (if given)."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if self.norm is not None:
            x = self.norm(x)
        return x


# ---- decoder ----------------------------------------------------------------------------------

class TransformerDecoderLayer(Module):
    """Masked self-attention, cross-attention to the encoder output ``memory``, a feed-forward network;
    each in a residual connection with LayerNorm (after it, or before it with norm_first=True).

    tgt (T, N, E) / memory (S, N, E) (or batch_first). tgt_mask (T, T), memory_mask (T, S), key padding
    masks (N, T) / (N, S): bool **True = blocked**, float = added.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                            bias=bias, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                 bias=bias, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _get_activation_fn(activation)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                               memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal=False) -> Tensor:
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


class TransformerDecoder(Module):
    """num_layers copies of decoder_layer applied in turn, then ``norm`` (if given)."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None):
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        if self.norm is not None:
            x = self.norm(x)
        return x


# ---- encoder-decoder --------------------------------------------------------------------------

class Transformer(Module):
    """torch.nn.Transformer: an encoder over ``src`` and a decoder over ``tgt`` that attends to it.

    forward(src, tgt, src_mask, tgt_mask, memory_mask, src_key_padding_mask, tgt_key_padding_mask,
    memory_key_padding_mask, src_is_causal, tgt_is_causal, memory_is_causal) -> (T, N, E)
    (or (N, T, E) with batch_first). All matrices are Xavier-uniform initialised, as in PyTorch.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                    layer_norm_eps, batch_first, norm_first, bias, **kw)
            encoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                    layer_norm_eps, batch_first, norm_first, bias, **kw)
            decoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)
        self._reset_parameters()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None,
                tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        batch_dim = 0 if self.batch_first else 1
        if src.ndim == 3 and (tgt.ndim != 3 or src.shape[batch_dim] != tgt.shape[batch_dim]):
            raise RuntimeError(
                f"Transformer: the batch number of src and tgt must be equal, got src {src.shape} and tgt "
                f"{tgt.shape} (batch_first={self.batch_first})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(
                f"Transformer: the feature number of src and tgt must be equal to d_model={self.d_model}, "
                f"got src {src.shape} and tgt {tgt.shape}"
            )
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """(sz, sz) float mask: 0 on and below the diagonal, -inf above (position i sees 0..i)."""
        return tt.full((sz, sz), float("-inf"), dtype=dtype or tt.float32, device=device).triu(diagonal=1)

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)


# ---- decoder-only (GPT) -----------------------------------------------------------------------

class DecoderOnlyBlock(Module):
    """A GPT block (pre-norm): x = x + MultiHead(LN(x)) with a causal mask; x = x + FFN(LN(x)).

    forward(x, kv_cache=None): x (B, T, C). With a KVCache the block attends to the cached tokens
    plus the T new ones (the new query t sits at position len(kv_cache) + t), and appends the new
    keys and values to the cache. ``rotary`` (a RotaryEmbedding of dim C // nhead) rotates q and k.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int | None = None, dropout: float = 0.0,
                 activation: str | Callable = "gelu", layer_norm_eps: float = 1e-5, bias: bool = True,
                 rotary: RotaryEmbedding | None = None, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        dim_feedforward = 4 * d_model if dim_feedforward is None else dim_feedforward
        self.ln_1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True,
                                       rotary=rotary, **kw)
        self.ln_2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.activation = _get_activation_fn(activation)

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        B, T, C = x.shape
        past = 0 if kv_cache is None else len(kv_cache)
        blocked = causal_mask(T, past + T, offset=past, device=x.device).logical_not()  # (T, past + T)
        h = self.ln_1(x)
        a = self.attn(h, h, h, attn_mask=blocked, need_weights=False, is_causal=True, kv_cache=kv_cache)[0]
        x = x + self.dropout(a)  # x + MultiHead(LN(x))
        x = x + self.dropout(self.linear2(self.activation(self.linear1(self.ln_2(x)))))  # x + FFN(LN(x))
        return x


class GPT(Module):
    """A decoder-only language model: token embedding, positions (rotary or learned), DecoderOnlyBlocks,
    final LayerNorm, and a linear head to vocabulary logits.

        model = GPT(vocab_size=65, block_size=128, d_model=64, nhead=4, num_layers=2)
        logits = model(idx)                                   # idx (B, T) int64 -> (B, T, vocab_size)
        out = model.generate(idx, 100, use_cache=True)        # (B, T + 100)

    With ``kv_caches`` (one KVCache per block, from ``new_kv_caches()``) forward processes only the new
    tokens and reuses the keys/values of the earlier ones; ``generate`` gives the same tokens with
    ``use_cache=True`` or False (the cache only saves recomputation).
    """

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int | None = None, dropout: float = 0.0,
                 positional: str = "rope", bias: bool = True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        if positional not in ("rope", "learned"):
            raise ValueError(f"GPT: positional must be 'rope' or 'learned', got {positional!r}")
        self.block_size, self.positional = block_size, positional
        self.tok_emb = Embedding(vocab_size, d_model, **kw)
        rotary = None
        if positional == "rope":
            rotary = RotaryEmbedding(d_model // nhead, max_len=block_size, device=device)
        else:
            self.pos_emb = LearnedPositionalEmbedding(block_size, d_model, **kw)
        self.drop = Dropout(dropout)
        self.blocks = ModuleList([
            DecoderOnlyBlock(d_model, nhead, dim_feedforward, dropout, bias=bias, rotary=rotary, **kw)
            for _ in range(num_layers)
        ])
        self.ln_f = LayerNorm(d_model, bias=bias, **kw)
        self.lm_head = Linear(d_model, vocab_size, bias=False, **kw)

    def new_kv_caches(self) -> list[KVCache]:
        """One empty KVCache per block."""
        return [KVCache() for _ in self.blocks]

    def forward(self, idx: Tensor, kv_caches: list[KVCache] | None = None) -> Tensor:
        B, T = idx.shape
        past = 0 if kv_caches is None else len(kv_caches[0])
        if past + T > self.block_size:
            raise ValueError(
                f"GPT: {past} cached + {T} new tokens exceed block_size={self.block_size}; crop the context "
                f"(generate() does) or build the model with a larger block_size"
            )
        x = self.tok_emb(idx)  # (B, T, C)
        if self.positional == "learned":
            x = self.pos_emb(x, offset=past)  # (B, T, C)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, None if kv_caches is None else kv_caches[i])  # (B, T, C)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, use_cache: bool = True) -> Tensor:
        """Append max_new_tokens tokens to idx (B, T), each drawn from softmax(logits / temperature)
        (restricted to the top_k logits if given) by the Gumbel-max trick with tt.manual_seed's generator,
        or the argmax with greedy=True. The context is the last block_size tokens. With use_cache=True
        each step feeds only the newest token; the caches are refilled when the context slides."""
        with tt.no_grad():
            caches = self.new_kv_caches() if use_cache else None
            for _ in range(max_new_tokens):
                context = idx[:, max(0, idx.shape[1] - self.block_size):]  # (B, <= block_size)
                if caches is None:
                    logits = self(context)
                elif len(caches[0]) == 0 or idx.shape[1] > self.block_size:  # (re)fill from the context
                    caches = self.new_kv_caches()
                    logits = self(context, caches)
                else:  # the caches hold every token but the newest
                    logits = self(idx[:, -1:], caches)
                logits = logits[:, -1, :]  # (B, vocab)
                idx = tt.cat([idx, self._pick(logits, temperature, top_k, greedy)], dim=1)  # (B, T + 1)
        return idx

    @staticmethod
    def _pick(logits: Tensor, temperature: float, top_k: int | None, greedy: bool) -> Tensor:
        """(B, 1) next token ids from (B, vocab) logits."""
        if greedy:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            logits = logits.masked_fill(logits < _kth_largest(logits, top_k), float("-inf"))
        u = tt.rand(*logits.shape, dtype=logits.dtype, device=logits.device)
        gumbel = -(-u.clamp(min=1e-20).log()).log()  # argmax(logits + Gumbel noise) ~ softmax(logits)
        return (logits + gumbel).argmax(dim=-1, keepdim=True)


def _kth_largest(logits: Tensor, k: int) -> Tensor:
    """(B, 1): the k-th largest logit of each row (the row max removed k-1 times; ties leave together)."""
    x = logits
    for _ in range(k - 1):
        x = x.masked_fill(x == x.amax(dim=-1, keepdim=True), float("-inf"))
    return x.amax(dim=-1, keepdim=True)
