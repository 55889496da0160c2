"""``Function``: one differentiable op. ``forward`` works on backend arrays, ``backward`` on Tensors.

Writing backward with Tensor ops means the backward pass is itself recorded when
``create_graph=True``, so higher-order gradients need no second implementation.

    class Exp(Function):
        def forward(self, x):            # x: a backend array
            y = self.xp.exp(x)
            self.save_for_backward(y)
            return y

        def backward(self, gy):          # gy: a Tensor
            (y,) = self.saved_tensors    # the saved array comes back as a Tensor in the graph
            return gy * y                # d/dx exp(x) = exp(x)

    def exp(x): return Exp.apply(x)
"""
from __future__ import annotations

from .engine import Node
from .grad_mode import is_grad_enabled
from .tensor_core import TensorCore

_INPUT, _OUTPUT, _CONST = 0, 1, 2


class Function(Node):
    """Subclass it, write ``forward(self, *arrays, **options)`` and ``backward(self, *grads)``."""

    __slots__ = ("backend", "xp", "needs_input_grad", "_inputs", "_saved", "_to_save", "_tensor_cls")
    differentiable = True  # False for ops whose outputs never need gradients (argmax, comparisons)
    is_view = False  # True if outputs share memory with the first input (they share its version)

    # ---- what forward may call ------------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        """Keep these arrays (inputs, outputs or intermediates) for backward."""
        self._to_save = arrays

    # ---- what backward may call -----------------------------------------------------------
    @property
    def saved_tensors(self) -> tuple:
        """The saved arrays as Tensors; inputs and outputs come back connected to the graph."""
        if self._freed:
            raise RuntimeError(
                f"{self.name()}: saved tensors were freed by an earlier backward(); pass "
                f"retain_graph=True to it if you need to backward through the graph again"
            )
        out = []
        for kind, value, version in self._saved:
            if kind == _INPUT:
                if value._version[0] != version:
                    raise RuntimeError(
                        f"{self.name()}: a tensor it saved for backward (shape {value.shape}) was "
                        f"modified in place after it was used (version {version} -> "
                        f"{value._version[0]}); use an out-of-place op (e.g. x = x + 1, not x.add_(1))"
                    )
                out.append(value)
            elif kind == _OUTPUT:
                data, nr, counter = value
                if counter[0] != version:
                    raise RuntimeError(
                        f"{self.name()}: its output was modified in place before backward; use an "
                        f"out-of-place op"
                    )
                out.append(self._tensor_cls(data, self.backend, requires_grad=True, grad_fn=self,
                                            output_nr=nr, version=counter))
            elif hasattr(value, "shape"):
                out.append(self._tensor_cls(value, self.backend))
            else:  # a Python number passed to forward stays a number
                out.append(value)
        return tuple(out)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    # ---- the machinery --------------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record the node."""
        self = cls()
        backend = None
        tensors = []
        raw = []
        for a in args:
            if isinstance(a, TensorCore):
                if backend is None:
                    backend = a.backend
                    tensor_cls = a._result_cls or type(a)
                elif a.backend is not backend:
                    _device_mismatch(self, args)
                tensors.append(a)
                raw.append(a.data)
            else:
                raw.append(a)
        if backend is None:
            raise TypeError(f"{cls.__name__}: expected at least one Tensor argument")
        self.backend = backend
        self.xp = backend.xp
        self._to_save = ()
        try:
            out = self.forward(*raw, **kwargs)
        except (ValueError, TypeError, IndexError) as e:
            raise type(e)(f"{cls.__name__}: {e} (inputs: {_describe(tensors)})") from e
        single = not isinstance(out, tuple)
        outs = (out,) if single else out

        record = cls.differentiable and is_grad_enabled() and any(t.requires_grad for t in tensors)
        if not record:
            version = tensors[0]._version if cls.is_view else None
            results = tuple(tensor_cls(o, backend, version=version) for o in outs)
            return results[0] if single else results

        Node.__init__(self)
        self._tensor_cls = tensor_cls
        self.needs_input_grad = tuple(isinstance(a, TensorCore) and a.requires_grad for a in args)
        self.next_edges = tuple(a._edge() if isinstance(a, TensorCore) else None for a in args)
        version = tensors[0]._version if cls.is_view else None
        results = tuple(
            tensor_cls(o, backend, requires_grad=True, grad_fn=self, output_nr=i, version=version)
            for i, o in enumerate(outs)
        )
        self._out_meta = [(r.shape, r.dtype) for r in results] if len(results) > 1 else [None]
        self._saved = tuple(_resolve(s, args, raw, outs, results) for s in self._to_save)
        self._to_save = ()
        return results[0] if single else results

    def run_backward(self, grads):
        if any(g is None for g in grads):  # an output nobody used: its gradient is zero
            grads = [g if g is not None else self._zero_grad(i) for i, g in enumerate(grads)]
        out = self.backward(*grads)
        if not isinstance(out, tuple):
            out = (out,)
        if len(out) < len(self.next_edges) and all(e is None for e in self.next_edges[len(out):]):
            out = out + (None,) * (len(self.next_edges) - len(out))  # trailing non-tensor options
        if len(out) != len(self.next_edges):
            raise RuntimeError(
                f"{self.name()}.backward returned {len(out)} gradients for {len(self.next_edges)} inputs"
            )
        return out

    def _zero_grad(self, i):
        shape, dtype = self._out_meta[i]
        return self._tensor_cls(self.backend.full(shape, 0, dtype), self.backend)

    def release(self):
        self._freed = True
        self._saved = ()


def _resolve(array, args, raw, outs, results):
    for a, r in zip(args, raw):
        if r is array and isinstance(a, TensorCore):
            return (_INPUT, a, a._version[0])
    for i, (o, res) in enumerate(zip(outs, results)):
        if o is array:
            return (_OUTPUT, (o, i, res._version), res._version[0])
    return (_CONST, array, 0)


def _describe(tensors) -> str:
    return ", ".join(f"{t.shape} {t.dtype.name} on {t.device}" for t in tensors)


def _device_mismatch(fn, args):
    devices = [f"{a.device} {a.shape}" for a in args if isinstance(a, TensorCore)]
    raise RuntimeError(
        f"{fn.name()}: expected all tensors on one device, got " + ", ".join(devices) +
        ". Move them explicitly with .to(device); tinytensor never copies between devices implicitly."
    )
