"""einops on tinytensor tensors: ``einops.rearrange(x, "b t (nh hs) -> b nh t hs", nh=4)`` and ``repeat``,
``reduce``, ``einsum``, ``pack``, ``unpack``, with gradients flowing through (every step is a tinytensor op).

einops finds a backend among the subclasses of its ``AbstractBackend`` whose ``framework_name`` is an
imported module. Importing this module makes ``TinytensorBackend`` one of them without importing
einops: at once if einops is already imported, else right after the first ``import einops`` (a
finder on ``sys.meta_path`` that waits for that import, registers, and removes itself).

Every method is one tinytensor op, so a backend is what einops needs; its differences from einops'
torch backend: ``einsum`` spells out ``...`` and broadcasts size-1 dims itself (``tt.einsum`` takes
neither), and needs the device's einsum kernel (the "strict" stand-in backend has none).
"""
from __future__ import annotations

import importlib.util
import sys
import warnings

from .creation import arange, tensor
from .dtypes import int64
from .ops import cat, stack
from .ops import einsum as tt_einsum
from .tensor import Tensor


class TinytensorBackend:
    """The methods einops calls on a backend, for tinytensor tensors (einops' ``AbstractBackend``
    interface; ``register()`` adds that base class)."""

    framework_name = "tinytensor"

    def is_appropriate_type(self, tensor) -> bool:
        return isinstance(tensor, Tensor)

    def from_numpy(self, x):
        """A tensor of ``x`` (einops' own tests use it); floating ones require grad, as in its torch
        backend."""
        t = tensor(x)
        return t.requires_grad_(True) if t.dtype.is_floating_point else t

    def to_numpy(self, x):
        return x.detach().numpy()

    def arange(self, start: int, stop: int):
        return arange(start, stop, dtype=int64, device="cpu")

    def shape(self, x) -> tuple:
        return tuple(x.shape)

    def reshape(self, x, shape):
        return x.reshape(tuple(shape))

    def transpose(self, x, axes):
        return x.permute(tuple(axes))

    def reduce(self, x, operation: str, axes: tuple):
        """min, max, sum, mean, prod, any, all over ``axes`` at once."""
        if operation in ("any", "all"):  # over bools, any is the max and all the min
            x, operation = x.bool(), "max" if operation == "any" else "min"
        if operation in ("min", "max"):
            operation = "a" + operation  # amax/amin: the values only (PyTorch's ties: gradient shared)
        if operation not in ("amin", "amax", "sum", "mean", "prod"):
            raise NotImplementedError(f"einops reduction {operation!r} is not available for tinytensor")
        return getattr(x, operation)(dim=tuple(axes))

    def stack_on_zeroth_dimension(self, tensors: list):
        return stack(tensors)

    def add_axis(self, x, new_position: int):
        return x.unsqueeze(new_position)

    def add_axes(self, x, n_axes: int, pos2len: dict):
        """New axes of the given lengths: size-1 axes broadcast (a view, as torch's expand)."""
        sizes = [-1] * n_axes
        for position, length in pos2len.items():
            x = x.unsqueeze(position)
            sizes[position] = length
        return x.expand(*sizes)

    def tile(self, x, repeats):
        """x repeated repeats[k] times along each dim k (numpy.tile for len(repeats) == x.ndim)."""
        pairs = [(r, n) for r, n in zip(repeats, x.shape)]
        spread = x.reshape(tuple(v for _, n in pairs for v in (1, n)))  # (1, s0, 1, s1, ...)
        copies = spread.expand(*(v for r, n in pairs for v in (r, n)))  # (r0, s0, r1, s1, ...)
        return copies.reshape(tuple(r * n for r, n in pairs))

    def concat(self, tensors, axis: int):
        return cat(tensors, dim=axis)

    def is_float_type(self, x) -> bool:
        return x.dtype.is_floating_point

    def einsum(self, pattern: str, *x):
        return einsum(pattern, *x)

    def __repr__(self) -> str:
        return "<einops backend for tinytensor>"


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # string.ascii_letters, as einops uses


def einsum(pattern: str, *operands):
    """``tt.einsum`` for the patterns einops writes ("ab...,b->a..."): ``...`` spelled out in unused
    letters (right-aligned across operands) and size-1 dims broadcast against the other operands,
    as torch.einsum does; dims of ``...`` missing from the output are summed."""
    ins, out = pattern.replace(" ", "").split("->")
    terms = ins.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {pattern!r} names {len(terms)} operands, got {len(operands)}")
    if "..." in pattern:
        ell = [op.ndim - len(term) + 3 if "..." in term else 0 for term, op in zip(terms, operands)]
        for i, (term, n) in enumerate(zip(terms, ell)):
            if n < 0:
                raise ValueError(f"einsum: operand {i} of shape {operands[i].shape} has fewer dims than "
                                 f"{term!r} names")
        letters = "".join(c for c in _LETTERS if c not in pattern)[: max(ell)]
        if len(letters) < max(ell):
            raise ValueError(f"einsum: {pattern!r} leaves too few letters for its '...' dims")
        terms = [t.replace("...", letters[len(letters) - n:]) for t, n in zip(terms, ell)]
        out = out.replace("...", letters)
    sizes = {}
    for i, (term, op) in enumerate(zip(terms, operands)):
        if len(term) != op.ndim:
            raise ValueError(f"einsum: operand {i} has shape {op.shape}, but {term!r} names {len(term)} dims")
        for c, n in zip(term, op.shape):
            if n != 1:
                sizes.setdefault(c, n)  # a conflict (3 against 4) is tt.einsum's error to raise
    operands = [op.expand(*(sizes.get(c, 1) if n == 1 else n for c, n in zip(term, op.shape)))
                if any(n == 1 and sizes.get(c, 1) != 1 for c, n in zip(term, op.shape)) else op
                for term, op in zip(terms, operands)]
    return tt_einsum(",".join(terms) + "->" + out, *operands)


_registered: list[type] = []  # the einops subclass; einops holds its subclasses by weak reference


def register() -> None:
    """Make ``TinytensorBackend`` an einops backend (einops must be importable); idempotent."""
    if _registered:
        return
    from einops._backends import AbstractBackend  # einops is optional: imported only when it is used

    _registered.append(type("TinytensorEinopsBackend", (TinytensorBackend, AbstractBackend),
                            {"__module__": __name__, "__doc__": TinytensorBackend.__doc__}))


class _RegisterAfterImport:
    """einops' own loader, then ``register()``."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # einops keeps its own loader
        self.loader.exec_module(module)
        _stop_waiting()
        try:
            register()
        except Exception as e:  # an einops without the backend interface: einops still imports
            warnings.warn(f"tinytensor could not register its einops backend: {type(e).__name__}: {e}",
                          stacklevel=2)


class _EinopsImportHook:
    """A ``sys.meta_path`` finder that does nothing but wait for ``import einops``: it hands einops'
    spec on with a loader that registers the backend once einops has run, which then removes this
    finder. (A spec asked for without an import, ``importlib.util.find_spec("einops")``, is never
    executed: the finder stays and waits for the real import.)"""

    def __init__(self):
        self._searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "einops" or self._searching:
            return None
        self._searching = True  # the search below asks every finder, this one too
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._searching = False
        if spec is None or spec.loader is None:
            return None  # not installed (yet): keep waiting
        spec.loader = _RegisterAfterImport(spec.loader)
        return spec


def _stop_waiting() -> None:
    """einops has been imported: the finder has nothing left to wait for."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _EinopsImportHook)]


if "einops" in sys.modules:
    register()
elif not any(isinstance(f, _EinopsImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _EinopsImportHook())
