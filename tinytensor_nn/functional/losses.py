"""Losses with PyTorch's semantics and signatures: cross_entropy (one fused log-softmax + NLL op),
nll_loss, mse_loss, l1_loss, smooth_l1_loss, huber_loss, kl_div, binary_cross_entropy and
binary_cross_entropy_with_logits.

The class dimension is dim 1, as in PyTorch: input (N, C) or (N, C, d1, ...) with target (N,) or
(N, d1, ...), or input (C,) with a 0-d target. Every class-index loss here is written as

    loss_m = -Σ_c a_mc · logp_mc        (one row m per sample / position)

where the "target weights" a_mc hold the one-hot target, the class weight, the ignore mask and the
label smoothing. With class weights, reduction="mean" divides by Σ_m weight[target_m] over the targets
that are not ignored (so it is a weighted mean), exactly as PyTorch does.

The elementwise losses compare input and target element by element (ℓ has the input's shape) and
then reduce: "none" keeps ℓ, "sum" is Σ ℓ, "mean" is Σ ℓ / numel. Each public function here has
PyTorch's signature (size_average and reduce are the deprecated spelling of reduction) and hands its
work to a private one that takes the name to use in error messages, so the loss Modules' errors name
the Module.
"""
from __future__ import annotations

import math
import warnings

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.autograd import Function
from tinytensor.autograd.dual import add as add_tangents

from .basic import _same_device

_REDUCTIONS = ("mean", "sum", "none")


class SoftmaxCrossEntropy(Function):
    """loss_m = -Σ_c a_mc · log softmax(z_m)_c for logits z (M, C) and target weights a (M, C).

    One backend kernel (log_softmax); backward is the Function ``SoftmaxCrossEntropyBackward``.
    """

    def forward(self, z, a):
        logp = self.backend.log_softmax(z, 1)  # (M, C)
        self.save_for_backward(z, a, logp)
        return -self.xp.sum(a * logp, axis=1)  # (M,)

    def backward(self, g):
        z, a, logp = self.saved_tensors
        need_z, need_a = self.needs_input_grad
        grads = SoftmaxCrossEntropyBackward.apply(g, z, a, logp, need_z, need_a)
        return grads if need_z and need_a else (grads, None) if need_z else (None, grads)

    def jvp(self, tz, ta):
        z, a = self.primals  # d loss = -Σ_c (da·log p + a·(dz - Σ p·dz))
        logp = z.log_softmax(-1)
        terms = [None if ta is None else -(ta * logp).sum(dim=-1)]
        if tz is not None:
            terms.append(a.sum(dim=-1) * (logp.exp() * tz).sum(dim=-1) - (a * tz).sum(dim=-1))
        return add_tangents(*terms)


class SoftmaxCrossEntropyBackward(Function):
    """The gradients of the loss rows from their gradient g (M,), with p = softmax(z) and s = Σ_c a:

        gz = g · (p·s - a),   ga = -g · log p      (the ones asked for: need_z, need_a).

    Its own backward (second order) and jvp are the derivatives of these formulas, with Tensor ops; log p
    is rebuilt from z there, so that it carries z's gradient.
    """

    def forward(self, g, z, a, logp, need_z, need_a):
        xp = self.xp
        self.need = (need_z, need_a)
        self.save_for_backward(g, z, a)
        g = xp.expand_dims(g, axis=-1)  # (M, 1)
        outs = []
        if need_z:
            gz = self.backend.exp(logp)
            gz *= xp.sum(a, axis=1, keepdims=True)
            gz -= a
            gz *= g
            outs.append(gz)
        if need_a:
            outs.append(-g * logp)
        return tuple(outs) if len(outs) > 1 else outs[0]

    def backward(self, *grads):
        grads = list(grads)
        Gz = grads.pop(0) if self.need[0] else None  # the gradients of gz and ga
        Ga = grads.pop(0) if self.need[1] else None
        g, z, a = self.saved_tensors
        g = g.unsqueeze(-1)  # (M, 1)
        logp = z.log_softmax(-1)
        p = logp.exp()
        s = a.sum(dim=-1, keepdim=True)
        d_g, d_z, d_a = [], [], []
        if Gz is not None:
            d_g.append((Gz * (p * s - a)).sum(dim=-1))
            d_z.append(g * s * p * (Gz - (Gz * p).sum(dim=-1, keepdim=True)))  # softmax's Jᵀ
            d_a.append(g * ((Gz * p).sum(dim=-1, keepdim=True) - Gz))
        if Ga is not None:
            d_g.append(-(Ga * logp).sum(dim=-1))
            d_z.append(-g * (Ga - p * Ga.sum(dim=-1, keepdim=True)))  # log_softmax's Jᵀ
        need = self.needs_input_grad
        return (add_tangents(*d_g) if need[0] else None, add_tangents(*d_z) if need[1] else None,
                add_tangents(*d_a) if need[2] and d_a else None, None, None, None)

    def jvp(self, tg, tz, ta, *_):
        g, z, a = self.primals[:3]
        g = g.unsqueeze(-1)
        tg = None if tg is None else tg.unsqueeze(-1)
        logp = z.log_softmax(-1)
        p = logp.exp()
        s = a.sum(dim=-1, keepdim=True)
        dlogp = None if tz is None else tz - (p * tz).sum(dim=-1, keepdim=True)
        outs = []
        if self.need[0]:  # d gz = dg·(p s - a) + g·(dp·s + p·ds - da), dp = p·dlog p
            inner = add_tangents(None if dlogp is None else p * dlogp * s,
                                 None if ta is None else p * ta.sum(dim=-1, keepdim=True) - ta)
            outs.append(add_tangents(None if tg is None else tg * (p * s - a),
                                     None if inner is None else g * inner))
        if self.need[1]:  # d ga = -dg·log p - g·dlog p
            outs.append(add_tangents(None if tg is None else -tg * logp,
                                     None if dlogp is None else -g * dlogp))
        return tuple(outs) if len(outs) > 1 else outs[0]


def _same_device_as_input(op: str, input: Tensor, target: Tensor) -> None:
    if target.backend is not input.backend:
        raise RuntimeError(f"{op}: the input is on {input.device} but the target is on {target.device}; move "
                           f"one of them with .to() (tinytensor never copies between devices implicitly)")


def _check_reduction(op: str, reduction: str, allowed: tuple = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's old (size_average, reduce) flags as a reduction: None counts as True; reduce=False is
    "none", else size_average picks "mean" or "sum". Without either flag, ``reduction`` as given."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce are deprecated (as in PyTorch); use reduction='mean', 'sum' or "
                  "'none' instead", UserWarning, stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def _classes_last(op: str, input: Tensor) -> tuple[Tensor, tuple]:
    """input (C,), (N, C) or (N, C, d1, ...) as (M, C) rows, and the batch shape of the rows."""
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    if input.ndim == 1:
        return input.unsqueeze(0), ()  # (1, C)
    if input.ndim == 2:
        return input, (input.shape[0],)  # (N, C)
    n, c = input.shape[:2]
    rest = input.shape[2:]
    z = input.permute(0, *range(2, input.ndim), 1)  # (N, d1, ..., C)
    return z.reshape(-1, c), (n, *rest)  # (N*d1*..., C)


def _target_weights(op: str, input: Tensor, target: Tensor, weight, ignore_index: int,
                    label_smoothing: float, batch_shape: tuple):
    """For class-index targets: a (M, C) = (1-ε)·w[t]·onehot(t) + ε/C·w (zero rows where t is ignored),
    and the mean's denominator Σ_m w[t_m] over the targets that are not ignored."""
    if target.dtype.is_floating_point or target.dtype.name == "bool":
        raise TypeError(
            f"{op}: class-index targets must be an integer tensor (int64), got {target.dtype} of shape "
            f"{target.shape} for input of shape {input.shape}; convert with target.long(), or pass class "
            f"probabilities as a float tensor of the input's shape"
        )
    if target.backend is not input.backend:
        raise RuntimeError(f"{op}: input is on {input.device} but target is on {target.device}; move one "
                           f"with .to()")
    if tuple(target.shape) != tuple(batch_shape):
        raise ValueError(
            f"{op}: expected target of shape {tuple(batch_shape)} for input of shape {input.shape} "
            f"(class dimension 1), got {target.shape}"
        )
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    a, wt = TargetWeights.apply(target, weight, c, ignore_index, label_smoothing, input.dtype, op)
    return a, wt.sum()


class TargetWeights(Function):
    """Class-index targets as the target weights of each row: a (M, C) = (1-ε)·w[t]·onehot(t) + ε/C·w,
    zero rows where t is ignored, and w[t] (M,), 0 where ignored (summed: the mean's denominator).
    No gradient: the targets are integers and the class weights constants, as in PyTorch. The target
    values are checked here, where they are at hand (also when func.vmap runs it on a batch).
    """

    differentiable = False

    def forward(self, target, weight, c, ignore_index, label_smoothing, dtype, op):
        backend, xp = self.backend, self.xp
        t = xp.reshape(target, (-1,))  # (M,)
        valid = t != ignore_index
        safe = xp.where(valid, t, xp.zeros_like(t))
        safe = backend.check_range(safe, 0, c, IndexError, lambda bad: f"{op}: target {bad} is out of bounds "
                                   f"for {c} classes (ignore_index={ignore_index})")  # deferred on a GPU
        keep = backend.astype(valid, dtype)  # (M,)
        if weight is None and not label_smoothing:  # a = onehot(t), an ignored row's index -1: zeros
            index = xp.where(valid, safe, xp.full_like(safe, -1))
            return backend.one_hot(index, c, backend.xp_dtype(dtype)), keep
        onehot = backend.one_hot(safe, c, backend.xp_dtype(dtype))  # (M, C)
        wt = keep if weight is None else xp.take(weight, safe) * keep  # (M,) weight of each row's target
        a = onehot * xp.expand_dims(wt * (1.0 - label_smoothing), axis=-1)
        if label_smoothing:
            spread = xp.expand_dims(keep * (label_smoothing / c), axis=-1)  # (M, 1)
            a = a + (spread if weight is None else spread * xp.expand_dims(weight, axis=0))
        return a, wt


def _check_weight(op: str, input: Tensor, weight, c: int) -> None:
    if weight is None:
        return
    _same_device(op, input, weight)
    if tuple(weight.shape) != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},) (one per class), got {weight.shape}")
    if weight.dtype is not input.dtype:
        raise TypeError(f"{op}: weight is {weight.dtype} but input is {input.dtype}; convert one of them")


def _reduce(loss: Tensor, reduction: str, batch_shape: tuple, denom) -> Tensor:
    if reduction == "none":
        return loss.reshape(batch_shape)
    if reduction == "sum":
        return loss.sum()
    if isinstance(denom, Tensor):  # Σ w[t] over the targets not ignored: 0 when every one is ignored,
        none = denom == 0  # and then the mean is NaN (0/0) but its gradient 0, as PyTorch's (not 0·∞)
        return tt.where(none, math.nan, loss.sum() / tt.where(none, 1.0, denom))
    return loss.sum() / denom


def _cross_entropy(op: str, input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                   reduction: str, label_smoothing: float) -> Tensor:
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be floating-point logits, got {input.dtype}")
    z, batch_shape = _classes_last(op, input)  # (M, C)
    c = z.shape[1]
    _check_weight(op, input, weight, c)
    if target.dtype.is_floating_point and tuple(target.shape) == tuple(input.shape):
        _same_device_as_input(op, input, target)
        q, _ = _classes_last(op, target.to(dtype=input.dtype))  # (M, C) class probabilities
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + label_smoothing / c
        a = q if weight is None else q * weight
        loss = SoftmaxCrossEntropy.apply(z, a)  # (M,)
        return _reduce(loss, reduction, batch_shape, z.shape[0] or float("nan"))  # mean over rows
    a, denom = _target_weights(op, input, target, weight, ignore_index, label_smoothing, batch_shape)
    loss = SoftmaxCrossEntropy.apply(z, a)  # (M,)
    return _reduce(loss, reduction, batch_shape, denom)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """-Σ_c a_c log softmax(x)_c with class dim 1; targets are class indices or class probabilities.

    With indices t and smoothing ε: a = (1-ε)·w[t]·onehot(t) + ε/C·w; "mean" divides by Σ w[t] over
    non-ignored targets. With probabilities q (same shape as input): a = w·((1-ε)q + ε/C); "mean" divides
    by the number of rows N·d1·...
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _cross_entropy("cross_entropy", input, target, weight, ignore_index, reduction, label_smoothing)


def _nll_loss(op: str, input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
              reduction: str) -> Tensor:
    _check_reduction(op, reduction)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be floating-point log-probabilities, got {input.dtype}")
    z, batch_shape = _classes_last(op, input)  # (M, C)
    _check_weight(op, input, weight, z.shape[1])
    a, denom = _target_weights(op, input, target, weight, ignore_index, 0.0, batch_shape)
    loss = -(z * a).sum(dim=-1)  # (M,): picks -w[t]·logp[t] from each row
    return _reduce(loss, reduction, batch_shape, denom)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """-w[t] · input[t] for log-probabilities input (class dim 1); "mean" divides by Σ w[t] (non-ignored)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _nll_loss("nll_loss", input, target, weight, ignore_index, reduction)


# ---- elementwise losses -----------------------------------------------------------------------

def _pointwise(op: str, input: Tensor, target: Tensor, reduction: str, warn: bool = True,
               reductions: tuple = _REDUCTIONS) -> None:
    """The checks every elementwise loss shares: the reduction, one device, floating-point input, and
    PyTorch's warning when target and input shapes differ (they are broadcast)."""
    _check_reduction(op, reduction, reductions)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    _same_device_as_input(op, input, target)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype} of shape {input.shape}; "
                        f"convert it with .float()")
    if warn and tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"{op}: target shape {target.shape} differs from input shape {input.shape}; they will be "
            f"broadcast, which is likely not what you want", UserWarning, stacklevel=4,
        )


def _reduce_elementwise(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _mse_loss(op: str, input: Tensor, target: Tensor, reduction: str) -> Tensor:
    _pointwise(op, input, target, reduction)
    d = input - target
    return _reduce_elementwise(d * d, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    """ℓ = (x - y)², reduced (shapes broadcast, with a warning, as PyTorch)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _mse_loss("mse_loss", input, target, reduction)


def _l1_loss(op: str, input: Tensor, target: Tensor, reduction: str) -> Tensor:
    _pointwise(op, input, target, reduction)
    return _reduce_elementwise((input - target).abs(), reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    """ℓ = |x - y|, reduced."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _l1_loss("l1_loss", input, target, reduction)


def _smooth_l1_loss(op: str, input: Tensor, target: Tensor, reduction: str, beta: float) -> Tensor:
    if beta < 0:
        raise ValueError(f"{op}: beta must be >= 0, got {beta} (beta = 0 is the L1 loss)")
    _pointwise(op, input, target, reduction)
    d = (input - target).abs()
    if beta == 0:
        return _reduce_elementwise(d, reduction)
    loss = tt.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce_elementwise(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """ℓ = 0.5·d²/beta where d = |x - y| < beta, else d - 0.5·beta (Girshick, 2015), reduced."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _smooth_l1_loss("smooth_l1_loss", input, target, reduction, beta)


def _huber_loss(op: str, input: Tensor, target: Tensor, reduction: str, delta: float) -> Tensor:
    if delta <= 0:
        raise ValueError(f"{op}: delta must be > 0, got {delta}")
    _pointwise(op, input, target, reduction)
    d = (input - target).abs()
    loss = tt.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _reduce_elementwise(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """ℓ = 0.5·d² where d = |x - y| < delta, else delta·(d - 0.5·delta) (= delta · smooth_l1 with
    beta = delta), reduced."""
    return _huber_loss("huber_loss", input, target, reduction, delta)


def _kl_div(op: str, input: Tensor, target: Tensor, reduction: str, log_target: bool) -> Tensor:
    # PyTorch broadcasts kl_div's target without a warning
    _pointwise(op, input, target, reduction, warn=False, reductions=_REDUCTIONS + ("batchmean",))
    if reduction == "mean":
        warnings.warn(f"{op}: reduction='mean' divides the total loss by both the batch size and the "
                      f"support size; 'batchmean' divides only by the batch size and is the KL divergence. "
                      f"'mean' will be changed to behave the same as 'batchmean' in a future PyTorch",
                      UserWarning, stacklevel=4)
    if log_target:
        loss = target.exp() * (target - input)  # q·(log q - log p), q given as log q
    else:  # q·log q - q·log p, with 0·log 0 = 0 (xlogy): log is taken of 1 where q = 0
        q_log_q = target * tt.where(target == 0, 1.0, target).log()
        loss = q_log_q - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    return _reduce_elementwise(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(q ‖ p) pointwise for input = log p: ℓ = q·(log q - log p), target q (or log q with
    log_target); reduction "batchmean" is Σ ℓ / batch size, the true KL divergence."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _kl_div("kl_div", input, target, reduction, log_target)


# ---- binary cross entropy ---------------------------------------------------------------------

_BCE_EPS = 9.999999960041972e-13  # PyTorch's 1e-12 as its kernel holds it (rounded to float32)


class BinaryCrossEntropy(Function):
    """ℓ = -(t·log x + (1 - t)·log(1 - x)), each log clamped at -100 (PyTorch's: ℓ stays finite at
    x = 0 or 1). Backward, PyTorch's formulas:
        ∂ℓ/∂x = (x - t) / max(x·(1 - x), 1e-12),   ∂ℓ/∂t = log(1 - x) - log x.
    """

    def forward(self, x, t):
        xp = self.xp
        self.save_for_backward(x, t)
        log_x = xp.clip(xp.log(x), min=-100.0)
        log_1mx = xp.clip(xp.log1p(-x), min=-100.0)
        return -(t * log_x + (1.0 - t) * log_1mx)

    def backward(self, g):
        x, t = self.saved_tensors
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = g * (x - t) / (x * (1.0 - x)).clamp(min=_BCE_EPS)
        if self.needs_input_grad[1]:
            gt = g * ((1.0 - x).log() - x.log())
        return gx, gt

    def jvp(self, tx, tt_):
        x, t = self.primals
        return add_tangents(None if tx is None else tx * (x - t) / (x * (1.0 - x)).clamp(min=_BCE_EPS),
                            None if tt_ is None else tt_ * ((1.0 - x).log() - x.log()))


class Softplus(Function):
    """log(1 + eˣ), computed as max(x, 0) + log1p(e^-|x|) (no overflow); d/dx = σ(x)."""

    def forward(self, x):
        xp = self.xp
        self.save_for_backward(x)
        return xp.clip(x, min=0.0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * x.sigmoid()

    def jvp(self, tx):
        return tx * self.primals[0].sigmoid()  # d softplus = σ(x) dx


def _binary_target(op: str, input: Tensor, target: Tensor, weight: Tensor | None, reduction: str,
                   same_size: str) -> Tensor:
    """The checks both binary cross entropies share; the target in the input's dtype."""
    _check_reduction(op, reduction)
    _same_device_as_input(op, input, target)
    _same_device(op, input, weight)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype} of shape {input.shape}; "
                        f"convert it with .float()")
    if not target.dtype.is_floating_point:
        raise TypeError(
            f"{op}: target must be floating point (a probability per element), got {target.dtype} of shape "
            f"{target.shape}; convert it with target.to(input.dtype) (or .float())"
        )
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: {same_size.format(t=target.shape, x=input.shape)}; reshape the target to "
                         f"{input.shape} (e.g. target.reshape(input.shape) or input.squeeze(-1))")
    if weight is not None:
        tt.broadcast_shapes(tuple(weight.shape), tuple(input.shape), op=f"{op} (weight against input)")
    return target.to(dtype=input.dtype)


def _binary_cross_entropy(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                          reduction: str) -> Tensor:
    target = _binary_target(op, input, target, weight, reduction,
                            "target shape {t} differs from input shape {x} (PyTorch refuses this)")
    if input.numel():
        xp = input.backend.xp
        lo, hi = float(xp.min(input.array)), float(xp.max(input.array))
        if not (0.0 <= lo and hi <= 1.0):
            raise RuntimeError(
                f"{op}: all elements of input should be between 0 and 1, got values in [{lo:g}, {hi:g}] "
                f"(input of shape {input.shape}); apply sigmoid first, or better pass the logits to "
                f"binary_cross_entropy_with_logits (BCEWithLogitsLoss)"
            )
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce_elementwise(loss, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """ℓ = -w·(t·log x + (1 - t)·log(1 - x)) for probabilities x in [0, 1], logs clamped at -100."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _binary_cross_entropy("binary_cross_entropy", input, target, weight, reduction)


def _binary_cross_entropy_with_logits(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                                      reduction: str, pos_weight: Tensor | None) -> Tensor:
    target = _binary_target(op, input, target, weight, reduction,
                            "target size {t} must be the same as input size {x}")
    if pos_weight is not None:
        _same_device(op, input, pos_weight)
        tt.broadcast_shapes(tuple(pos_weight.shape), tuple(input.shape),
                            op=f"{op} (pos_weight against input)")
    # ℓ = -[p·t·log σ(x) + (1 - t)·log(1 - σ(x))] = (1 - t)·x + (1 + (p - 1)·t)·softplus(-x)
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1.0) * target + 1.0
    loss = (1.0 - target) * input + log_weight * Softplus.apply(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce_elementwise(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """ℓ = -w·[p·t·log σ(x) + (1 - t)·log(1 - σ(x))] for logits x, computed stably; pos_weight p
    (broadcast along the last dim: one per class) weighs the positives."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _binary_cross_entropy_with_logits("binary_cross_entropy_with_logits", input, target, weight,
                                             reduction, pos_weight)


__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "legacy_reduction",
]
