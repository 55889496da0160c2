"""Scaled dot-product attention: softmax(Q Kᵀ / √d + bias) V, the core of every Transformer.

    out = scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False)   # (..., L, Ev)

MASK CONVENTION HERE (the same as torch.nn.functional.scaled_dot_product_attention):
    a bool ``attn_mask`` is True where a query MAY attend to a key (True = takes part);
    a float ``attn_mask`` is ADDED to the scores (use -inf to block a position).
The modules (MultiheadAttention, the Transformer layers) use the opposite, PyTorch-module convention:
there a bool mask is True where attention is BLOCKED. Both are converted to one additive float bias.

One fused Function computes the whole thing: a single (..., L, S) score array is made, biased,
softmaxed and multiplied by V in place, and backward needs only the saved probabilities.
A query row with no allowed key (every position masked) gets all-zero weights and a zero output,
and finite gradients (as PyTorch's fused CPU kernel; its softmax-then-matmul math path gives NaN).
Attention over zero keys (S = 0) gives a zero output and zero gradients, as PyTorch.

Masks become the bias once, where they enter (here, or at the outermost module): ``as_bias`` turns a
bool mask of either convention into 0 / -inf and passes a float bias through unchanged, so the layers
below hand the same bias down without converting it again.
"""
from __future__ import annotations

import math

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.autograd import Function
from tinytensor.autograd.dual import add as add_tangents
from tinytensor.ops import sum_to
from tinytensor.ops.nn import SoftmaxBackward

__all__ = [
    "scaled_dot_product_attention", "attention", "causal_mask", "causal_bias", "mask_to_bias", "as_bias",
    "ScaledDotProductAttention",
]


class ScaledDotProductAttention(Function):
    """(out, P) with P = softmax(scale · Q Kᵀ + bias) and out = (P ⊙ keep) V.

    ``bias`` is an additive float mask (-inf blocks) or None; ``keep`` is the dropout multiplier
    (0 or 1/(1-p) per weight) or None; ``causal``: query i sees keys j <= i only (the backend's
    causal_softmax masks as it goes: no (L, S) mask is made or added). P is the second output so that
    it is saved as an output: backward then differentiates through it again under ``create_graph=True``.

        dV = (P⊙keep)ᵀ dO,   dP = (dO Vᵀ)⊙keep + dP_extra,   dS = P ⊙ (dP - Σ_j dP⊙P),
        dQ = scale · dS K,   dK = scale · dSᵀ Q,   dbias = dS (summed to the bias' shape)
    """

    def forward(self, q, k, v, bias, keep, scale, causal=False):
        xp = self.xp
        self.scale = scale
        mm = self.backend.matmul
        s = mm(q * scale, xp.matrix_transpose(k))  # (..., L, S): the one full-size score array
        if bias is not None:
            if tuple(s.shape) == tt.broadcast_shapes(tuple(s.shape), tuple(bias.shape)):
                s += bias  # in place
            else:
                s = s + bias
        softmax = self.backend.causal_softmax if causal else self.backend.masked_softmax
        p = softmax(s)  # rows with nothing to attend to: zeros
        del s
        out = mm(p if keep is None else p * keep, v)  # (..., L, Ev)
        self.save_for_backward(q, k, v, p, keep)
        self.shapes = (q.shape, k.shape, v.shape, None if bias is None else bias.shape)
        return out, p

    def _zero_grad(self, i):
        return None  # the weights are usually unused: skip their (..., L, S) zero gradient

    def backward(self, g_out, g_p):
        q, k, v, p, keep = self.saved_tensors
        q_shape, k_shape, v_shape, bias_shape = self.shapes
        need_q, need_k, need_v, need_bias = self.needs_input_grad[:4]
        if g_out is None:
            g_out = tt.zeros(*(p.shape[:-1] + (v.shape[-1],)), dtype=p.dtype, device=p.device)
        if self.unobserved():  # the same formulas on the arrays: one node's cost instead of ~12 ops'
            return self._backward_on_arrays(g_out, g_p, q, k, v, p, keep)
        gq = gk = gv = gbias = None
        pd = p if keep is None else p * keep
        if need_v:
            gv = sum_to(pd.mT @ g_out, v_shape)  # dV = Pᵀ dO
        if need_q or need_k or need_bias:
            gp = g_out @ v.mT  # (..., L, S)
            if keep is not None:
                gp = gp * keep
            if gp.shape != p.shape:  # value's batch dims broadcast P further: P was shared there
                gp = sum_to(gp, p.shape)
            if g_p is not None:
                gp = gp + g_p
            gs = SoftmaxBackward.apply(p, gp, p.ndim - 1)  # dS = P ⊙ (dP - Σ dP⊙P)
            if need_q:
                gq = sum_to((gs @ k) * self.scale, q_shape)
            if need_k:
                gk = sum_to((gs.mT @ q) * self.scale, k_shape)
            if need_bias:
                gbias = sum_to(gs, bias_shape)
        return gq, gk, gv, gbias, None, None, None

    def _backward_on_arrays(self, g_out, g_p, q, k, v, p, keep):
        backend, xp = self.backend, self.xp
        mm, mT, sum_to_ = backend.matmul, xp.matrix_transpose, backend.sum_to
        q_shape, k_shape, v_shape, bias_shape = self.shapes
        need_q, need_k, need_v, need_bias = self.needs_input_grad[:4]
        g, p = g_out.array, p.array
        keep = None if keep is None else keep.array
        gq = gk = gv = gbias = None
        pd = p if keep is None else p * keep
        if need_v:
            gv = sum_to_(mm(mT(pd), g), v_shape)
        if need_q or need_k or need_bias:
            gp = mm(g, mT(v.array))
            if keep is not None:
                gp = gp * keep
            if gp.shape != p.shape:
                gp = sum_to_(gp, p.shape)
            if g_p is not None:
                gp = gp + g_p.array
            gs = backend.softmax_grad(p, gp, p.ndim - 1)
            if need_q:
                gq = sum_to_(mm(gs, k.array) * self.scale, q_shape)
            if need_k:
                gk = sum_to_(mm(mT(gs), q.array) * self.scale, k_shape)
            if need_bias:
                gbias = sum_to_(gs, bias_shape)
        wrap = g_out._wrap
        return (*(None if a is None else wrap(a) for a in (gq, gk, gv, gbias)), None, None, None)

    def jvp(self, tq, tk, tv, tbias, _keep, _scale, _causal=None):
        q, k, v, bias, keep, scale = self.primals[:6]  # ds = scale·(dQ Kᵀ + Q dKᵀ) + dbias
        out, p = self.result
        ds = add_tangents(None if tq is None else (tq * scale) @ k.mT,
                          None if tk is None else (q * scale) @ tk.mT, tbias)  # (..., L, S)
        dp = None  # dP = P ⊙ (ds - Σ ds⊙P): softmax's tangent map
        if ds is not None:
            dp = SoftmaxBackward.apply(p, ds if ds.shape == p.shape else ds.expand(*p.shape), p.ndim - 1)
        pd = p if keep is None else p * keep
        dout = add_tangents(None if dp is None else (dp if keep is None else dp * keep) @ v,
                            None if tv is None else pd @ tv)
        return (None if dout is None else dout.expand(*out.shape)), dp


def causal_mask(L: int, S: int | None = None, offset: int = 0, device=None) -> Tensor:
    """Bool (L, S) mask, True where query i may see key j: j <= i + offset (SDPA convention).

    ``offset=0`` is PyTorch's ``is_causal`` (top-left aligned). With a key/value cache holding
    ``past`` earlier tokens, the L new queries sit at positions past..past+L-1 of S = past + L keys:
    use ``offset=past``.
    """
    S = L if S is None else S
    rows = tt.arange(L, device=device).reshape(L, 1)  # query positions (L, 1)
    cols = tt.arange(S, device=device).reshape(1, S)  # key positions (1, S)
    return cols <= rows + offset


def causal_bias(L: int, S: int | None = None, offset: int = 0, dtype=None, device=None) -> Tensor:
    """Additive float (L, S) bias of ``causal_mask``: 0 where j <= i + offset, -inf above (blocked).

    Made directly as the bias, the one form attention takes a mask in (no bool mask to convert)."""
    S = L if S is None else S
    return tt.full((L, S), float("-inf"), dtype=dtype or tt.float32, device=device).triu(diagonal=1 + offset)


def mask_to_bias(mask: Tensor, dtype, allowed_when: bool = True) -> Tensor:
    """A bool mask as an additive float bias: 0 where attention is allowed, -inf where blocked.

    ``allowed_when=True`` reads the mask in the SDPA convention (True = may attend);
    ``allowed_when=False`` in the module convention (True = masked out).
    """
    blocked = mask.logical_not() if allowed_when else mask
    return tt.zeros(*mask.shape, dtype=dtype, device=mask.device).masked_fill(blocked, float("-inf"))


def as_bias(mask: Tensor | None, dtype, allowed_when: bool, op: str = "attention",
            name: str = "attn_mask") -> Tensor | None:
    """A mask as the additive float bias attention takes: a bool mask through ``mask_to_bias`` (read with
    ``allowed_when``), a float mask of ``dtype`` unchanged (so a bias converted once passes every layer
    below as is), None as None. Other dtypes raise TypeError naming ``op`` and ``name``."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype is tt.bool:
        return mask_to_bias(mask, dtype, allowed_when)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"{op}: only bool and floating {name} are supported, got {mask.dtype}")
    if mask.dtype is not dtype:
        raise TypeError(
            f"{op}: float {name} is {mask.dtype} but the query is {dtype}; convert it with .to({dtype}) "
            f"or pass a bool mask ({'True = may attend' if allowed_when else 'True = masked out'})"
        )
    return mask


def _check_mask(op: str, mask: Tensor, ref: Tensor, shape: tuple, what: str) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor or None, got {type(mask).__name__}")
    if mask.device != ref.device:
        raise RuntimeError(
            f"{op}: {what} is on {mask.device} but the query is on {ref.device}; move it with "
            f".to({ref.device!r}) (tinytensor never copies between devices implicitly)"
        )
    if mask.dtype is not tt.bool and mask.dtype is not ref.dtype:
        raise TypeError(
            f"{op}: {what} must be bool or have the query's dtype {ref.dtype}, got {mask.dtype}; "
            f"convert it with .to({ref.dtype}) or pass a bool mask"
        )
    try:
        fits = tt.broadcast_shapes(tuple(mask.shape), shape) == shape  # the mask may not widen the scores
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{op}: {what} of shape {tuple(mask.shape)} does not broadcast to the attention scores' "
            f"shape {shape} (..., L, S)"
        )


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """softmax(Q Kᵀ · scale + mask) V with scale = 1/√E by default (PyTorch's signature).

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).

    MASK CONVENTION (as torch.nn.functional.scaled_dot_product_attention):
      * bool ``attn_mask``: **True = this query MAY attend to this key** (False blocks it);
      * float ``attn_mask``: **added** to the scores (-inf blocks; any other value biases);
      * ``is_causal=True``: query i sees keys j <= i (top-left aligned; do not also pass attn_mask).
    The batch dims (...) broadcast; the mask must broadcast to the scores' shape (..., L, S) without
    widening it. A query that may attend to no key, and every query when there are no keys (S = 0),
    gets a zero output and zero (finite) gradients. ``dropout_p`` drops attention weights (always:
    pass 0.0 at evaluation).
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} needs at least 2 dims (..., seq, features), got shape {t.shape}")
        if not t.dtype.is_floating_point or t.dtype is not query.dtype:
            raise TypeError(
                f"{op}: query, key and value must share one floating dtype, got {query.dtype}, "
                f"{key.dtype}, {value.dtype}"
            )
        if t.device != query.device:
            raise RuntimeError(
                f"{op}: query is on {query.device} but {name} is on {t.device}; move them to one device "
                f"with .to(device)"
            )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{op}: query {query.shape} and key {key.shape} must have the same last dim E")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: key {key.shape} and value {value.shape} must have the same length S")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    try:  # the batch dims (...) broadcast, as in PyTorch; any other difference would mix samples
        scores_shape = tt.broadcast_shapes(query.shape[:-2], key.shape[:-2]) + (L, S)  # (..., L, S)
        tt.broadcast_shapes(scores_shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{op}: the batch dims (all but the last two) of query {query.shape}, key {key.shape} and "
            f"value {value.shape} do not broadcast; give them equal sizes (or 1 where one is shared)"
        ) from None

    bias = None
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass either attn_mask or is_causal=True, not both")
    if attn_mask is not None:
        _check_mask(op, attn_mask, query, scores_shape, "attn_mask")
        bias = as_bias(attn_mask, query.dtype, allowed_when=True, op=op)
    out, _ = attention(query, key, value, bias, dropout_p, scale, causal=is_causal)
    return out


def attention(query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None, dropout_p: float = 0.0,
              scale: float | None = None, causal: bool = False) -> tuple[Tensor, Tensor]:
    """(softmax(Q Kᵀ · scale + bias) V, the weights): attention with a ready additive float ``bias``;
    with ``causal``, query i sees keys j <= i only (as ``causal_mask(L, S)``, without making it).

    The building block behind scaled_dot_product_attention and MultiheadAttention, which turn their
    masks into ``bias`` (-inf = blocked). The weights (..., L, S) are returned after dropout, as
    PyTorch's MultiheadAttention returns them; no gradient array is made for them unless they are used.
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    keep = None
    if dropout_p > 0.0:  # multipliers 0 or 1/(1-p), drawn from tt.manual_seed's generator
        batch = tt.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
        shape = tuple(batch) + (query.shape[-2], key.shape[-2])
        keep = tt.dropout(tt.ones(*shape, dtype=query.dtype, device=query.device), dropout_p, True)
    out, weights = ScaledDotProductAttention.apply(query, key, value, bias, keep, scale, bool(causal))
    return out, (weights if keep is None else weights * keep)
