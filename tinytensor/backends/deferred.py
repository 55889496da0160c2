"""Value checks that wait for the next host sync, on devices where reading a value is one.

Some checks need the data, not only the shapes: an index out of range (embedding, one_hot, gather,
cross-entropy's class targets...). On the CPU the min and max of an index are read for nothing and
the check raises at once. On a GPU reading them is a device→host sync: the host waits until the
device has finished all the work queued before, once per check, several times a training step. So
there the check is deferred, as CUDA's device-side asserts are, but with tinytensor's message:

* the op computes, on the device, a 0-d bool flag "a value is bad" and the values its message
  needs (the offending index), and hands them to ``backend.checks`` with the error to raise;
* at the next host sync of that backend, ``to_host`` (so ``.item()``, ``.numpy()``, ``.tolist()``,
  ``bool(t)``, printing, ``.to("cpu")``, saving a checkpoint) or ``synchronize``, the flags are
  read (one read for all of them) and the first failed check raises its error: the op, the values,
  and the line outside tinytensor that called the op.

Every way of looking at a value passes through a host sync, so no result computed from a bad value
can be seen before the error. A loop that never reads a value would pile the checks up: the
``MAX_PENDING``-th one flushes them (one sync per ``MAX_PENDING`` checks). Inside
``with checks_at_once():`` every check raises at its op, on every device, at the price of a sync
each: for debugging, as ``CUDA_LAUNCH_BLOCKING=1`` is.

    index = backend.check_range(index, 0, n, IndexError, lambda i: f"embedding: index {i} is out of ...")

raises at once on the CPU and at the next host sync where reads are syncs (``Backend.defers_checks``);
until then the op goes on with the index clipped into range, so that no kernel reads out of bounds.
"""
from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["DeferredChecks", "check_range", "checks_at_once", "flushing"]

_at_once: ContextVar[bool] = ContextVar("tinytensor_checks_at_once", default=False)

_ROOT = Path(__file__).resolve().parents[2]
_OURS = tuple(f"{_ROOT / name}{os.sep}" for name in ("tinytensor", "tinytensor_nn"))  # not the user's code


@dataclass
class _Check:
    bad: Any  # 0-d bool array on the device: True if the check failed
    values: tuple  # 0-d arrays on the device that the message shows
    error: type  # the exception class
    message: Callable[..., str]  # message(*values as Python numbers)
    caller: str  # "file:line": the first frame outside tinytensor when the op ran


class DeferredChecks:
    """The value checks a backend has not yet read back; one instance per backend."""

    MAX_PENDING = 1024

    def __init__(self, backend):
        self.backend = backend
        self._pending: list[_Check] = []
        self._any = None  # the OR of the pending flags: one read tells whether any failed

    def __len__(self) -> int:
        return len(self._pending)

    def defer(self, bad, values: tuple, error: type, message: Callable[..., str]) -> None:
        """Raise ``error(message(*values))`` at the next host sync if the 0-d bool array ``bad`` is True."""
        if len(self._pending) >= self.MAX_PENDING:
            self.flush()
        self._pending.append(_Check(bad, tuple(values), error, message, _caller()))
        self._any = bad if self._any is None else self.backend.xp.logical_or(self._any, bad)

    def flush(self) -> None:
        """Read the pending flags (one host read) and raise the first failed check's error."""
        if not self._pending:
            return
        pending, failed = self._pending, self._any
        self._pending, self._any = [], None
        if not bool(failed):
            return
        check = next(c for c in pending if bool(c.bad))
        values = [int(v) if "int" in str(v.dtype) else float(v) for v in check.values]
        raise check.error(
            f"{check.message(*values)} [checked on {self.backend.device} when the op ran at {check.caller}, "
            f"raised at the next host sync]"
        )

    def discard(self) -> None:
        """Forget the pending checks unread (a test that expects none to fail, a reset)."""
        self._pending, self._any = [], None


def check_range(backend, values, low: int, high: int, error: type, message: Callable[[int], str]):
    """Raise ``error(message(v))`` if the integer array ``values`` has a value v outside [low, high)
    (the largest if one is too large, else the smallest): at once where values are read for free
    (the CPU), at the next host sync where reading one is a sync itself. Returns the values to index
    with: ``values`` once checked, else ``values`` clipped into [low, high), so that no kernel reads
    out of bounds (a crash on a GPU) before the error is raised."""
    if values.size == 0:
        return values
    if not backend.defers_checks or _at_once.get() or high <= low:  # (no value fits an empty range)
        lo, hi = backend.bounds(values)
        if lo < low or hi >= high:
            raise error(message(hi if hi >= high else lo))
        return values
    xp = backend.xp
    lo, hi = xp.min(values), xp.max(values)
    too_large = hi >= high
    backend.checks.defer(too_large | (lo < low), (xp.where(too_large, hi, lo),), error, message)
    return xp.clip(values, low, high - 1)


@contextmanager
def checks_at_once():
    """Inside the block, every value check reads its values and raises at its op, on every device
    (a host sync per check: for debugging, as CUDA_LAUNCH_BLOCKING=1 is)."""
    token = _at_once.set(True)
    try:
        yield
    finally:
        _at_once.reset(token)


def flushing(to_host_or_synchronize):
    """The method, raising the pending checks first (Backend wraps its subclasses' to_host and
    synchronize in it: every way out to the host passes the checks)."""
    @functools.wraps(to_host_or_synchronize)
    def method(self, *args, **kwargs):
        self.checks.flush()
        return to_host_or_synchronize(self, *args, **kwargs)
    return method


def _caller() -> str:
    """file:line of the innermost frame outside tinytensor and tinytensor_nn (the user's call)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_OURS):
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"
