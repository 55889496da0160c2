"""Grad mode and anomaly mode, held in ContextVars so threads and asyncio tasks don't share them."""
from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar

_grad_enabled: ContextVar[bool] = ContextVar("tinytensor_grad_enabled", default=True)
_anomaly: ContextVar[bool] = ContextVar("tinytensor_detect_anomaly", default=False)


def is_grad_enabled() -> bool:
    """Whether ops record the graph for backward right now."""
    return _grad_enabled.get()


class _GradMode:
    """A grad-mode switch, as PyTorch's: a context manager (``with no_grad():``) and a decorator, with or
    without parentheses (``@no_grad()``, ``@no_grad``). Each ``with`` restores the mode it found."""

    mode = False

    def __new__(cls, *args, **kwargs):
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])  # bare @no_grad on a function
        return super().__new__(cls)

    def __init__(self):
        self._tokens = []

    def __enter__(self):
        self._tokens.append(_grad_enabled.set(self.mode))
        return self

    def __exit__(self, *exc):
        _grad_enabled.reset(self._tokens.pop())

    def clone(self):
        """A fresh switch of the same kind, for the decorator's calls (each call enters its own)."""
        return type(self)()

    def __call__(self, fn):
        @functools.wraps(fn)
        def run_in_mode(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)

        return run_in_mode


class no_grad(_GradMode):
    """Ops record no graph inside (results have requires_grad=False)."""

    mode = False


class enable_grad(_GradMode):
    """Graph recording back on inside ``no_grad``."""

    mode = True


class inference_mode(_GradMode):
    """PyTorch's inference mode; here the same as ``no_grad`` (``inference_mode(False)``: unchanged).
    Tensors made inside are ordinary tensors, not PyTorch's inference tensors that refuse later use
    in autograd."""

    def __init__(self, mode: bool = True):
        super().__init__()
        self.enabled = bool(mode)

    def __enter__(self):
        self._tokens.append(_grad_enabled.set(False if self.enabled else is_grad_enabled()))
        return self

    def clone(self):
        """A fresh switch of the same kind, for the decorator's calls (each call enters its own)."""
        return type(self)(self.enabled)


class set_grad_enabled(_GradMode):
    """Set grad mode now (``set_grad_enabled(False)`` as a call), or for a ``with`` block, restoring the
    previous mode at its end."""

    def __init__(self, mode: bool):
        super().__init__()
        self.mode = bool(mode)
        self._prev = _grad_enabled.get()
        _grad_enabled.set(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _grad_enabled.set(self._prev)

    def clone(self):
        """A fresh switch of the same kind, for the decorator's calls (each call enters its own)."""
        return type(self)(self.mode)


def is_anomaly_enabled() -> bool:
    return _anomaly.get()


@contextmanager
def detect_anomaly():
    """Raise at the first NaN/inf a backward step produces, naming the op that produced it."""
    token = _anomaly.set(True)
    try:
        yield
    finally:
        _anomaly.reset(token)
