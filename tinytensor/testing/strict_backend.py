"""A CuPy stand-in for CPU-only machines: a backend over ``array_api_strict``.

array_api_strict implements only the Array API standard. Its arrays live on array_api_strict's
second, non-CPU device ("device1"), where they refuse every implicit conversion to NumPy and every
mix with arrays on its CPU device, as CuPy arrays do. The op suite passing on it shows the engine
has no NumPy-only code path and creates no array without placing it on the tensor's device.
Its device type is ``"strict"``: ``tt.tensor(data, device="strict")``.
"""
from __future__ import annotations

import numpy as np

from ..backends import Backend, register


class StrictBackend(Backend):
    """The backend over ``array_api_strict`` on its non-CPU device, registered as device type ``"strict"``."""
    name = "strict"

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
