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
A mask becomes the additive float bias once, in the outermost module it is given to (the stack, or a
layer called on its own; GPT builds its causal bias once per forward): the layers below get that bias.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .attention import KVCache, MultiheadAttention
from .functional import basic as F
from .functional.attention import as_bias, causal_bias
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


def _check_mask_type(op: str, name: str, mask: Tensor | None) -> None:
    if mask is not None and not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(mask).__name__}")
    if mask is not None and mask.dtype is not tt.bool and not mask.dtype.is_floating_point:
        raise TypeError(f"{op}: only bool and floating types of {name} are supported, got {mask.dtype}")


def _mask_as_bias(op: str, name: str, mask: Tensor | None, x: Tensor) -> Tensor | None:
    """A module-convention mask (bool True = blocked, float added) as the additive float bias in x's dtype;
    a bias (float, x's dtype) comes back unchanged, so the layers below a stack convert nothing again."""
    if mask is None:
        return None
    _check_mask_type(op, name, mask)
    if not x.dtype.is_floating_point:
        return mask  # the attention's own check names the input's dtype
    return as_bias(mask, x.dtype, allowed_when=False, op=op, name=name)


def _decoder_biases(op: str, tgt: Tensor, *masks: Tensor | None) -> tuple:
    """tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask as biases (_mask_as_bias)."""
    names = ("tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask")
    return tuple(_mask_as_bias(op, name, m, tgt) for name, m in zip(names, masks))


def _check_same_batch(op: str, tgt: Tensor, memory: Tensor, batch_first: bool) -> None:
    """tgt (T, B, E) and memory (S, B, E) (or batch_first) must have one batch size B."""
    b = 0 if batch_first else 1
    if tgt.ndim == 3 and memory.ndim == 3 and tgt.shape[b] != memory.shape[b]:
        layout = "(B, T, E) / (B, S, E)" if batch_first else "(T, B, E) / (S, B, E)"
        fix = (f"did you mean batch_first={not batch_first}?" if tgt.shape[1 - b] == memory.shape[1 - b]
               else "give tgt and memory one batch size")
        raise ValueError(
            f"{op}: tgt {tgt.shape} has batch size {tgt.shape[b]} but memory {memory.shape} has "
            f"{memory.shape[b]} (batch_first={batch_first}: tgt / memory {layout}); each target sequence "
            f"attends only to its own source: {fix}"
        )


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
        op = type(self).__name__
        src_key_padding_mask = _mask_as_bias(op, "src_key_padding_mask", src_key_padding_mask, src)
        src_mask = _mask_as_bias(op, "src_mask", src_mask, src)
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
        op = type(self).__name__
        mask = _mask_as_bias(op, "mask", mask, src)  # the bias, once for every layer
        src_key_padding_mask = _mask_as_bias(op, "src_key_padding_mask", src_key_padding_mask, src)
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
        op = type(self).__name__
        _check_same_batch(op, tgt, memory, self.self_attn.batch_first)
        tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask = _decoder_biases(
            op, tgt, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)
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
        op = type(self).__name__
        tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask = _decoder_biases(  # once
            op, tgt, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)
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
            flipped = tgt.ndim == 3 and src.shape[1 - batch_dim] == tgt.shape[1 - batch_dim]
            raise RuntimeError(
                f"Transformer: the batch number of src and tgt must be equal, got src {src.shape} and tgt "
                f"{tgt.shape} (batch_first={self.batch_first})"
                + (f"; did you mean batch_first={not self.batch_first}?" if flipped else "")
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(
                f"Transformer: the feature number of src and tgt must be equal to d_model={self.d_model}, "
                f"got src {src.shape} and tgt {tgt.shape}"
            )
        for name, m in (("src_mask", src_mask), ("tgt_mask", tgt_mask), ("memory_mask", memory_mask),
                        ("src_key_padding_mask", src_key_padding_mask),
                        ("tgt_key_padding_mask", tgt_key_padding_mask),
                        ("memory_key_padding_mask", memory_key_padding_mask)):
            _check_mask_type(type(self).__name__, name, m)  # the stacks turn them into biases, once
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

    forward(x, kv_cache=None, attn_bias=None): x (B, T, C). With a KVCache the block attends to the cached
    tokens plus the T new ones (the new query t sits at position len(kv_cache) + t), and appends the new
    keys and values to the cache. ``attn_bias`` is the (T, len(kv_cache) + T) causal bias
    (functional.attention.causal_bias); GPT makes it once for all its blocks, and the block makes it
    when it is None. ``rotary`` (a RotaryEmbedding of dim C // nhead) rotates q and k.
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

    def forward(self, x: Tensor, kv_cache: KVCache | None = None, attn_bias: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 3:
            raise ValueError(f"{type(self).__name__}: x must be (B, T, C), got {getattr(x, 'shape', x)}")
        B, T, C = x.shape
        if attn_bias is None:
            past = 0 if kv_cache is None else len(kv_cache)
            attn_bias = causal_bias(T, past + T, offset=past, dtype=x.dtype, device=x.device)  # (T, past + T)
        h = self.ln_1(x)
        a = self.attn(h, h, h, attn_mask=attn_bias, need_weights=False, is_causal=True, kv_cache=kv_cache)[0]
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
        if not isinstance(idx, Tensor) or idx.ndim != 2:
            raise ValueError(
                f"GPT: idx must be token ids of shape (B, T), got shape {getattr(idx, 'shape', type(idx))}; "
                f"for one sequence pass idx.unsqueeze(0)"
            )
        B, T = idx.shape
        past = 0
        if kv_caches is not None:
            if len(kv_caches) != len(self.blocks):
                raise ValueError(
                    f"GPT: kv_caches must hold one KVCache per block ({len(self.blocks)}), got "
                    f"{len(kv_caches)}; make them with model.new_kv_caches()"
                )
            past = len(kv_caches[0])
            if any(len(c) != past for c in kv_caches):
                raise ValueError(
                    f"GPT: the kv_caches hold different numbers of tokens {[len(c) for c in kv_caches]}; "
                    f"they must come from one sequence (reset them, or use model.new_kv_caches())"
                )
        if past + T > self.block_size:
            raise ValueError(
                f"GPT: {past} cached + {T} new tokens exceed block_size={self.block_size}; crop the context "
                f"(generate() does) or build the model with a larger block_size"
            )
        x = self.tok_emb(idx)  # (B, T, C)
        if self.positional == "learned":
            x = self.pos_emb(x, offset=past)  # (B, T, C)
        x = self.drop(x)
        bias = causal_bias(T, past + T, offset=past, dtype=x.dtype, device=x.device)  # (T, past + T), once
        for i, block in enumerate(self.blocks):
            x = block(x, None if kv_caches is None else kv_caches[i], bias)  # (B, T, C)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, use_cache: bool = True) -> Tensor:
        """Append max_new_tokens tokens to idx (B, T), T >= 1, each drawn from softmax(logits / temperature)
        (restricted to the top_k logits if given) by the Gumbel-max trick with tt.manual_seed's generator,
        or the argmax with greedy=True or temperature=0 (the limit of temperature -> 0). The context is the
        last block_size tokens. With use_cache=True each step feeds only the newest token; the caches are
        refilled when the context slides."""
        if not isinstance(idx, Tensor) or idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(
                f"GPT.generate: idx must be a prompt of token ids of shape (B, T) with T >= 1, got shape "
                f"{getattr(idx, 'shape', type(idx))}; for one sequence pass idx.unsqueeze(0), and start an "
                f"empty prompt with a start token, e.g. tt.zeros(B, 1, dtype=tt.int64)"
            )
        if not temperature >= 0 or math.isinf(temperature):  # also rejects NaN
            raise ValueError(f"GPT.generate: temperature must be finite and >= 0 (0 = greedy), got "
                             f"{temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"GPT.generate: top_k must be None or >= 1, got {top_k}")
        if max_new_tokens < 0:
            raise ValueError(f"GPT.generate: max_new_tokens must be >= 0, got {max_new_tokens}")
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
        """(B, 1) next token ids from (B, vocab) logits; temperature 0 is greedy (the argmax)."""
        if greedy or temperature == 0:
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
