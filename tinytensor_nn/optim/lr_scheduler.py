"""Learning-rate schedules: each sets ``group["lr"]`` from a closed form in the step count.

As in PyTorch, constructing a scheduler already applies step 0, and ``scheduler.step()`` goes after
``optimizer.step()``:

    sched = NoamLR(opt, d_model=512, warmup_steps=4000)
    for batch in data:
        loss.backward(); opt.step(); opt.zero_grad(); sched.step()
"""
from __future__ import annotations

import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses write ``get_lr()`` (one lr per group at step ``last_epoch``)."""

    _not_state = ("optimizer",)

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, g in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                g.setdefault("initial_lr", g["lr"])
            elif "initial_lr" not in g:
                raise KeyError(f"{type(self).__name__}: param group {i} has no 'initial_lr' to resume from")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        """The learning rate of each param group at step ``last_epoch`` (each schedule writes its own)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new learning rates into the optimizer."""
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step() set, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer (and functions); plain numbers and lists."""
        return {k: v for k, v in self.__dict__.items() if k not in self._not_state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the schedule from `state_dict` (its position and hyper-parameters)."""
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in self._not_state})


class LambdaLR(LRScheduler):
    """lr = base_lr · lr_lambda(step) (one function, or one per group)."""

    _not_state = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per group), got {len(lambdas)}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]


class NoamLR(LRScheduler):
    """The Transformer schedule (Vaswani et al., 2017), in absolute terms (the groups' lr is replaced):
    lr = factor · d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5), with step 0 counted as 1."""

    def __init__(self, optimizer: Optimizer, d_model: int, warmup_steps: int, factor: float = 1.0,
                 last_epoch: int = -1):
        if d_model <= 0 or warmup_steps <= 0:
            raise ValueError(f"NoamLR: d_model and warmup_steps must be positive, got {d_model}, "
                             f"{warmup_steps}")
        self.d_model, self.warmup_steps, self.factor = d_model, warmup_steps, factor
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        step = max(self.last_epoch, 1)
        lr = self.factor * self.d_model ** -0.5 * min(step ** -0.5, step * self.warmup_steps ** -1.5)
        return [lr for _ in self.base_lrs]


class WarmupCosineLR(LRScheduler):
    """Linear warm-up to base_lr, then a cosine down to eta_min at total_steps, then eta_min:

        step < warmup:      base_lr · (step + 1) / (warmup + 1)
        warmup ≤ step ≤ T:  eta_min + (base_lr - eta_min) · ½(1 + cos(π (step - warmup) / (T - warmup)))
        step > T:           eta_min                                       (T = total_steps)
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if warmup_steps < 0 or total_steps <= warmup_steps:
            raise ValueError(
                f"WarmupCosineLR: need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}"
            )
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        s, w, n = self.last_epoch, self.warmup_steps, self.total_steps
        if s < w:
            return [base * (s + 1) / (w + 1) for base in self.base_lrs]
        if s > n:
            return [self.eta_min for _ in self.base_lrs]
        cos = 0.5 * (1.0 + math.cos(math.pi * (s - w) / (n - w)))
        return [self.eta_min + (base - self.eta_min) * cos for base in self.base_lrs]


__all__ = ["LRScheduler", "LambdaLR", "NoamLR", "WarmupCosineLR"]
