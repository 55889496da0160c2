"""Stateless building blocks of the layers: linear, dropout, layer_norm, rms_norm, batch_norm, normalize,
pad, one_hot, embedding, activations.

Everything here is a tinytensor op or a short composition of them, except ``layer_norm``, which is one
fused Function (its backward is the closed form, written with Tensor ops so it can be differentiated again).
"""
from __future__ import annotations

import math

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.autograd import Function, dual, is_grad_enabled
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
        g = gy.reshape(-1, gy.shape[-1])  # (M, out)
        gx = gw = gb = None
        if need_x:
            gx = (g @ w).reshape(self.x_shape)  # (..., in)
        if need_w:
            gw = g.mT @ x.reshape(-1, x.shape[-1])  # (out, M) @ (M, in)
        if need_b:  # Σ_rows G as 1ᵀG: one BLAS call, faster than NumPy's sum over rows
            ones = tt.ones(1, g.shape[0], dtype=g.dtype, device=g.device)  # (1, M)
            gb = (ones @ g).reshape(-1)  # (out,)
        return gx, gw, gb

    def jvp(self, tx, tw, tb):
        x, w, b = self.primals  # dy = dx Wᵀ + x dWᵀ + db
        terms = [None if tx is None else LinearFn.apply(tx, w, tb),
                 None if tw is None else LinearFn.apply(x, tw, None)]
        if tx is None and tb is not None:
            terms.append(tb.expand(*self.result.shape))
        return add_tangents(*terms)


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

    Backward, with x̂ = (x - μ)·rstd and g = ∂L/∂x̂ = gy·w, the mean taken over the normalized dims:
        ∂L/∂x = rstd · (g - mean(g) - x̂ · mean(g · x̂)),   ∂L/∂w = Σ gy·x̂,   ∂L/∂b = Σ gy.
    The arrays are seen as (M, K) rows (K = the normalized size) and every mean or sum is a product
    with a constant vector (one BLAS call instead of a reduction over short rows); the updates are in
    place. Saves x, μ and rstd (x̂ is rebuilt in backward: one pass, where saving it would keep a
    second x-sized array alive). Under create_graph, backward is written with Tensor ops instead, so
    that it can be differentiated again.
    """

    def forward(self, x, weight, bias, k, eps):
        xp = self.xp
        K = math.prod(x.shape[x.ndim - k:])
        x2 = xp.reshape(x, (-1, K))  # (M, K)
        avg = self.backend.full((K,), 1.0 / K, self.backend.dtype_of(x))  # (K,): row means
        mu = xp.reshape(x2 @ avg, (-1, 1))  # (M, 1)
        y = x2 - mu  # (M, K), fresh: becomes x̂ and then y in place
        rstd = 1.0 / xp.sqrt(xp.reshape((y * y) @ avg, (-1, 1)) + eps)  # (M, 1)
        y *= rstd  # x̂
        if weight is not None:
            y *= xp.reshape(weight, (K,))
        if bias is not None:
            y += xp.reshape(bias, (K,))
        self.k, self.eps = k, eps
        self.save_for_backward(x, weight, mu, rstd)
        return xp.reshape(y, x.shape)

    def backward(self, gy):
        x, w, mu, rstd = self.saved_tensors
        if not is_grad_enabled() and not dual.propagating.get():  # (tangents need the Tensor-op path)
            return self._backward_arrays(gy, x, w, mu, rstd)
        axes = tuple(range(x.ndim - self.k, x.ndim))
        lead = tuple(range(x.ndim - self.k))
        # create_graph: rebuild x̂ and rstd from x so that they carry its gradient
        xc = x - x.mean(dim=axes, keepdim=True)
        rstd = ((xc * xc).mean(dim=axes, keepdim=True) + self.eps).rsqrt()
        xhat = xc * rstd
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            g = gy if w is None else gy * w
            gx = rstd * (g - g.mean(dim=axes, keepdim=True) - xhat * (g * xhat).mean(dim=axes, keepdim=True))
        if self.needs_input_grad[1]:
            gw = (gy * xhat).sum(dim=lead) if lead else gy * xhat
        if self.needs_input_grad[2]:
            gb = gy.sum(dim=lead) if lead else gy
        return gx, gw, gb

    def _backward_arrays(self, gy, x, w, mu, rstd):
        """The same formulas on (M, K) arrays, with as few full-size temporaries as they allow."""
        xp, backend = self.xp, self.backend
        shape, K = x.shape, math.prod(x.shape[x.ndim - self.k:])
        dtype = backend.dtype_of(x.array)
        g2 = xp.reshape(gy.array, (-1, K))  # (M, K)
        rstd = rstd.array  # (M, 1)
        xhat = xp.reshape(x.array, (-1, K)) - mu.array
        xhat *= rstd  # (M, K)
        need_x, need_w, need_b = self.needs_input_grad[:3]
        rows = backend.full((g2.shape[0],), 1.0, dtype) if need_w or need_b else None  # (M,): column sums
        gx = gw = gb = None
        gxhat = g2 * xhat  # gy·x̂
        if need_w:
            gw = xp.reshape(rows @ gxhat, w.shape)  # Σ_rows gy·x̂
        if need_b:
            gb = xp.reshape(rows @ g2, w.shape if w is not None else shape[x.ndim - self.k:])  # Σ_rows gy
        if need_x:
            avg = backend.full((K,), 1.0 / K, dtype)  # (K,): row means
            if w is not None:
                w = xp.reshape(w.array, (K,))
                g = g2 * w  # ∂L/∂x̂
                gxhat *= w  # g·x̂
            else:
                g = g2 + 0.0  # a copy: updated in place below
            gxhat_mean = xp.reshape(gxhat @ avg, (-1, 1))  # (M, 1)
            g -= xp.reshape(g @ avg, (-1, 1))  # g - mean(g)
            xhat *= gxhat_mean
            g -= xhat
            g *= rstd
            gx = xp.reshape(g, shape)
        return tuple(None if a is None else gy._wrap(a) for a in (gx, gw, gb))

    def jvp(self, tx, tw, tb, _k, _eps):
        x, w, b = self.primals[:3]
        k, eps = self.k, self.eps  # x̂ = (x - μ)·rstd,  dx̂ = rstd·(dx - mean(dx) - x̂·mean(dx·x̂))
        axes = tuple(range(x.ndim - k, x.ndim))
        xc = x - x.mean(dim=axes, keepdim=True)
        rstd = ((xc * xc).mean(dim=axes, keepdim=True) + eps).rsqrt()
        xhat = xc * rstd
        dxhat = None
        if tx is not None:
            mean_t, mean_tx = tx.mean(dim=axes, keepdim=True), (tx * xhat).mean(dim=axes, keepdim=True)
            dxhat = rstd * (tx - mean_t - xhat * mean_tx)
            dxhat = dxhat if w is None else dxhat * w
        return add_tangents(dxhat, None if tw is None else xhat * tw,
                            None if tb is None else tb.expand(*x.shape))


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


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(‖x‖_p, eps) along dim (‖x‖_∞ = max |x|); a zero vector gets a zero norm gradient."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"normalize: expected a floating-point input, got {input.dtype} of shape "
                        f"{input.shape}; convert it with .float()")
    a = input.abs()
    if p == math.inf:
        norm = a.amax(dim=dim, keepdim=True)
    else:
        s = (a * a if p == 2 else a ** p).sum(dim=dim, keepdim=True)  # Σ |x|^p
        zero = s == 0  # where the gradient of s^(1/p) would be inf·0: the norm's is 0 there, as PyTorch
        safe = tt.where(zero, 1.0, s)
        norm = tt.where(zero, 0.0, safe.sqrt() if p == 2 else safe ** (1.0 / p))
    return input / norm.clamp(min=eps)


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


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    """e^x / Σ e^x along dim."""
    return tt.softmax(input, dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    """x - log Σ e^x along dim."""
    return tt.log_softmax(input, dim)


def relu(input: Tensor) -> Tensor:
    """max(x, 0)"""
    return tt.relu(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Φ(x); approximate="tanh" uses 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    return tt.gelu(input, approximate=approximate)


def silu(input: Tensor) -> Tensor:
    """x σ(x)"""
    return tt.silu(input)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x)"""
    return tt.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """tanh(x), elementwise (``tt.tanh``); ``torch.nn.functional.tanh``."""
    return tt.tanh(input)


__all__ = [
    "linear", "layer_norm", "rms_norm", "batch_norm", "normalize", "pad", "one_hot", "embedding", "dropout",
    "softmax", "log_softmax", "relu", "gelu", "silu", "sigmoid", "tanh", "LinearFn", "LayerNormFn",
]
