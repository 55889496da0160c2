"""Reverse-mode autograd: Function, grad, gradcheck, grad mode, anomaly detection, and tools to
look inside a backward pass (explain, why_no_grad, memory_report)."""
from . import dual, forward_ad
from .engine import queue_callback
from .explain import explain, why_no_grad
from .function import Function
from .functional import grad, gradcheck, gradgradcheck, numerical_vjp
from .grad_mode import (
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .memory import memory_report

__all__ = [
    "Function", "grad", "gradcheck", "gradgradcheck", "numerical_vjp", "detect_anomaly", "enable_grad",
    "inference_mode", "is_grad_enabled", "no_grad", "set_grad_enabled", "explain", "why_no_grad",
    "memory_report", "queue_callback",
]
