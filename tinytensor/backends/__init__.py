"""Backend registry: a plain dict from name to a factory, and devices resolved to backends.

``register(name, backend, device_type=...)`` adds one, ``get(name_or_device)`` returns the backend
instance (created on first use), ``available()`` lists those that can run here.
``tinytensor.backends.cuda.matmul.allow_tf32`` is PyTorch's TF32 switch for CUDA matmuls (``cuda.py``).
"""
from __future__ import annotations

from ..device import device as Device
from . import cuda
from .base import Backend
from .cupy_backend import CupyBackend
from .numpy_backend import NumpyBackend

__all__ = ["Backend", "register", "get", "available", "for_device", "canonical_device", "cuda"]

# name -> Backend instance or zero-argument factory; device type -> backend name
_registry: dict = {"numpy": NumpyBackend, "cupy": CupyBackend}
_device_types: dict[str, str] = {"cpu": "numpy", "cuda": "cupy"}
_instances: dict[str, Backend] = {}


def register(name: str, backend, device_type: str | None = None) -> None:
    """Register a Backend instance (or a factory) under ``name``; ``device_type`` routes devices to it."""
    _registry[name] = backend
    _instances.pop(name, None)
    if device_type is not None:
        _device_types[device_type] = name


def get(name: str) -> Backend:
    """The backend called ``name`` ("numpy", "cupy", ...), or the one serving device ``name``."""
    if name in _registry:
        return for_device(_device_of_backend(name))
    return for_device(name)


def _device_of_backend(name: str) -> str:
    for dtype_, bname in _device_types.items():
        if bname == name:
            return dtype_
    entry = _registry[name]
    return entry.device if isinstance(entry, Backend) else name


def canonical_device(device) -> Device:
    """'cuda' -> 'cuda:0', 'cpu:0' -> 'cpu'; a tt.device or Tensor device passes through."""
    if not isinstance(device, (str, Device)):
        raise TypeError(f"expected a device (a str such as 'cpu', or a tt.device), got "
                        f"{type(device).__name__}")
    kind = str(device).partition(":")[0]
    if kind not in _device_types:
        raise RuntimeError(
            f"unknown device {str(device)!r}; known device types: {sorted(_device_types)} "
            f"(register a backend with tinytensor.backends.register)"
        )
    return Device(device)


def for_device(device) -> Backend:
    """The backend instance that serves ``device`` (created on first use)."""
    device = canonical_device(device)
    backend = _instances.get(device)
    if backend is None:
        kind, _, index = device.partition(":")
        entry = _registry[_device_types[kind]]
        if isinstance(entry, Backend):
            backend = entry
        elif kind == "cuda":
            backend = entry(int(index))
        else:
            backend = entry()
        _instances[device] = backend
    return backend


def available() -> list[str]:
    """Names of the registered backends that can actually run on this machine."""
    names = []
    for name in _registry:
        try:
            get(name)
        except Exception:
            continue
        names.append(name)
    return names
