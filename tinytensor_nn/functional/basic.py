"""Stateless building blocks of the layers: linear, dropout, dropout1d/2d, layer_norm, rms_norm, batch_norm,
group_norm, normalize, cosine_similarity, pairwise_distance, pad, one_hot, embedding, activations.

Everything here is a tinytensor op or a short composition of them, except ``layer_norm``, which is a
Function pair over two backend kernels (``LayerNormFn`` and ``LayerNormBackward``, whose own derivatives
are written with Tensor ops, so that it can be differentiated again).
"""
from __future__ import annotations

import math
import warnings

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.autograd import Function
from tinytensor.autograd.dual import add as add_tangents


def _same_device(op: str, x: Tensor, *params) -> None:
    """Refuse a module's parameters and its input on different devices, naming both and the fix."""
    for p in params:
        if p is not None and p.backend is not x.backend:
            raise RuntimeError(
                f"{op}: the input is on {x.device} but the parameters are on {p.device}; move the input "
                f"with x.to({p.device!r}) or the module with module.to({x.device!r}) "
                f"(tinytensor never copies between devices implicitly)"
            )


def _same_float_dtype(op: str, x: Tensor, *params) -> None:
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype} of shape {x.shape}; "
                        f"convert it with .float()")
    for p in params:
        if p is not None and p.dtype is not x.dtype:
            raise TypeError(
                f"{op}: the input is {x.dtype} but the parameters are {p.dtype}; convert one of them, "
                f"e.g. module.to({x.dtype}) or x.to({p.dtype})"
            )


# ---- linear -----------------------------------------------------------------------------------

class LinearFn(Function):
    """y = x Wᵀ + b for x (..., in), W (out, in), b (out,) or None: one 2-D product for all leading dims.

    With G = ∂L/∂y and x, G flattened to rows (M, in), (M, out):
        ∂L/∂x = G W,   ∂L/∂W = Gᵀ x,   ∂L/∂b = Σ_rows G.
    One op instead of reshape, transpose, matmul, reshape and add: the bias is added in place and
    W's gradient comes out in W's own (out, in) layout.
    """

    def forward(self, x, weight, bias):
        xp = self.xp
        lead = tuple(x.shape[:-1])
        x2 = xp.reshape(x, (-1, x.shape[-1]))  # (M, in)
        y = self.backend.matmul(x2, xp.matrix_transpose(weight))  # (M, out), a fresh array
        if bias is not None:
            y += bias  # in place
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        self.x_shape = tuple(x.shape)
        return xp.reshape(y, lead + (weight.shape[0],))  # (..., out)

    def backward(self, gy):
        x, w = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad
        if self.unobserved():  # the same products on the arrays: one node's cost instead of seven ops'
            xp, mm = self.xp, self.backend.matmul
            g = xp.reshape(gy.array, (-1, gy.shape[-1]))
            x2 = None if x is None else xp.reshape(x.array, (-1, x.shape[-1]))
            return (gy._wrap(xp.reshape(mm(g, w.array), self.x_shape)) if need_x else None,
                    gy._wrap(mm(xp.matrix_transpose(g), x2)) if need_w else None,
                    gy._wrap(xp.sum(g, axis=0)) if need_b else None)
        g = gy.reshape(-1, gy.shape[-1])  # (M, out)
        gx = gw = gb = None
        if need_x:
            gx = (g @ w).reshape(self.x_shape)  # (..., in)
        if need_w:
            gw = g.mT @ x.reshape(-1, x.shape[-1])  # (out, M) @ (M, in)
        if need_b:
            gb = g.sum(dim=0)  # (out,)
        return gx, gw, gb

    def jvp(self, tx, tw, tb):
        x, w, _ = self.primals  # dy = dx Wᵀ + x dWᵀ + db: the first product adds db in place
        if tx is None and tw is None:
            return tb.expand(*self.result.shape)
        return add_tangents(None if tx is None else LinearFn.apply(tx, w, tb),
                            None if tw is None else LinearFn.apply(x, tw, tb if tx is None else None))


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b with W of shape (out_features, in_features); x is (..., in_features)."""
    _same_device("linear", input, weight, bias)
    _same_float_dtype("linear", input, weight, bias)
    if input.ndim == 0 or weight.ndim != 2 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input of shape {input.shape} does not end in in_features={weight.shape[-1]} "
            f"(weight shape {weight.shape})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},) (out_features)")
    return LinearFn.apply(input, weight, bias)  # (..., out)


# ---- normalization ----------------------------------------------------------------------------

class LayerNormFn(Function):
    """y = (x - μ) / √(σ² + eps) · w + b over the last ``k`` dims (biased variance, as PyTorch).

    The arrays are seen as (M, K) rows (K = the normalized size); one backend kernel normalizes them
    (``backend.layer_norm``). It saves x, μ and rstd: x̂ is rebuilt in backward, one pass, where saving
    it would keep a second x-sized array alive. Backward is the Function ``LayerNormBackward``.
    """

    def forward(self, x, weight, bias, k, eps):
        xp = self.xp
        K = math.prod(x.shape[x.ndim - k:])
        flat = (K,)
        y, mu, rstd = self.backend.layer_norm(xp.reshape(x, (-1, K)),  # (M, K) -> (M, K), (M, 1), (M, 1)
                                              None if weight is None else xp.reshape(weight, flat),
                                              None if bias is None else xp.reshape(bias, flat), eps)
        self.k, self.eps = k, eps
        self.save_for_backward(x, weight, mu, rstd)
        return xp.reshape(y, x.shape)

    def backward(self, gy):
        x, w, mu, rstd = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad[:3]
        grads = LayerNormBackward.apply(gy, x, w, mu, rstd, self.k, self.eps, need_b)  # gx[, gw][, gb]
        grads = list(grads) if type(grads) is tuple else [grads]
        gx = grads.pop(0)
        gw = grads.pop(0) if w is not None else None
        gb = grads.pop(0) if need_b else None
        return (gx if need_x else None), (gw if need_w else None), gb

    def jvp(self, tx, tw, tb, _k, _eps):
        x, w, b = self.primals[:3]
        axes = tuple(range(x.ndim - self.k, x.ndim))
        xhat, rstd = _normalize(x, axes, self.eps)
        dxhat = None
        if tx is not None:  # dx̂ = rstd·P(dx)
            dxhat = rstd * _project(tx, xhat, axes)
            dxhat = dxhat if w is None else dxhat * w
        return add_tangents(dxhat, None if tw is None else xhat * tw,
                            None if tb is None else tb.expand(*x.shape))


class LayerNormBackward(Function):
    """Layer norm's gradients (gx[, gw][, gb]) from gy: ``backend.layer_norm_grad``, with x̂ = (x - μ)·rstd,
    g = gy·w and P(v) = v - mean(v) - x̂·mean(v·x̂) (P projects out 1 and x̂, and is symmetric):

        gx = rstd·P(g),   gw = Σ_rows gy·x̂,   gb = Σ_rows gy.

    gw is an output when there is a weight, gb when the bias needs a gradient. Its own backward (second
    order) and jvp are the derivatives of these formulas, written with Tensor ops; x̂ and rstd are
    rebuilt from x there, so that they carry x's gradient.
    """

    def forward(self, gy, x, w, mu, rstd, k, eps, need_bias):
        xp = self.xp
        K = math.prod(x.shape[x.ndim - k:])
        rows = (-1, K)
        gx, gw, gb = self.backend.layer_norm_grad(
            xp.reshape(gy, rows), xp.reshape(x, rows), None if w is None else xp.reshape(w, (K,)), mu, rstd,
            w is not None, need_bias)
        self.k, self.eps, self.has_weight, self.need_bias = k, eps, w is not None, need_bias
        self.save_for_backward(gy, x, w)
        outs = [xp.reshape(gx, x.shape)]
        if w is not None:
            outs.append(xp.reshape(gw, w.shape))
        if need_bias:
            outs.append(xp.reshape(gb, x.shape[x.ndim - k:]))
        return tuple(outs) if len(outs) > 1 else outs[0]

    def _split(self, grads):
        """(for gx, for gw, for gb) from one gradient or tangent per output (None where none)."""
        grads = list(grads)
        a = grads.pop(0)
        bw = grads.pop(0) if self.has_weight else None
        bb = grads.pop(0) if self.need_bias else None
        return a, bw, bb

    def backward(self, *grads):
        A, Bw, Bb = self._split(grads)  # the gradients of gx, gw, gb
        gy, x, w = self.saved_tensors
        axes = tuple(range(x.ndim - self.k, x.ndim))
        lead = tuple(range(x.ndim - self.k))
        K = math.prod(x.shape[x.ndim - self.k:])
        xhat, r = _normalize(x, axes, self.eps)
        g = gy if w is None else gy * w
        d_gy = d_x = d_w = None
        terms_gy, terms_x = [], []
        if A is not None:
            rPA = r * _project(A, xhat, axes)  # ∂⟨A, gx⟩/∂g, as gx = r·P(g) and P is symmetric
            terms_gy.append(rPA if w is None else rPA * w)
            if w is not None and self.needs_input_grad[2]:
                d_w = _sum_over(gy * rPA, lead)
            if self.needs_input_grad[1]:  # through x̂ and r: dx̂ = r·P(dx), dr = -r²·mean(x̂·dx)
                m = (g * xhat).mean(dim=axes, keepdim=True)
                c1 = (A * _project(g, xhat, axes)).sum(dim=axes, keepdim=True)
                c2 = (A * xhat).sum(dim=axes, keepdim=True)
                v = -r * (m * A + (c2 / K) * g)
                terms_x += [r * _project(v, xhat, axes), -(r * r * c1 / K) * xhat]
        if Bw is not None:
            terms_gy.append(Bw * xhat)
            if self.needs_input_grad[1]:
                terms_x.append(r * _project(Bw * gy, xhat, axes))
        if Bb is not None:
            terms_gy.append(Bb.expand(*x.shape))
        if self.needs_input_grad[0] and terms_gy:
            d_gy = add_tangents(*terms_gy)
        if self.needs_input_grad[1] and terms_x:
            d_x = add_tangents(*terms_x)
        return d_gy, d_x, d_w, None, None, None, None, None

    def jvp(self, tgy, tx, tw, *_):
        gy, x, w = self.primals[:3]
        axes = tuple(range(x.ndim - self.k, x.ndim))
        lead = tuple(range(x.ndim - self.k))
        xhat, r = _normalize(x, axes, self.eps)
        g = gy if w is None else gy * w
        dg = add_tangents(None if tgy is None else (tgy if w is None else tgy * w),
                          None if tw is None else gy * tw)
        terms = [None if dg is None else r * _project(dg, xhat, axes)]
        dxhat = None
        if tx is not None:  # dx̂ = r·P(dx), dr = -r²·mean(x̂·dx)
            dxhat = r * _project(tx, xhat, axes)
            dr = -r * r * (xhat * tx).mean(dim=axes, keepdim=True)
            m = (g * xhat).mean(dim=axes, keepdim=True)
            terms += [dr * _project(g, xhat, axes),
                      -r * (dxhat * m + xhat * (g * dxhat).mean(dim=axes, keepdim=True))]
        outs = [add_tangents(*terms)]
        if self.has_weight:
            outs.append(add_tangents(None if tgy is None else _sum_over(tgy * xhat, lead),
                                     None if dxhat is None else _sum_over(gy * dxhat, lead)))
        if self.need_bias:
            outs.append(None if tgy is None else _sum_over(tgy, lead))
        return tuple(outs) if len(outs) > 1 else outs[0]


def layer_norm_grads(gy: Tensor, x: Tensor, w: Tensor | None, k: int, eps: float, need_bias: bool):
    """LayerNormBackward's outputs (gx[, gw][, gb]) written with Tensor ops: its rule under func.vmap,
    where each op is batched by its own rule (gw and gb are then sums over each sample's rows)."""
    axes = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    xhat, rstd = _normalize(x, axes, eps)
    outs = [rstd * _project(gy if w is None else gy * w, xhat, axes)]
    if w is not None:
        outs.append(_sum_over(gy * xhat, lead))
    if need_bias:
        outs.append(_sum_over(gy, lead))
    return tuple(outs) if len(outs) > 1 else outs[0]


def _normalize(x: Tensor, axes: tuple, eps: float) -> tuple[Tensor, Tensor]:
    """(x̂, rstd) of layer norm over ``axes``, with Tensor ops (so that they carry x's gradient)."""
    xc = x - x.mean(dim=axes, keepdim=True)
    rstd = ((xc * xc).mean(dim=axes, keepdim=True) + eps).rsqrt()
    return xc * rstd, rstd


def _project(v: Tensor, xhat: Tensor, axes: tuple) -> Tensor:
    """P(v) = v - mean(v) - x̂·mean(v·x̂) over ``axes``: layer norm's Jacobian, up to rstd."""
    return v - v.mean(dim=axes, keepdim=True) - xhat * (v * xhat).mean(dim=axes, keepdim=True)


def _sum_over(t: Tensor, dims: tuple) -> Tensor:
    return t.sum(dim=dims) if dims else t


def _normalized(op: str, input: Tensor, normalized_shape) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) == 0 or len(shape) > input.ndim or tuple(input.shape[-len(shape):]) != shape:
        raise ValueError(
            f"{op}: normalized_shape {shape} must match the last dims of the input, got input shape "
            f"{input.shape}"
        )
    return shape


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / √(var + eps) · weight + bias over the trailing normalized_shape dims (one fused op)."""
    shape = _normalized("layer_norm", input, normalized_shape)
    _same_device("layer_norm", input, weight, bias)
    _same_float_dtype("layer_norm", input, weight, bias)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected normalized_shape {shape}")
    return LayerNormFn.apply(input, weight, bias, len(shape), float(eps))


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / √(mean(x²) + eps) · weight over the trailing dims; eps defaults to the dtype's machine epsilon."""
    shape = _normalized("rms_norm", input, normalized_shape)
    _same_device("rms_norm", input, weight)
    _same_float_dtype("rms_norm", input, weight)
    if eps is None:
        eps = {"float16": 2.0 ** -10, "float32": 2.0 ** -23, "float64": 2.0 ** -52}[input.dtype.name]
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    y = input * ((input * input).mean(dim=axes, keepdim=True) + eps).rsqrt()
    return y if weight is None else y * weight


def _batch_norm(op: str, input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
                eps: float) -> Tensor:
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input (B, C, ...) with at least 2 dimensions, got shape "
                         f"{input.shape}")
    C = input.shape[1]
    _same_device(op, input, weight, bias, running_mean, running_var)
    _same_float_dtype(op, input, weight, bias, running_mean, running_var)
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise RuntimeError(
                f"{op}: {name} has shape {t.shape} but the input of shape {input.shape} has {C} channels "
                f"(dim 1); build the layer with num_features={C}, or fix the input"
            )
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{op}: running_mean and running_var are needed when training=False")
    dims = (0, *range(2, input.ndim))  # every dim but the channels
    n = input.numel() // C if C else 0  # values per channel
    stats = (1, C) + (1,) * (input.ndim - 2)  # (1, C, 1, ...): broadcasts over (B, C, ...)
    if training:
        if n <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input of "
                             f"shape {input.shape}; use a larger batch, or eval() mode")
        mean = input.mean(dim=dims, keepdim=True)  # (1, C, 1, ...)
        var = input.var(dim=dims, correction=0, keepdim=True)  # biased: what the batch is normalised by
        if running_mean is not None:
            with tt.no_grad():  # the running variance is the unbiased one, as PyTorch
                running_mean.copy_(running_mean * (1 - momentum) + mean.reshape(C) * momentum)
        if running_var is not None:
            with tt.no_grad():
                running_var.copy_(running_var * (1 - momentum) + var.reshape(C) * (momentum * n / (n - 1)))
    else:
        mean, var = running_mean.reshape(stats), running_var.reshape(stats)
    y = (input - mean) * (var + eps).rsqrt()  # (B, C, ...)
    if weight is not None:
        y = y * weight.reshape(stats)
    if bias is not None:
        y = y + bias.reshape(stats)
    return y


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x - μ_c) / √(σ²_c + eps) · weight_c + bias_c per channel c (dim 1) of input (B, C, ...).

    training: μ, σ² of the batch (biased σ²), and the running stats (when given) move in place:
    r ← (1 - momentum)·r + momentum·s, with the unbiased variance. Otherwise μ, σ² are the running stats.
    """
    return _batch_norm("batch_norm", input, running_mean, running_var, weight, bias, training,
                       momentum, eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - μ_g) / √(σ²_g + eps) · weight_c + bias_c, μ and σ² (biased) over each of ``num_groups`` groups
    of C / num_groups channels (and every position) of one sample; input (B, C, ...) (Wu & He, 2018)."""
    if input.ndim < 2:
        raise RuntimeError(f"group_norm: expected an input (B, C, ...) with at least 2 dimensions, got "
                           f"shape {input.shape}")
    B, C = input.shape[:2]
    G = num_groups
    if not isinstance(G, int) or G < 1 or C % G:
        raise RuntimeError(f"group_norm: the {C} channels of the input of shape {input.shape} (dim 1) "
                           f"must be divisible by num_groups={G!r}")
    _same_device("group_norm", input, weight, bias)
    _same_float_dtype("group_norm", input, weight, bias)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (C,):
            raise RuntimeError(f"group_norm: {name} has shape {p.shape} but the input of shape {input.shape} "
                               f"has {C} channels (dim 1); expected ({C},)")
    n = input.numel() // (B * G) if B * G else 0  # values per group
    if B * n == 1:  # one sample of one value per group (PyTorch's check)
        raise ValueError(f"group_norm: expected more than 1 value per group, got input of shape "
                         f"{input.shape} and num_groups={G}")
    x = input.reshape(B, G, n)  # (B, G, C/G · positions)
    mean = x.mean(dim=-1, keepdim=True)  # (B, G, 1)
    var = x.var(dim=-1, correction=0, keepdim=True)  # biased, as PyTorch
    y = ((x - mean) * (var + eps).rsqrt()).reshape(input.shape)  # (B, C, ...)
    stats = (C,) + (1,) * (input.ndim - 2)  # (C, 1, ...): broadcasts over (B, C, ...)
    if weight is not None:
        y = y * weight.reshape(stats)
    if bias is not None:
        y = y + bias.reshape(stats)
    return y


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(‖x‖_p, eps) along dim (‖x‖_∞ = max |x|); a zero vector gets a zero norm gradient."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"normalize: expected a floating-point input, got {input.dtype} of shape "
                        f"{input.shape}; convert it with .float()")
    return input / tt.norm(input, p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Σ x1·x2 / (max(‖x1‖, eps) · max(‖x2‖, eps)) along dim, after broadcasting
    (``tt.cosine_similarity``)."""
    return tt.cosine_similarity(x1, x2, dim, eps)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """‖x1 - x2 + eps‖_p along the last dim, after broadcasting (PyTorch's formula: eps is added to every
    difference, so that the gradient at x1 = x2 is finite)."""
    tt.broadcast_shapes(x1.shape, x2.shape, op="pairwise_distance")  # an error that names the op
    dim = max(x1.ndim, x2.ndim) - 1  # the last dim of the broadcast result (-1 for two 0-d tensors)
    return tt.norm(x1 - x2 + eps, p, dim, keepdim)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Constant padding; ``pad`` lists (left, right) widths from the last dim backwards (negative crops)."""
    return tt.pad(input, pad, mode, 0.0 if value is None else value)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor with a 1 at each index along a new last dim (num_classes -1: max index + 1)."""
    return tt.one_hot(tensor, num_classes)


# ---- embedding, dropout, activations ----------------------------------------------------------

def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """weight[input]: one row per index; the row ``padding_idx`` receives no gradient."""
    _same_device("embedding", input, weight)
    out = tt.embedding(input, weight)  # (..., dim)
    if padding_idx is not None and out.requires_grad:
        if padding_idx < 0:
            padding_idx += weight.shape[0]
        keep = (input != padding_idx).unsqueeze(-1)  # (..., 1)
        out.register_hook(lambda g: tt.where(keep, g, 0.0))  # padding_idx positions send back nothing
    return out


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not training)."""
    return tt.dropout(input, p, training)


def _channel_dropout(op: str, input: Tensor, p: float, training: bool, ndims: tuple, lead: int) -> Tensor:
    """Zero whole channels: one draw per entry of input's first ``lead`` dims (the batch and channel
    dims), kept ones scaled by 1/(1-p); ``ndims`` are the input ranks the op takes."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")
    if input.ndim not in ndims:
        ranks = " or ".join(f"{d}-D" for d in ndims)
        raise RuntimeError(f"{op}: expected a {ranks} input (an optional batch dim, a channel dim, then the "
                           f"spatial dims), got shape {input.shape}")
    if not training or p == 0.0:
        return input
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: scaling by 1/(1-p) needs a floating-point input, got {input.dtype} of shape "
                        f"{input.shape}")
    ones = tt.ones((*input.shape[:lead], *(1,) * (input.ndim - lead)), dtype=input.dtype, device=input.device)
    return input * tt.dropout(ones, p)  # (B, C, 1, ...): 0 or 1/(1-p), one per channel


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each channel x[b, c, :] with probability p and scale the rest by 1/(1-p) (identity when not
    training); input (B, C, L) or (C, L)."""
    return _channel_dropout("dropout1d", input, p, training, (2, 3), input.ndim - 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each channel x[b, c, :, :] with probability p and scale the rest by 1/(1-p) (identity when not
    training); input (B, C, H, W). A 3-D input is read as (B, C, L) and warned about, as PyTorch does."""
    if input.ndim == 3:
        warnings.warn("dropout2d: a 3-D input is read as (B, C, L), each x[b, c, :] dropped as one channel, "
                      "as PyTorch does; use dropout1d for that, or x.unsqueeze(0) for one (C, H, W) image",
                      stacklevel=2)
    return _channel_dropout("dropout2d", input, p, training, (3, 4), 2)


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    """e^x / Σ e^x along dim."""
    return tt.softmax(input, dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    """x - log Σ e^x along dim."""
    return tt.log_softmax(input, dim)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Φ(x); approximate="tanh" uses 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    return tt.gelu(input, approximate=approximate)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x)"""
    return tt.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """tanh(x), elementwise (``tt.tanh``); ``torch.nn.functional.tanh``."""
    return tt.tanh(input)


# ---- activations beyond relu, gelu and silu (the ops are tinytensor's: tt.softplus, tt.elu, ...) -----

def _maybe_in_place(input: Tensor, inplace: bool, name: str, op, *args) -> Tensor:
    """op(input, *args), or, with inplace=True, written into input (recorded as PyTorch records it)."""
    return input._update(f"{name}_", lambda t: op(t, *args)) if inplace else op(input, *args)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)"""
    return _maybe_in_place(input, inplace, "relu", tt.relu)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x σ(x)"""
    return _maybe_in_place(input, inplace, "silu", tt.silu)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope · x."""
    return _maybe_in_place(input, inplace, "leaky_relu", tt.leaky_relu, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else α(eˣ - 1)."""
    return _maybe_in_place(input, inplace, "elu", tt.elu, alpha)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x limited to [min_val, max_val] (gradient 0 at both ends)."""
    return _maybe_in_place(input, inplace, "hardtanh", tt.hardtanh, min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)"""
    return _maybe_in_place(input, inplace, "relu6", tt.relu6)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x · relu6(x + 3) / 6"""
    return _maybe_in_place(input, inplace, "hardswish", tt.hardswish)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x · tanh(softplus(x))"""
    return _maybe_in_place(input, inplace, "mish", tt.mish)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx)) / β, x itself where βx > threshold."""
    return tt.softplus(input, beta, threshold)


def logsigmoid(input: Tensor) -> Tensor:
    """log σ(x)"""
    return tt.logsigmoid(input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a · σ(b), a and b the halves of input along dim."""
    return tt.glu(input, dim)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale · elu(x, α), α ≈ 1.6733, scale ≈ 1.0507 (self-normalising)."""
    return _maybe_in_place(input, inplace, "selu", tt.selu)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else α(e^(x/α) - 1)."""
    return _maybe_in_place(input, inplace, "celu", tt.celu, alpha)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _maybe_in_place(input, inplace, "threshold", tt.threshold, threshold, value)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6"""
    return _maybe_in_place(input, inplace, "hardsigmoid", tt.hardsigmoid)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)"""
    return tt.softsign(input)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)"""
    return tt.tanhshrink(input)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """0 where -λ ≤ x ≤ λ, else x."""
    return tt.hardshrink(input, lambd)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - λ above λ, x + λ below -λ, 0 between."""
    return tt.softshrink(input, lambd)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight · x: one weight, or one per channel (dim 1)."""
    return tt.prelu(input, weight)


def softmin(input: Tensor, dim: int = -1) -> Tensor:
    """softmax(-x) along dim."""
    return tt.softmax(-input, dim)


# the in-place forms F.relu_ ... : the activation written into input, which is returned

def relu_(input: Tensor) -> Tensor:
    """``relu(input, inplace=True)``"""
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """``elu(input, alpha, inplace=True)``"""
    return elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``leaky_relu(input, negative_slope, inplace=True)``"""
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``hardtanh(input, min_val, max_val, inplace=True)``"""
    return hardtanh(input, min_val, max_val, inplace=True)


def selu_(input: Tensor) -> Tensor:
    """``selu(input, inplace=True)``"""
    return selu(input, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """``celu(input, alpha, inplace=True)``"""
    return celu(input, alpha, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """``threshold(input, threshold, value, inplace=True)``"""
    return _maybe_in_place(input, True, "threshold", tt.threshold, threshold, value)


__all__ = [
    "linear", "layer_norm", "rms_norm", "batch_norm", "group_norm", "normalize", "cosine_similarity",
    "pairwise_distance", "pad", "one_hot", "embedding", "dropout", "dropout1d", "dropout2d",
    "softmax", "log_softmax", "relu", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "elu", "hardtanh",
    "relu6", "hardswish", "mish", "softplus", "logsigmoid", "glu", "selu", "celu", "threshold",
    "hardsigmoid", "softsign", "tanhshrink", "hardshrink", "softshrink", "prelu", "softmin", "relu_", "elu_",
    "leaky_relu_", "hardtanh_", "selu_", "celu_", "threshold_", "LinearFn", "LayerNormFn",
]
