"""Multi-head attention (step 2 of the Transformer) and the key/value cache for incremental decoding.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,   head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

Each head attends in its own d/h-dimensional subspace; the heads are computed at once as one
(B, h, L, d/h) batch. The module is torch.nn.MultiheadAttention: same arguments, parameter names
(in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias), initialisation, masks and outputs.

MASK CONVENTION HERE (PyTorch's modules): a bool ``attn_mask`` / ``key_padding_mask`` is
**True where attention is BLOCKED** (masked out); a float mask is **added** to the scores.
This is the opposite of functional.scaled_dot_product_attention's bool mask (True = may attend).
Both masks become one additive float bias (0 / -inf) here, at the module boundary; a float bias made
once by an outer module (the Transformer stacks, GPT) passes through unchanged.

Every operand is checked before anything is computed: the query's batch must be the key's and the
value's (one sample never attends to another sample's keys), and each mask must have the shape of the
scores it masks. A batch that only matches the other layout gets "did you mean batch_first=...?".
"""
from __future__ import annotations

import tinytensor as tt
from tinytensor import Tensor

from . import init
from .functional import basic as F
from .functional.attention import as_bias, attention
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

    ``k`` and ``v`` are (B, h, T_past, head_dim) tensors (None while empty); ``len(cache)`` is
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
        """Append the new tokens' k, v (B, h, T_new, hs); return all of them, (B, h, T_past + T_new, hs)."""
        if k.ndim != 4 or v.ndim != 4 or k.shape[:3] != v.shape[:3]:
            raise ValueError(
                f"KVCache.update: keys and values must be (B, h, T_new, head_dim) with one B, h and T_new, "
                f"got {k.shape} and {v.shape}"
            )
        if self.k is not None:
            same = (k.shape[:2] == self.k.shape[:2] and k.shape[3] == self.k.shape[3]
                    and v.shape[3] == self.v.shape[3])
            if not same or k.device != self.k.device or k.dtype is not self.k.dtype:
                raise ValueError(
                    f"KVCache.update: new keys {k.shape} / values {v.shape} ({k.dtype} on {k.device}) do "
                    f"not continue the cached {self.k.shape} / {self.v.shape} ({self.k.dtype} on "
                    f"{self.k.device}): batch, heads, head_dim, dtype and device must match; reset() the "
                    f"cache to start a new sequence"
                )
            k = tt.cat([self.k, k], dim=2)  # (B, h, T_past + T_new, hs)
            v = tt.cat([self.v, v], dim=2)  # (B, h, T_past + T_new, hs)
        self.k, self.v = k, v
        return k, v

    def reset(self) -> None:
        """Empty the cache, to start a new sequence."""
        self.k = self.v = None

    def __repr__(self) -> str:
        return f"KVCache(tokens={len(self)}, shape={None if self.k is None else self.k.shape})"


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: h heads of scaled dot-product attention, concatenated and mixed by W^O.

    Args (PyTorch's): embed_dim, num_heads (must divide embed_dim), dropout on the attention weights,
    bias, kdim/vdim (feature sizes of key/value when they differ from embed_dim: then the parameters
    are q_proj_weight, k_proj_weight, v_proj_weight instead of in_proj_weight), batch_first
    (inputs (B, L, E) instead of (L, B, E)), device, dtype. Extension: ``rotary``, a RotaryEmbedding
    (or RotaryEmbedding2D) of dim embed_dim // num_heads applied to every head's queries and keys.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
            average_attn_weights=True, is_causal=False, kv_cache=None) -> (output, weights or None)

      query (L, B, E) / key (S, B, kdim) / value (S, B, vdim), or (B, ., .) with batch_first, or
      unbatched (L, E), (S, kdim), (S, vdim). One B for all three; S may be 0 (no keys: zero attention).
      key_padding_mask (B, S) (or (S,) unbatched): **True = this key is padding, ignore it**.
      attn_mask (L, S) or (B*num_heads, L, S): **True = this query may NOT attend to this key**;
      a float mask is added to the scores.
      is_causal: a hint that attn_mask is the causal mask (as in PyTorch it needs attn_mask).
      kv_cache: a KVCache; the new keys/values are appended and attention runs over all cached tokens
      (S then counts the cached tokens too; rotary positions start at len(kv_cache)).
      weights: (B, L, S) averaged over heads, or (B, num_heads, L, S) with average_attn_weights=False.

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
                qkv = F.linear(query, W, b)  # (B, L, 3E)
                return qkv.split(self.embed_dim, dim=-1)
            if key is value:  # cross-attention to one memory: K W^K and K W^V in one product
                E = self.embed_dim
                q = F.linear(query, W[:E], None if b is None else b[:E])  # (B, L, E)
                kv = F.linear(key, W[E:], None if b is None else b[E:])  # (B, S, 2E)
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
        b = 0 if self.batch_first else 1  # the batch dim of 3-D inputs
        if query.ndim == 3 and key.shape[b] != query.shape[b]:
            if key.shape[1 - b] == query.shape[1 - b]:  # they agree in the other layout's batch dim
                fix = f"did you mean batch_first={not self.batch_first}?"
            else:
                fix = "give key and value the query's batch size"
            layout = "(B, L, E), key (B, S, kdim)" if self.batch_first else "(L, B, E), key (S, B, kdim)"
            raise ValueError(
                f"{name}: query {query.shape} has batch size {query.shape[b]} but key {key.shape} and value "
                f"{value.shape} have {key.shape[b]} (batch_first={self.batch_first}: query {layout}); each "
                f"sample may attend only to its own keys: {fix}"
            )

    def _check_mask(self, what: str, mask: Tensor, expected: list[tuple], query: Tensor,
                    other_layout: list[tuple], past: int) -> None:
        """mask must have one of the ``expected`` shapes; the error says when it has a shape of the other
        batch layout (``other_layout``) or leaves out the ``past`` cached keys."""
        name = type(self).__name__
        if not isinstance(mask, Tensor):
            raise TypeError(f"{name}: {what} must be a Tensor or None, got {type(mask).__name__}")
        if mask.device != query.device:
            raise RuntimeError(f"{name}: {what} is on {mask.device} but the query is on "
                               f"{query.device}; move it with .to({query.device!r})")
        if tuple(mask.shape) not in expected:
            hint = ""
            if tuple(mask.shape) in other_layout:
                hint = (f"; it fits the inputs read with batch_first={not self.batch_first}: did you mean "
                        f"batch_first={not self.batch_first}?")
            elif past:
                hint = f" (S counts the {past} keys in kv_cache too: the mask must cover them)"
            raise ValueError(
                f"{name}: {what} has shape {tuple(mask.shape)}, but should be "
                + " or ".join(str(s) for s in expected) + hint
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
        if kv_cache is not None and not isinstance(kv_cache, KVCache):
            raise TypeError(f"MultiheadAttention: kv_cache must be a KVCache or None, got "
                            f"{type(kv_cache).__name__} (a model keeps one KVCache per attention layer)")
        self_attention, one_memory = query is key and key is value, key is value
        batched = query.ndim == 3
        if not batched:  # one sequence: add a batch dim of 1 and drop it at the end
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))  # (1, L, E)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))  # (B, L, E)
        if self_attention:  # keep them one object: the projections are then one product
            key = value = query
        elif one_memory:
            value = key
        B, L, E = query.shape
        S_new = key.shape[1]
        nh, hs = self.num_heads, self.head_dim
        past = 0 if kv_cache is None else len(kv_cache)
        S = past + S_new  # the keys attended to: the cached ones, then the new ones

        # 0. masks -> one additive bias, broadcast to (B, nh, L, S); checked before anything is computed
        bias = self._bias(attn_mask, key_padding_mask, query, B, L, S, batched, past)
        # 1. project: q = Q W^Q, k = K W^K, v = V W^V (all heads at once)
        q, k, v = self._in_projection(query, key, value)  # (B, L, E), (B, S_new, E), (B, S_new, E)
        # 2. split into heads
        q = q.reshape(B, L, nh, hs).transpose(1, 2)  # (B, nh, L, hs)
        k = k.reshape(B, S_new, nh, hs).transpose(1, 2)  # (B, nh, S_new, hs)
        v = v.reshape(B, S_new, nh, hs).transpose(1, 2)  # (B, nh, S_new, hs)
        if self.rotary is not None:  # turn q and k by their positions past, past+1, ...
            q, k = self.rotary(q, offset=past), self.rotary(k, offset=past)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, nh, S, hs): cached tokens, then the new ones
        # 3. attend in every head, concatenate the heads, mix them with W^O
        dropout_p = self.dropout if self.training else 0.0
        y, weights = attention(q, k, v, bias, dropout_p)  # (B, nh, L, hs), (B, nh, L, S)
        y = y.transpose(1, 2).reshape(B, L, E)  # (B, L, E): Concat(head_1, ..., head_h)
        y = self.out_proj(y)  # (B, L, E)

        if not batched:
            y = y.squeeze(0)  # (L, E)
        elif not self.batch_first:
            y = y.transpose(0, 1)  # (L, B, E)
        if not need_weights:
            return y, None
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (B, L, S)
        return y, (weights if batched else weights.squeeze(0))

    def _bias(self, attn_mask, key_padding_mask, query, B, L, S, batched, past) -> Tensor | None:
        """attn_mask and key_padding_mask (module convention, True = blocked) as one additive float bias
        (B or 1, nh or 1, L or 1, S), made here once. The shapes the masks would have if the inputs were
        in the other layout (batch_first flipped) are only used to name that mistake in the error."""
        bias = None
        nh, dtype = self.num_heads, query.dtype
        alt_B, alt_L, alt_S = L, B, past + B  # B, L and S if batch_first were the other way round
        if attn_mask is not None:
            other = [(alt_L, alt_S), (alt_B * nh, alt_L, alt_S)] if batched else []
            self._check_mask("attn_mask", attn_mask, [(L, S), (B * nh, L, S)], query, other, past)
            bias = as_bias(attn_mask, dtype, allowed_when=False, op="MultiheadAttention")
            if bias.ndim == 3:
                bias = bias.reshape(B, nh, L, S)  # (B*nh, L, S) -> (B, nh, L, S)
        if key_padding_mask is not None:
            other = [(alt_B, alt_S)] if batched else []
            expected = [(B, S)] if batched else [(S,)]
            self._check_mask("key_padding_mask", key_padding_mask, expected, query, other, past)
            pad = as_bias(key_padding_mask, dtype, allowed_when=False, op="MultiheadAttention",
                          name="key_padding_mask").reshape(B, 1, 1, S)
            bias = pad if bias is None else bias + pad  # (B, nh or 1, L or 1, S)
        return bias

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")
