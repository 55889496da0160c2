"""``tinytensor.backends.cuda``: switches for CUDA's libraries, by PyTorch's names.

    import tinytensor as tt
    tt.backends.cuda.matmul.allow_tf32 = True   # float32 matmuls may use TF32 tensor cores

TF32 keeps float32's range and rounds the inputs of each product to 10 bits of mantissa (about three
decimal digits; the sums stay float32), for several times the speed of a float32 matmul on Ampere and
later GPUs (compute capability 8.0+). It is off by default, as PyTorch's is for matmuls. The CuPy
backend applies a change at once on the calling thread and on its next matmul elsewhere; on older GPUs,
and on a machine without one, setting it changes nothing (CPU results stay bit for bit the same).

No CuPy import here: a CuPy backend that exists registers itself (``watch``) to hear of changes.
"""
from __future__ import annotations

import weakref

__all__ = ["matmul"]

_allow_tf32 = False
_watchers: weakref.WeakSet = weakref.WeakSet()  # backends told of a change (their _on_tf32_change())


class _MatmulSwitches:
    """``tinytensor.backends.cuda.matmul``: how float32 matrix products may compute on CUDA devices."""

    __slots__ = ()

    @property
    def allow_tf32(self) -> bool:
        """Whether float32 matmuls may use TF32 tensor cores (default False, as PyTorch's)."""
        return _allow_tf32

    def __setattr__(self, name: str, value) -> None:
        global _allow_tf32
        if name != "allow_tf32":
            raise AttributeError(f"tinytensor.backends.cuda.matmul has no setting {name!r}; its one setting "
                                 f"is allow_tf32 (True or False)")
        if not isinstance(value, bool):
            raise TypeError(f"tinytensor.backends.cuda.matmul.allow_tf32 must be True or False, got "
                            f"{type(value).__name__} {value!r}")
        _allow_tf32 = value
        for backend in list(_watchers):
            backend._on_tf32_change()

    def __repr__(self) -> str:
        return f"<tinytensor.backends.cuda.matmul allow_tf32={_allow_tf32}>"


matmul = _MatmulSwitches()


def watch(backend) -> None:
    """Tell ``backend`` (by its ``_on_tf32_change()``) of every change of the switches, now too if TF32
    is already allowed."""
    _watchers.add(backend)
    if _allow_tf32:
        backend._on_tf32_change()
