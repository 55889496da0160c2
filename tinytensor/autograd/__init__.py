"""Reverse-mode autograd: Function, grad, gradcheck, grad mode and anomaly detection."""
from .function import Function
from .functional import grad, gradcheck, gradgradcheck
from .grad_mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = [
    "Function", "grad", "gradcheck", "gradgradcheck", "detect_anomaly", "enable_grad",
    "is_grad_enabled", "no_grad", "set_grad_enabled",
]
