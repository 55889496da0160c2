"""Multi-head attention (step 2 of the Transformer) and the key/value cache for incremental decoding.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,   head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

Each head attends in its own d/h-dimensional subspace; the heads are computed at once as one
(N, h, L, d/h) batch. The module is torch.nn.MultiheadAttention: same arguments, parameter names
(in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias), initialisation, masks and outputs.

MASK CONVENTION HERE (PyTorch's modules): a bool ``attn_mask`` / ``key_padding_mask`` is
**True where attention is BLOCKED** (masked out); a float mask is **added** to the scores.
This is the opposite of functional.scaled_dot_product_attention's bool mask (True = may attend).
"""
from __future__ import annotations

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .functional import basic as F
from .functional.attention import attention, mask_to_bias
from .layers import Linear
from .module import Module, Parameter
from .positional import RotaryEmbedding

__all__ = ["KVCache", "MultiheadAttention"]


class KVCache:
    """The keys and values ONE attention layer has computed for earlier tokens (incremental decoding).

    Autoregressive generation feeds one new token at a time; the keys and values of the tokens
    before it do not change, so each layer keeps them here instead of recomputing them:

        cache = KVCache()
        out, _ = mha(x_prompt, x_prompt, x_prompt, attn_mask=..., kv_cache=cache)  # caches T tokens
        out, _ = mha(x_new, x_new, x_new, kv_cache=cache)                          # attends to T + 1

    ``k`` and ``v`` are (N, h, T_past, head_dim) tensors (None while empty); ``len(cache)`` is
    T_past, the position of the next token (the ``offset`` for positional encodings and for
    ``causal_mask(L, T_past + L, offset=T_past)``). A model keeps one cache per attention layer
    (see transformer.GPT.new_kv_caches). The cache keeps the graph of what it holds: generate under
    ``tt.no_grad()``. ``reset()`` empties it.
    """

    def __init__(self):
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new tokens' k, v (N, h, T_new, hs); return all of them, (N, h, T_past + T_new, hs)."""
        if self.k is not None:
            if k.shape[:2] != self.k.shape[:2] or k.shape[3] != self.k.shape[3] or k.device != self.k.device:
                raise ValueError(
                    f"KVCache.update: new keys of shape {k.shape} on {k.device} do not continue the cached "
                    f"{self.k.shape} on {self.k.device} (batch, heads and head_dim must match); "
                    f"reset() the cache to start a new sequence"
                )
            k = tt.cat([self.k, k], dim=2)  # (N, h, T_past + T_new, hs)
            v = tt.cat([self.v, v], dim=2)  # (N, h, T_past + T_new, hs)
        self.k, self.v = k, v
        return k, v

    def reset(self) -> None:
        self.k = self.v = None

    def __repr__(self) -> str:
        return f"KVCache(tokens={len(self)}, shape={None if self.k is None else self.k.shape})"


def _mask_bias(name: str, mask: Tensor, dtype) -> Tensor:
    """A module-convention mask (bool True = blocked, or float added) as an additive float bias."""
    if mask.dtype is tt.bool:
        return mask_to_bias(mask, dtype, allowed_when=False)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"MultiheadAttention: only bool and floating {name} are supported, got {mask.dtype}")
    if mask.dtype is not dtype:
        raise TypeError(
            f"MultiheadAttention: float {name} is {mask.dtype} but the query is {dtype}; convert it with "
            f".to({dtype}) or pass a bool mask (True = masked out)"
        )
    return mask


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: h heads of scaled dot-product attention, concatenated and mixed by W^O.

    Args (PyTorch's): embed_dim, num_heads (must divide embed_dim), dropout on the attention weights,
    bias, kdim/vdim (feature sizes of key/value when they differ from embed_dim: then the parameters
    are q_proj_weight, k_proj_weight, v_proj_weight instead of in_proj_weight), batch_first
    (inputs (N, L, E) instead of (L, N, E)), device, dtype. Extension: ``rotary``, a RotaryEmbedding
    (or RotaryEmbedding2D) of dim embed_dim // num_heads applied to every head's queries and keys.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
            average_attn_weights=True, is_causal=False, kv_cache=None) -> (output, weights or None)

      query (L, N, E) / key (S, N, kdim) / value (S, N, vdim), or (N, ., .) with batch_first, or
      unbatched (L, E), (S, kdim), (S, vdim).
      key_padding_mask (N, S) (or (S,) unbatched): **True = this key is padding, ignore it**.
      attn_mask (L, S) or (N*num_heads, L, S): **True = this query may NOT attend to this key**;
      a float mask is added to the scores.
      is_causal: a hint that attn_mask is the causal mask (as in PyTorch it needs attn_mask).
      kv_cache: a KVCache; the new keys/values are appended and attention runs over all cached tokens
      (S then counts the cached tokens too; rotary positions start at len(kv_cache)).
      weights: (N, L, S) averaged over heads, or (N, num_heads, L, S) with average_attn_weights=False.

    A query whose keys are all masked gets a zero attention output (as PyTorch with need_weights=False;
    its need_weights=True path gives NaN) and zero weights.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device=None, dtype=None, rotary: RotaryEmbedding | None = None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"MultiheadAttention: embed_dim and num_heads must be positive, got {embed_dim}, {num_heads}"
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim={embed_dim} is not divisible by num_heads={num_heads}; "
                f"each head gets embed_dim // num_heads features"
            )
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        if rotary is not None and rotary.dim != self.head_dim:
            raise ValueError(f"MultiheadAttention: rotary.dim={rotary.dim} must be head_dim={self.head_dim}")
        self.rotary = rotary

        def empty(*shape):
            return Parameter(tt.empty(*shape, dtype=dtype or tt.float32, device=device))

        E = embed_dim
        if self._qkv_same_embed_dim:  # W^Q, W^K, W^V stacked: one (3E, E) matrix
            self.in_proj_weight = empty(3 * E, E)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = empty(E, E)
            self.k_proj_weight = empty(E, self.kdim)
            self.v_proj_weight = empty(E, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = empty(3 * E)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, device=device, dtype=dtype)  # W^O
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: Xavier-uniform projections, zero biases (out_proj.weight keeps Linear's init)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    # ---- the three projections ---------------------------------------------------------------
    def _in_projection(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q W^Q + b_q, K W^K + b_k, V W^V + b_v; one product for self-attention (query is key is value),
        two for cross-attention to one memory (key is value)."""
        b = self.in_proj_bias
        if self._qkv_same_embed_dim:
            W = self.in_proj_weight  # (3E, E): W^Q, W^K, W^V stacked
            if query is key and key is value:
                qkv = F.linear(query, W, b)  # (N, L, 3E)
                return qkv.split(self.embed_dim, dim=-1)
            if key is value:  # cross-attention to one memory: K W^K and K W^V in one product
                E = self.embed_dim
                q = F.linear(query, W[:E], None if b is None else b[:E])  # (N, L, E)
                kv = F.linear(key, W[E:], None if b is None else b[E:])  # (N, S, 2E)
                return (q, *kv.split(E, dim=-1))
            W_q, W_k, W_v = W.chunk(3)
        else:
            W_q, W_k, W_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
        return F.linear(query, W_q, b_q), F.linear(key, W_k, b_k), F.linear(value, W_v, b_v)

    # ---- checks --------------------------------------------------------------------------
    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        name = type(self).__name__
        p = self.out_proj.weight
        for what, t, feat in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {what} must be a Tensor, got {type(t).__name__}")
            if t.device != p.device:
                raise RuntimeError(
                    f"{name}: {what} is on {t.device} but the module's parameters are on {p.device}; move "
                    f"the input with .to({p.device!r}) or the module with .to({t.device!r})"
                )
            if t.dtype is not p.dtype:
                raise TypeError(f"{name}: {what} is {t.dtype} but the parameters are {p.dtype}; convert one "
                                f"(e.g. module.to({t.dtype}) or x.to({p.dtype}))")
            if t.ndim != query.ndim or t.ndim not in (2, 3):
                raise ValueError(
                    f"{name}: query, key and value must all be 3-D (batched) or all 2-D (unbatched), got "
                    f"{query.shape}, {key.shape}, {value.shape}"
                )
            if t.shape[-1] != feat:
                raise ValueError(f"{name}: {what} must have {feat} features (last dim), got shape {t.shape}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"{name}: key {key.shape} and value {value.shape} must agree in all but the last dim"
            )

    def _check_mask(self, name: str, mask: Tensor, expected: list[tuple], query: Tensor) -> None:
        if not isinstance(mask, Tensor):
            raise TypeError(f"MultiheadAttention: {name} must be a Tensor or None, got {type(mask).__name__}")
        if mask.device != query.device:
            raise RuntimeError(f"MultiheadAttention: {name} is on {mask.device} but the query is on "
                               f"{query.device}; move it with .to({query.device!r})")
        if tuple(mask.shape) not in expected:
            raise ValueError(
                f"MultiheadAttention: {name} has shape {tuple(mask.shape)}, but should be "
                + " or ".join(str(s) for s in expected)
            )

    # ---- forward -------------------------------------------------------------------------
    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False, kv_cache: KVCache | None = None) -> tuple[Tensor, Tensor | None]:
        self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "MultiheadAttention: is_causal=True is a hint that needs attn_mask as well (as in PyTorch); "
                "pass attn_mask=Transformer.generate_square_subsequent_mask(L)"
            )
        self_attention, one_memory = query is key and key is value, key is value
        batched = query.ndim == 3
        if not batched:  # one sequence: add a batch dim of 1 and drop it at the end
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))  # (1, L, E)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))  # (N, L, E)
        if self_attention:  # keep them one object: the projections are then one product
            key = value = query
        elif one_memory:
            value = key
        N, L, E = query.shape
        nh, hs = self.num_heads, self.head_dim
        past = 0 if kv_cache is None else len(kv_cache)
        S = past + key.shape[1]

        # 1. project: q = Q W^Q, k = K W^K, v = V W^V (all heads at once)
        q, k, v = self._in_projection(query, key, value)  # (N, L, E), (N, S_new, E), (N, S_new, E)
        # 2. split into heads
        q = q.reshape(N, L, nh, hs).transpose(1, 2)  # (N, nh, L, hs)
        k = k.reshape(N, -1, nh, hs).transpose(1, 2)  # (N, nh, S_new, hs)
        v = v.reshape(N, -1, nh, hs).transpose(1, 2)  # (N, nh, S_new, hs)
        if self.rotary is not None:  # turn q and k by their positions past, past+1, ...
            q, k = self.rotary(q, offset=past), self.rotary(k, offset=past)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (N, nh, S, hs): cached tokens, then the new ones
        # 3. masks -> one additive bias, broadcast to (N, nh, L, S)
        bias = self._bias(attn_mask, key_padding_mask, query, N, L, S, batched)
        # 4. attend in every head, concatenate the heads, mix them with W^O
        dropout_p = self.dropout if self.training else 0.0
        y, weights = attention(q, k, v, bias, dropout_p)  # (N, nh, L, hs), (N, nh, L, S)
        y = y.transpose(1, 2).reshape(N, L, E)  # (N, L, E): Concat(head_1, ..., head_h)
        y = self.out_proj(y)  # (N, L, E)

        if not batched:
            y = y.squeeze(0)  # (L, E)
        elif not self.batch_first:
            y = y.transpose(0, 1)  # (L, N, E)
        if not need_weights:
            return y, None
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S)
        return y, (weights if batched else weights.squeeze(0))

    def _bias(self, attn_mask, key_padding_mask, query, N, L, S, batched) -> Tensor | None:
        bias = None
        if attn_mask is not None:
            nh = self.num_heads
            self._check_mask("attn_mask", attn_mask, [(L, S), ((N if batched else 1) * nh, L, S)], query)
            bias = _mask_bias("attn_mask", attn_mask, query.dtype)
            if bias.ndim == 3:
                bias = bias.reshape(N, nh, L, S)  # (N*nh, L, S) -> (N, nh, L, S)
        if key_padding_mask is not None:
            self._check_mask("key_padding_mask", key_padding_mask, [(N, S)] if batched else [(S,)], query)
            pad = _mask_bias("key_padding_mask", key_padding_mask, query.dtype).reshape(N, 1, 1, S)
            bias = pad if bias is None else bias + pad  # (N, nh or 1, L or 1, S)
        return bias

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")
