"""Gradient utilities: clip_grad_norm_ and clip_grad_value_ (PyTorch's semantics)."""
from __future__ import annotations

import math

import tinytensor as tt
from tinytensor import Tensor


def _grads(parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    for g in grads[1:]:
        if g.backend is not grads[0].backend:
            raise RuntimeError(
                f"clip_grad: gradients live on {grads[0].device} and {g.device}; clip each device's "
                f"parameters separately"
            )
    return grads


def _norm(xp, a, p: float):
    """‖a‖_p of all elements as a 0-d array."""
    if p == math.inf:
        return xp.max(xp.abs(a)) if a.size else xp.sum(a)  # an empty max is 0
    if p == 2.0:
        return xp.sqrt(xp.sum(a * a))
    return xp.sum(xp.abs(a) ** p) ** (1.0 / p)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients in place by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ being the norm of all
    gradients together; returns that total norm (a 0-d tensor)."""
    norm_type = float(norm_type)
    grads = _grads(parameters)
    if not grads:
        return tt.tensor(0.0)
    backend = grads[0].backend
    xp = backend.xp
    norms = xp.stack([_norm(xp, g.array, norm_type) for g in grads])
    total = _norm(xp, norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite "
            f"({float(total)}); pass error_if_nonfinite=False to clip anyway"
        )
    coef = xp.minimum(max_norm / (total + 1e-6), xp.ones_like(total))
    for g in grads:
        g.array[...] = g.array * backend.astype(coef, g.dtype)
        g._version[0] += 1
    return Tensor(total, backend)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    c = float(clip_value)
    for g in _grads(parameters):
        g.array[...] = g.backend.xp.clip(g.array, -c, c)
        g._version[0] += 1


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
