"""Losses with PyTorch's semantics: cross_entropy (one fused log-softmax + NLL op), nll_loss, mse_loss.

The class dimension is dim 1, as in PyTorch: input (N, C) or (N, C, d1, ...) with target (N,) or
(N, d1, ...), or input (C,) with a 0-d target. Every class-index loss here is written as

    loss_m = -Σ_c a_mc · logp_mc        (one row m per sample / position)

where the "target weights" a_mc hold the one-hot target, the class weight, the ignore mask and the
label smoothing. With class weights, reduction="mean" divides by Σ_m weight[target_m] over the targets
that are not ignored (so it is a weighted mean), exactly as PyTorch does.
"""
from __future__ import annotations

import warnings

from tinytensor import Tensor
from tinytensor.autograd import Function, is_grad_enabled

from .basic import _same_device

_REDUCTIONS = ("mean", "sum", "none")


class SoftmaxCrossEntropy(Function):
    """loss_m = -Σ_c a_mc · log softmax(z_m)_c for logits z (M, C) and target weights a (M, C).

    Backward, with p = softmax(z):  ∂L/∂z = g · (p · Σ_c a - a),   ∂L/∂a = -g · log p.
    """

    def forward(self, z, a):
        logp = self.backend.log_softmax(z, 1)  # (M, C)
        self.save_for_backward(z, a, logp)
        return -self.xp.sum(a * logp, axis=1)  # (M,)

    def backward(self, g):
        z, a, logp = self.saved_tensors
        if is_grad_enabled():  # create_graph: recompute log p from z so it carries z's gradient
            logp = z.log_softmax(-1)
        g = g.unsqueeze(-1)  # (M, 1)
        gz = ga = None
        if self.needs_input_grad[0]:
            gz = g * (logp.exp() * a.sum(dim=-1, keepdim=True) - a)
        if self.needs_input_grad[1]:
            ga = -g * logp
        return gz, ga


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


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
    backend, xp = input.backend, input.backend.xp
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    t = xp.reshape(target.array, (-1,))  # (M,)
    valid = t != ignore_index
    safe = xp.where(valid, t, xp.zeros_like(t))
    if safe.shape[0]:
        lo, hi = backend.bounds(safe)
        if lo < 0 or hi >= c:
            raise IndexError(
                f"{op}: target {hi if hi >= c else lo} is out of bounds for {c} classes "
                f"(ignore_index={ignore_index})"
            )
    hit = xp.expand_dims(safe, axis=-1) == backend.arange(c, dtype=safe.dtype)  # (M, C)
    onehot = backend.astype(hit, input.dtype)
    keep = backend.astype(valid, input.dtype)  # (M,)
    w = None if weight is None else weight.array
    wt = keep if w is None else xp.take(w, safe) * keep  # (M,) weight of each row's target
    a = onehot * xp.expand_dims(wt * (1.0 - label_smoothing), axis=-1)
    if label_smoothing:
        spread = xp.expand_dims(keep * (label_smoothing / c), axis=-1)  # (M, 1)
        a = a + (spread if w is None else spread * xp.expand_dims(w, axis=0))
    return Tensor(a, backend), Tensor(xp.sum(wt), backend)


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
    return loss.sum() / denom


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """-Σ_c a_c log softmax(x)_c with class dim 1; targets are class indices or class probabilities.

    With indices t and smoothing ε: a = (1-ε)·w[t]·onehot(t) + ε/C·w; "mean" divides by Σ w[t] over
    non-ignored targets. With probabilities q (same shape as input): a = w·((1-ε)q + ε/C); "mean" divides
    by the number of rows N·d1·...
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be floating-point logits, got {input.dtype}")
    z, batch_shape = _classes_last(op, input)  # (M, C)
    c = z.shape[1]
    _check_weight(op, input, weight, c)
    if target.dtype.is_floating_point and tuple(target.shape) == tuple(input.shape):
        _same_device(op, input, target)
        q, _ = _classes_last(op, target.to(dtype=input.dtype))  # (M, C) class probabilities
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + label_smoothing / c
        a = q if weight is None else q * weight
        loss = SoftmaxCrossEntropy.apply(z, a)  # (M,)
        return _reduce(loss, reduction, batch_shape, z.shape[0] or float("nan"))  # mean over rows
    a, denom = _target_weights(op, input, target, weight, ignore_index, label_smoothing, batch_shape)
    loss = SoftmaxCrossEntropy.apply(z, a)  # (M,)
    return _reduce(loss, reduction, batch_shape, denom)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-w[t] · input[t] for log-probabilities input (class dim 1); "mean" divides by Σ w[t] (non-ignored)."""
    op = "nll_loss"
    _check_reduction(op, reduction)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be floating-point log-probabilities, got {input.dtype}")
    z, batch_shape = _classes_last(op, input)  # (M, C)
    _check_weight(op, input, weight, z.shape[1])
    a, denom = _target_weights(op, input, target, weight, ignore_index, 0.0, batch_shape)
    loss = -(z * a).sum(dim=-1)  # (M,): picks -w[t]·logp[t] from each row
    return _reduce(loss, reduction, batch_shape, denom)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """(input - target)², averaged or summed (shapes broadcast, with a warning, as PyTorch)."""
    op = "mse_loss"
    _check_reduction(op, reduction)
    _same_device(op, input, target)
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"mse_loss: target shape {target.shape} differs from input shape {input.shape}; they will be "
            f"broadcast, which is likely not what you want", UserWarning, stacklevel=2,
        )
    d = input - target
    sq = d * d
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()
