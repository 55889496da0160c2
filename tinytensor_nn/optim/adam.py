"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as PyTorch computes them."""
from __future__ import annotations

import math

from tinytensor import Tensor

from .optimizer import Optimizer, _modified


class Adam(Optimizer):
    """m ← β₁m + (1-β₁)g,  v ← β₂v + (1-β₂)g²,
    θ ← θ - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + eps)   (v replaced by its running max with amsgrad).
    Adam's weight_decay adds λθ to g; AdamW's multiplies θ by (1 - lr·λ) instead (decoupled).
    ``torch.optim.Adam``.

    Args:
        params: The parameters (``model.parameters()``), or a list of dicts, each a group with its
            own hyper-parameters (``[{"params": ..., "lr": 1e-4}, ...]``).
        lr: The learning rate.
        betas: (β₁, β₂), the decay rates of the running averages of g and g².
        eps: Added to the denominator, for stability.
        weight_decay: λ, the L2 penalty added to the gradient.
        amsgrad: Use the running maximum of v (Reddi et al., 2018).
        maximize: Maximize the objective (step along +g).
        foreach, fused, capturable, differentiable: PyTorch's implementation switches; ``foreach`` and
            ``fused`` are accepted and change nothing (there is one implementation), the other two
            raise NotImplementedError when True.

    Examples:
        >>> model = nn.Linear(4, 1)
        >>> opt = tt.optim.Adam(model.parameters(), lr=1e-2)
        >>> loss = model(tt.randn(8, 4)).pow(2).mean()
        >>> opt.zero_grad()
        >>> loss.backward()
        >>> opt.step()
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None):
        name = type(self).__name__
        self._one_implementation(foreach, fused, capturable, differentiable)
        if lr < 0.0:
            raise ValueError(f"{name}: invalid learning rate {lr}")
        if eps < 0.0:
            raise ValueError(f"{name}: invalid eps {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=bool(maximize)))

    def _expected_state(self, group: dict) -> dict:
        names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        return {"step": int, **{n: Tensor for n in names}}

    def step(self) -> None:
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group.get("maximize", False)
            for p, g, state in self._params_with_grad(group):
                xp = p.backend.xp
                if maximize:
                    g = -g
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = Tensor(xp.zeros_like(p.array), p.backend)
                    state["exp_avg_sq"] = Tensor(xp.zeros_like(p.array), p.backend)
                    if amsgrad:
                        state["max_exp_avg_sq"] = Tensor(xp.zeros_like(p.array), p.backend)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                # every update below is in place on p's, m's and v's arrays; tmp is the one scratch array
                if wd != 0:
                    if self.decoupled:
                        p.array *= 1 - lr * wd
                    else:
                        g = g + wd * p.array
                tmp = g - m.array
                tmp *= 1 - b1
                m.array += tmp  # m ← m + (1-β₁)(g - m), a lerp towards g (PyTorch's rounding)
                tmp = g * g
                tmp *= 1 - b2
                v.array *= b2
                v.array += tmp  # v ← β₂v + (1-β₂)g²
                if amsgrad:
                    vmax = state["max_exp_avg_sq"]
                    vmax.array[...] = xp.maximum(vmax.array, v.array)
                    _modified(vmax)
                    v = vmax
                step_size = lr / (1 - b1 ** t)
                denom = xp.sqrt(v.array)
                denom /= math.sqrt(1 - b2 ** t)
                denom += eps  # √v̂ + eps
                tmp = m.array / denom
                tmp *= step_size
                p.array -= tmp  # θ ← θ - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + eps)
                _modified(p, m, state["exp_avg_sq"])


class AdamW(Adam):
    """Adam with decoupled weight decay θ ← θ(1 - lr·λ) (default λ = 0.01)."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **switches):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         **switches)
