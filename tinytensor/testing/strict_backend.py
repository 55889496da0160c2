"""A CuPy stand-in for CPU-only machines: a backend over ``array_api_strict``, and a counter of the
device→host synchronisations made on it.

array_api_strict implements only the Array API standard. Its arrays live on array_api_strict's
second, non-CPU device ("device1"), where they refuse every implicit conversion to NumPy and every
mix with arrays on its CPU device, as CuPy arrays do. The op suite passing on it shows the engine
has no NumPy-only code path and creates no array without placing it on the tensor's device.
Its device type is ``"strict"``: ``tt.tensor(data, device="strict")``.

On a GPU, every read of a value on the host (``bool(a)``, ``int(a)``, ``float(a)``, ``a.item()``,
a copy to NumPy) waits until the device has finished all the work queued before it: a training
step that reads one stalls the GPU once per read. ``count_host_syncs()`` counts them on the strict
device, so a test can say that a step reads none:

    with count_host_syncs() as syncs:
        loss = step(model)           # forward, backward, optimizer step on device="strict"
    assert syncs.count == 0, syncs   # the message lists each read: its kind, the op, the stack
"""
from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..autograd.function import Function
from ..backends import Backend, deferred, register

__all__ = ["StrictBackend", "register_strict_backend", "count_host_syncs", "HostSyncs", "Transfer"]


class StrictBackend(Backend):
    """The backend over ``array_api_strict`` on its non-CPU device, registered as device type ``"strict"``."""
    name = "strict"
    # Reads are syncs here (syncs_on_read), so value checks (an index out of range) wait for the next host
    # sync, as on a GPU (backends/deferred.py); the test suite runs them at once (checks_at_once) where
    # it expects the raise at the op.
    defers_checks = True

    def __init__(self):
        import array_api_strict

        super().__init__(array_api_strict, "strict", array_device=array_api_strict.Device("device1"))

    def from_host(self, a):
        # a C-contiguous copy (np.ascontiguousarray would turn a 0-d array into shape (1,))
        return self.xp.asarray(np.array(a, order="C", copy=True), **self._place)

    def to_host(self, a):
        # the one sanctioned way out: an explicit copy to the CPU device, as cupy.asnumpy is
        return np.from_dlpack(a.to_device(self.xp.Device("CPU_DEVICE"))).copy()

    def bounds(self, index):
        """(min, max) of an integer array as Python ints."""
        xp = self.xp
        return int(xp.min(index)), int(xp.max(index))


def register_strict_backend() -> bool:
    """Register the stand-in as backend "strict" (device "strict"); False if array_api_strict is missing."""
    try:
        import array_api_strict  # noqa: F401
    except ImportError:
        return False
    register("strict", StrictBackend, device_type="strict")
    return True


# ---- counting host syncs and host→device copies ---------------------------------------------------

@dataclass
class Transfer:
    """One copy between host and device: its ``kind`` (``"bool()"``, ``"to_device(CPU)"``,
    ``"asarray(ndarray)"``...), the ``op`` (the Function) running then, if any, the line that made
    it (``site``) and the stack (the innermost 12 frames, innermost last)."""

    kind: str
    op: str | None
    site: str
    stack: list[str] = field(repr=False)

    def __str__(self) -> str:
        op = f" in {self.op}" if self.op else ""
        return f"{self.kind}{op} at {self.site}"


class HostSyncs:
    """What ``count_host_syncs()`` saw: ``count`` device→host reads (each a sync on a GPU), listed in
    ``where``, and ``to_device_count`` host→device copies, listed in ``to_device_where``."""

    def __init__(self):
        self.where: list[Transfer] = []
        self.to_device_where: list[Transfer] = []

    @property
    def count(self) -> int:
        """The number of device→host reads (bool, int, float, index, complex, a copy to the host)."""
        return len(self.where)

    @property
    def to_device_count(self) -> int:
        """The number of host→device copies (arrays made from host data on the strict device)."""
        return len(self.to_device_where)

    def __str__(self) -> str:
        lines = [f"{self.count} device→host sync(s), {self.to_device_count} host→device copy(ies)"]
        lines += [f"  sync {i}: {t}\n      " + "\n      ".join(t.stack) for i, t in enumerate(self.where)]
        lines += [f"  copy {i}: {t}" for i, t in enumerate(self.to_device_where)]
        return "\n".join(lines)

    __repr__ = __str__


_active: list[HostSyncs] = []  # the counters of the open count_host_syncs() blocks, innermost last
_originals: dict = {}  # (owner, name) -> what _patch replaced there, while a block is open
# the Array methods that hand a value to the host (__repr__ and __str__ print the values)
_READS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__dlpack__", "__repr__", "__str__")
# the functions whose result's shape depends on the values: CuPy reads them (a sync) to size it
_SHAPED_BY_VALUES = ("nonzero", "unique_all", "unique_counts", "unique_inverse", "unique_values")
_ROOT = Path(__file__).resolve().parents[2]  # stack lines are shown relative to it


@contextmanager
def count_host_syncs():
    """Count the device→host reads and host→device copies of strict arrays made inside the block.

    Yields a HostSyncs: ``.count`` and ``.where`` (the reads), ``.to_device_count`` and
    ``.to_device_where`` (the copies); ``str()`` of it lists each with the op and the stack. The
    reads are bool(), int(), float(), operator.index(), complex(), printing, DLPack, a copy to the
    CPU, and the functions whose output's shape depends on the values (nonzero, unique_*, indexing
    with a bool mask), which read them on a GPU. It patches array_api_strict (its Array methods,
    ``asarray`` and those functions) for the length of the block only, and restores them, so reads
    anywhere (engine, ops, tinytensor_nn, user code) are caught. Blocks may nest.
    """
    counter = HostSyncs()
    if not _active:
        _patch()
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)
        if not _active:
            _unpatch()


def _patch() -> None:
    import array_api_strict as xp
    from array_api_strict._array_object import Array

    cpu = xp.Device("CPU_DEVICE")

    def reading(name, original):
        def method(self, *args, **kwargs):
            if self.device != cpu:
                _record(f"{name.strip('_')}()", to_device=False)
            return original(self, *args, **kwargs)
        return method

    def shaped_by_values(name, original):
        def method(x, *args, **kwargs):
            if x.device != cpu:
                _record(f"{name}()", to_device=False)
            return original(x, *args, **kwargs)
        return method

    def getitem(self, key):
        keys = key if isinstance(key, tuple) else (key,)
        if self.device != cpu and any(isinstance(k, Array) and k.dtype == xp.bool for k in keys):
            _record("getitem(bool mask)", to_device=False)
        return _originals[Array, "__getitem__"](self, key)

    def to_device(self, device, /, stream=None):
        if device != self.device:
            _record("to_device(CPU)" if device == cpu else "to_device(strict)", to_device=device != cpu)
        return _originals[Array, "to_device"](self, device, stream=stream)

    def asarray(obj, /, *args, device=None, **kwargs):
        if not isinstance(obj, Array) and device not in (None, cpu):  # host data: lists, NumPy arrays
            _record(f"asarray({type(obj).__name__})", to_device=True)
        return _originals[xp, "asarray"](obj, *args, device=device, **kwargs)

    patches = {(Array, name): lambda original, name=name: reading(name, original) for name in _READS}
    patches.update({(xp, name): lambda original, name=name: shaped_by_values(name, original)
                    for name in _SHAPED_BY_VALUES})
    patches.update({(Array, "__getitem__"): lambda _: getitem, (Array, "to_device"): lambda _: to_device,
                    (xp, "asarray"): lambda _: asarray})
    for (owner, name), make in patches.items():
        _originals[owner, name] = vars(owner)[name]
        setattr(owner, name, make(_originals[owner, name]))


def _unpatch() -> None:
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()


def _record(kind: str, to_device: bool) -> None:
    transfer = _transfer(kind)
    for counter in _active:
        (counter.to_device_where if to_device else counter.where).append(transfer)


def _transfer(kind: str) -> Transfer:
    """A Transfer for the copy happening now: the op running and the frames of the stack."""
    frame, op = sys._getframe(3), None  # the caller of the patched method (3: _transfer, _record, it)
    while frame is not None and op is None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Function):
            op = owner.name()
        frame = frame.f_back
    frames = [f for f in traceback.extract_stack(sys._getframe(3)) if not _plumbing(f)]
    stack = [f"{_short(f.filename)}:{f.lineno} in {f.name}" for f in frames]
    return Transfer(kind, op, (stack or ["?"])[-1], stack[-12:])


def _plumbing(frame) -> bool:
    """Frames that say nothing about who read: array_api_strict's, the wrapper that checks first."""
    return "array_api_strict" in frame.filename or (frame.filename == deferred.__file__
                                                    and frame.name == "method")


def _short(path: str) -> str:
    root = f"{_ROOT}{os.sep}"
    return path[len(root):] if path.startswith(root) else path
