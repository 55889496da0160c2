"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from __future__ import annotations

from tinytensor import Tensor

from .optimizer import Optimizer, _modified


class SGD(Optimizer):
    """PyTorch's SGD. With g = ∇ + λθ:  b ← μb + (1-τ)g  (b = g at the first step);
    d = g + μb (nesterov) or b;  θ ← θ - lr·d."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None):
        self._one_implementation(foreach, fused, False, differentiable)
        if lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate {lr}")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=bool(maximize)))

    def step(self) -> None:
        for group in self.param_groups:
            lr, mu, tau = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group.get("maximize", False)
            for p, g, state in self._params_with_grad(group):
                if maximize:
                    g = -g
                if wd != 0:
                    g = g + wd * p.array
                if mu != 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = Tensor(g * 1.0, p.backend)  # a copy
                    else:  # in place: b ← μb + (1-τ)g
                        buf.array *= mu
                        buf.array += (1 - tau) * g
                        _modified(buf)
                    g = g + mu * buf.array if nesterov else buf.array
                p.array -= lr * g  # in place: θ ← θ - lr·d
                _modified(p)
