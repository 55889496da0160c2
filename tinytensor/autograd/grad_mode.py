"""Grad mode and anomaly mode, held in ContextVars so threads and asyncio tasks don't share them."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_grad_enabled: ContextVar[bool] = ContextVar("tinytensor_grad_enabled", default=True)
_anomaly: ContextVar[bool] = ContextVar("tinytensor_detect_anomaly", default=False)


def is_grad_enabled() -> bool:
    """Whether ops record the graph for backward right now."""
    return _grad_enabled.get()


@contextmanager
def set_grad_enabled(mode: bool):
    token = _grad_enabled.set(bool(mode))
    try:
        yield
    finally:
        _grad_enabled.reset(token)


def no_grad():
    """Context manager (and decorator) under which ops record no graph."""
    return set_grad_enabled(False)


def enable_grad():
    """Context manager that turns graph recording back on inside ``no_grad``."""
    return set_grad_enabled(True)


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
