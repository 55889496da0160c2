"""The part of Tensor that autograd needs: data, device, grad, grad_fn, version, hooks, backward.

The user-facing methods (``x.exp()``, ``x + y`` ...) live on ``tinytensor.Tensor``, a subclass
defined above the ops; this floor knows only how a tensor sits in the graph.
"""
from __future__ import annotations

import weakref

from ..dtypes import DType
from . import dual
from .engine import Node, run_backward
from .grad_mode import enable_grad, is_grad_enabled


class TensorCore:
    _result_cls = None  # the class ops return (Tensor, also for subclasses such as Parameter)
    __slots__ = (
        "array", "backend", "_requires_grad", "grad", "grad_fn", "_output_nr", "_version",
        "_hooks", "_post_accumulate_hooks", "_view_src", "_fw", "__weakref__",
    )

    def __init__(self, data=(), backend=None, requires_grad: bool = False, grad_fn: Node | None = None,
                 output_nr: int | None = None, version: list | None = None):
        if backend is None or type(backend) is int:  # PyTorch's legacy Tensor([1, 2]), Tensor(2, 3)
            if backend is not None:  # Tensor(2, 3): the sizes are the int arguments
                args = tuple(s for s in (data, backend, requires_grad, grad_fn, output_nr, version)
                             if type(s) is int)
            else:
                args = () if type(data) is tuple and not data else (data,)
            data, backend = self._legacy_new(args)
            requires_grad, grad_fn, output_nr, version = False, None, 0, None
        if type(data) in backend.scalar_types:  # NumPy's reductions return scalars: keep arrays
            data = backend.xp.asarray(data)
        self.array = data
        self.backend = backend
        self._requires_grad = requires_grad
        self.grad = None
        self.grad_fn = grad_fn
        self._output_nr = output_nr or 0
        self._version = [0] if version is None else version  # shared with views of this tensor
        self._hooks = None
        self._post_accumulate_hooks = None
        self._view_src = None  # a view: (base, the view ops from base, base's grad_fn and requires_grad then)
        self._fw = None  # forward-mode tangents, {dual level: tangent} (autograd.forward_ad)

    @staticmethod
    def _legacy_new(args: tuple):
        raise TypeError("TensorCore(data, backend): a backend is required")

    # ---- metadata -------------------------------------------------------------------------
    @property
    def data(self):
        """PyTorch's ``.data``: a tensor sharing this one's memory, outside autograd (writes to it are
        not seen by the graph or the version counter). ``x.data = t`` points x at t's memory."""
        return (self._result_cls or type(self))(self.array, self.backend)

    @data.setter
    def data(self, value):
        if not isinstance(value, TensorCore):
            raise TypeError(f"x.data = ...: expected a Tensor, got {type(value).__name__}")
        if value.backend is not self.backend:
            raise RuntimeError(f"x.data = ...: the new data is on {value.device} but the tensor is on "
                               f"{self.device}; move it first with .to({self.device!r})")
        if self.requires_grad and not value.dtype.is_floating_point:
            raise TypeError(f"x.data = ...: a tensor that requires grad needs floating-point data, got "
                            f"{value.dtype}")
        self.array = value.array

    @property
    def requires_grad(self) -> bool:
        """Whether ops on this tensor are recorded for backward."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and not self.dtype.is_floating_point:
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}; "
                            f"convert first with .float()")
        if not value and self.grad_fn is not None:
            raise RuntimeError("requires_grad = False on a non-leaf tensor (made by an op): use .detach()")
        self._requires_grad = bool(value)

    @property
    def shape(self) -> tuple:
        """The size of each dimension, a tuple of ints."""
        return self.array.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.array.ndim

    @property
    def dtype(self) -> DType:
        """The element type: ``tt.float32``, ``tt.int64``, ``tt.bool`` ..."""
        return self.backend.dtype_of(self.array)

    @property
    def device(self) -> str:
        """Where the data lives: "cpu", "cuda:0" ..."""
        return self.backend.device

    @property
    def is_leaf(self) -> bool:
        """Whether no op made this tensor (it has no ``grad_fn``); a leaf that requires grad gets its gradient
        in ``.grad``."""
        return self.grad_fn is None

    def _wrap(self, data):
        """A constant tensor (no graph) holding ``data`` on this tensor's device."""
        return (self._result_cls or type(self))(data, self.backend)

    # ---- graph ----------------------------------------------------------------------------
    def detach(self):
        """A tensor sharing this one's data, cut from the graph."""
        return (self._result_cls or type(self))(self.array, self.backend, version=self._version)

    def requires_grad_(self, requires_grad: bool = True):
        """Set `requires_grad` in place (floating-point tensors only; a non-leaf cannot drop it); returns
        self."""
        if requires_grad and not self.dtype.is_floating_point:
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}; "
                f"convert first with .float()"
            )
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves keep theirs anyway)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self.grad_fn is not None:
            node = self.grad_fn
            if node._retained is None:
                node._retained = {}
            node._retained[self._output_nr] = weakref.ref(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self.grad_fn is None:
            self._hooks = (self._hooks or []) + [hook]
        else:
            node = self.grad_fn
            if node._hooks is None:
                node._hooks = {}
            node._hooks.setdefault(self._output_nr, []).append(hook)
        return hook

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` after this leaf's ``.grad`` has been accumulated, when it is final for
        the backward pass (PyTorch's hook of that name; DistributedDataParallel reduces gradients here).
        The hook returns None; it may read or change ``self.grad`` in place."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        self._post_accumulate_hooks = (self._post_accumulate_hooks or []) + [hook]
        return hook

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``; needs ``gradient`` unless scalar."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no grad_fn; did you compute "
                "it under no_grad() or from tensors without requires_grad=True?"
            )
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicitly created only for scalar outputs, but this "
                    f"tensor has shape {self.shape}; pass gradient= a tensor of that shape, or reduce "
                    f"it first (e.g. .sum())"
                )
            gradient = self._wrap(self.backend.full(self.shape, 1, self.dtype))
        elif tuple(gradient.shape) != self.shape:
            raise RuntimeError(
                f"backward(): gradient has shape {tuple(gradient.shape)}, expected {self.shape}"
            )
        if self._view_src is not None:
            refresh_view(self)
        root = (self, 0) if self.grad_fn is None else (self.grad_fn, self._output_nr)
        # inside a dual level (forward_ad) the backward ops carry tangents: they run as Tensor ops
        run_backward([root], [gradient], retain_graph=retain_graph or create_graph,
                     create_graph=create_graph or bool(dual.open_levels.get()))

    def _edge(self):
        """Where this tensor's gradient goes in the graph: its producer, or itself if a leaf."""
        if not self.requires_grad:
            return None
        return (self, 0) if self.grad_fn is None else (self.grad_fn, self._output_nr)


# ---- views and in-place writes ---------------------------------------------------------------------
# A view (reshape, permute, basic indexing, expand, split) remembers its base and the view ops that made
# it. When an in-place write is recorded on the base (or through another view of it), the base takes a
# new place in the graph; the view's own history is then stale, and is rebuilt from the base the next
# time the view is used (as PyTorch regenerates a view's grad_fn when its version changed).
def replay_view(base, chain):
    """The view ``chain`` of ``base``: the same view ops applied again, recorded in the graph."""
    t = base
    for fn_cls, params, nr in chain:
        t = fn_cls.apply(t, *params)
        if nr is not None:
            t = t[nr]
    return t


def refresh_view(view) -> None:
    """Rebuild ``view``'s place in the graph if its base was rebased since the view was made."""
    base, chain, grad_fn, requires_grad = view._view_src
    if base.grad_fn is grad_fn and base.requires_grad == requires_grad:
        return
    with enable_grad():
        new = replay_view(base, chain)
    view.grad_fn, view._output_nr, view._requires_grad = new.grad_fn, new._output_nr, new.requires_grad
    view._view_src = (base, chain, base.grad_fn, base.requires_grad)


def check_grad_allowed(tensor: TensorCore) -> None:
    if not tensor.dtype.is_floating_point:
        raise TypeError(
            f"only floating-point tensors can require gradients, got dtype {tensor.dtype}; "
            f"create it with a float dtype or convert with .float()"
        )


__all__ = ["TensorCore", "check_grad_allowed", "is_grad_enabled"]
