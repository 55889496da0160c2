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

from contextvars import ContextVar

from . import dual
from .engine import Node
from .grad_mode import _grad_enabled
from .tensor_core import TensorCore, refresh_view

# While a vmap runs (tinytensor.func), it installs here the function that applies an op to batched
# inputs: ``rule(cls, args, kwargs)`` returns the op's batched result, or NotImplemented when no
# argument is batched. Nothing below the Tensor floor needs to know what a batched tensor is.
batching: ContextVar = ContextVar("tinytensor_batching", default=None)
# utils.checkpoint puts a list here while its block runs: every node recorded is appended to it
recording: ContextVar = ContextVar("tinytensor_recording", default=None)

_INPUT, _OUTPUT, _CONST = 0, 1, 2


class Function(Node):
    """Subclass it, write ``forward(self, *arrays, **options)`` and ``backward(self, *grads)``."""

    __slots__ = ("backend", "xp", "needs_input_grad", "_inputs", "_saved", "_to_save", "_tensor_cls")
    differentiable = True  # False for ops whose outputs never need gradients (argmax, comparisons)
    creates_tangent = False  # True for forward_ad.make_dual's op, which gives its output a new tangent
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
        saved = self._saved
        if type(saved) is not tuple:  # dropped by utils.checkpoint: its block runs again to make them
            saved = saved.restore(self)
        out = []
        for kind, value, version in saved:
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
                t = self._tensor_cls(data, self.backend, True, self, nr, counter)  # requires grad, grad_fn
                tangents = getattr(self, "_out_fw", None)  # the output's tangents (forward_ad), if any
                t._fw = None if tangents is None else tangents[nr]
                out.append(t)
            elif hasattr(value, "shape"):
                out.append(self._tensor_cls(value, self.backend))
            else:  # a Python number passed to forward stays a number
                out.append(value)
        return tuple(out)

    def forward(self, *args, **kwargs):
        """Compute the outputs from the inputs' backend arrays (write it in a subclass); call `apply`, not
        this."""
        raise NotImplementedError

    def backward(self, *grads):
        """The gradients of the inputs, one per input of `apply` (None where there is none), from one
        gradient per output; written with Tensor ops so that it can itself be differentiated."""
        raise NotImplementedError

    def jvp(self, *tangents):
        """The tangent of the output(s) for the inputs' tangents (forward mode, ``autograd.forward_ad``).

        One tangent per argument of ``apply`` (None where it has none, or is not a tensor); the
        inputs and outputs are ``self.primals`` and ``self.result`` while it runs. Written with
        Tensor ops, as ``backward`` is.
        """
        raise NotImplementedError(
            f"{self.name()}: this op has no forward-mode derivative (jvp), so forward-mode AD "
            f"(forward_ad, func.jvp, func.jacfwd) cannot pass through it; use reverse mode (func.vjp, "
            f"func.jacrev) instead"
        )

    # ---- the machinery --------------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record the node.

        ``needs_input_grad`` is known before ``forward`` runs (all False when nothing is recorded),
        so ``forward`` can save only what the needed gradients use.
        """
        rule = batching.get()
        if rule is not None and (out := rule(cls, args, kwargs)) is not NotImplemented:
            return out  # some input is batched (func.vmap): the op's batching rule ran it
        self = cls.__new__(cls)
        first, raw = self._collect_inputs(args)
        self._to_save = ()
        try:
            out = self.forward(*raw, **kwargs) if kwargs else self.forward(*raw)
        except (ValueError, TypeError, IndexError, RuntimeError) as e:
            e.add_note(f"in {cls.__name__} (inputs: {_describe(args)})")
            raise
        out = self._wrap_outputs(out, first, args, raw)
        if dual.propagating.get() and self.differentiable:  # forward-mode AD: the outputs' tangents
            dual.propagate(self, args, out)
        return out

    def _collect_inputs(self, args):
        """The inputs' arrays for forward; with any input that requires grad, the graph edges."""
        track = _grad_enabled.get() and self.differentiable  # may this call be recorded at all?
        if track:
            needs, edges, meta = [], [], []  # per input: needs a gradient, where it goes, what it must match
        first = None
        raw = []
        for a in args:
            if isinstance(a, TensorCore):
                if first is None:
                    first = a
                elif a.backend is not first.backend:
                    _device_mismatch(self, args)
                data = a.array
                raw.append(data)
                if track:
                    if a._view_src is not None:
                        refresh_view(a)  # its base was written in place since: take the new history
                    if a._requires_grad:  # its gradient goes to its producer, or to it if a leaf
                        needs.append(True)
                        edges.append((a, 0) if a.grad_fn is None else (a.grad_fn, a._output_nr))
                        meta.append((data.shape, data.dtype, first.backend))
                        continue
            else:
                raw.append(a)
            if track:
                needs.append(False)
                edges.append(None)
                meta.append(None)
        if first is None:
            raise TypeError(f"{type(self).__name__}: expected at least one Tensor argument")
        self.backend = first.backend
        self.xp = first.backend.xp
        if track and True in needs:  # recorded: a node of the graph
            self.needs_input_grad = tuple(needs)
            Node.__init__(self, tuple(edges), meta)
        else:
            self.needs_input_grad = (False,) * len(args)
        return first, raw

    def _wrap_outputs(self, out, first, args, raw):
        """Tensors for forward's arrays; recorded as outputs of this node if they can have gradients.

        Differentiability follows dtype: an integer or bool output never requires grad.
        """
        backend = self.backend
        record = True in self.needs_input_grad
        tensor_cls = first._result_cls or type(first)
        version = None
        is_view = self.is_view
        if is_view:  # the output shares the input's memory, and so its version counter
            version = first._version
            if len(version) == 1:
                version.append(True)  # marks memory seen by several tensors (Tensor._records)
        if type(out) is tuple:
            results = []
            for i, o in enumerate(out):
                f = record and o.dtype in backend.float_dtypes
                results.append(tensor_cls(o, backend, f, self if f else None, i, version))
            results = tuple(results)
            record = any(r._requires_grad for r in results)
            if record:
                self._out_meta = [(r.shape, r.dtype) for r in results]
        else:
            record = record and out.dtype in backend.float_dtypes
            results = tensor_cls(out, backend, record, self if record else None, 0, version)
        if is_view:
            _remember_base(type(self), first, args[1:], results)
        if record:
            self._tensor_cls = tensor_cls
            self._saved = _resolve(self._to_save, args, raw, out, results) if self._to_save else ()
            self._to_save = ()
            if (log := recording.get()) is not None:
                log.append(self)
        return results

    def run_backward(self, grads):
        """Called by the engine: ``backward`` on the output gradients (zeros for unused outputs), one
        result per input edge."""
        if len(grads) > 1 and any(g is None for g in grads):  # an output nobody used: zero gradient
            grads = list(grads)
            for i, g in enumerate(grads):
                if g is None:
                    grads[i] = self._zero_grad(i)
        out = self.backward(*grads)
        if type(out) is not tuple:
            out = (out,)
        n = len(self.next_edges)
        if len(out) != n:
            if len(out) < n and self.next_edges[len(out):].count(None) == n - len(out):
                out = out + (None,) * (n - len(out))  # trailing non-tensor options
            else:
                raise RuntimeError(f"{self.name()}.backward returned {len(out)} gradients for {n} inputs")
        return out  # the engine checks each against its input (engine.conform_grad)

    def unobserved(self) -> bool:
        """True while nothing watches the ops a ``backward`` runs: no graph is being recorded
        (``create_graph=False``), no ``func.vmap`` batching rule and no forward-mode tangents are active.
        A backward may then compute its formulas on the arrays, the same kernels without a Function (and
        its ~15 µs) per step; otherwise it must use Tensor ops, which those machineries see."""
        return not _grad_enabled.get() and batching.get() is None and not dual.propagating.get()

    def _zero_grad(self, i):
        shape, dtype = self._out_meta[i]
        return self._tensor_cls(self.backend.full(shape, 0, dtype), self.backend)

    def release(self):
        """Free what was saved for backward; a second backward through this node then raises. A node
        that saved nothing (a view, an addition) can run again, as PyTorch's: a tensor made once outside
        a loop (``w_t = w.t()``) serves every step's backward."""
        if self._saved:
            self._freed = True
            self._saved = ()


def _remember_base(fn_cls, first, params, results) -> None:
    """Each view output records its base (the first tensor that is not a view) and the view ops from
    it, so that an in-place write through the view can update the base (Tensor._rebase)."""
    src = first._view_src
    base, chain = (first, ()) if src is None else src[:2]
    state = base.grad_fn, base.requires_grad
    if type(results) is tuple:
        for i, r in enumerate(results):
            r._view_src = (base, chain + ((fn_cls, params, i),)) + state
    else:
        results._view_src = (base, chain + ((fn_cls, params, None),)) + state


def _resolve(to_save, args, raw, out, results) -> tuple:
    """(kind, value, version) for each saved array: an input tensor, an output, or a constant."""
    outs, results = (out, results) if type(out) is tuple else ((out,), (results,))
    saved = []
    for array in to_save:  # saved arrays are matched by identity
        i = _position(array, raw)
        if i is not None and isinstance(args[i], TensorCore):
            saved.append((_INPUT, args[i], args[i]._version[0]))
            continue
        i = _position(array, outs)
        if i is not None:
            version = results[i]._version
            saved.append((_OUTPUT, (array, i, version), version[0]))
        else:  # an intermediate array, a Python number, or None
            saved.append((_CONST, array, 0))
    return tuple(saved)


def _position(obj, items):
    """The index of ``obj`` itself (not of an equal object) in ``items``, or None."""
    i = 0
    for item in items:
        if item is obj:
            return i
        i += 1
    return None


class Identity(Function):
    """x itself, recorded as a node of its own: where a transform's backward pass stops
    (tinytensor.func), or where a checkpointed block's graph starts (utils.checkpoint)."""

    is_view = True

    def forward(self, x):
        return x

    def backward(self, gy):
        return gy

    def jvp(self, tx):
        return tx


def _describe(args) -> str:
    return ", ".join(f"{t.shape} {t.dtype.name} on {t.device}" for t in args if isinstance(t, TensorCore))


def _device_mismatch(fn, args):
    devices = [f"{a.device} {a.shape}" for a in args if isinstance(a, TensorCore)]
    raise RuntimeError(
        f"{fn.name()}: expected all tensors on one device, got " + ", ".join(devices) +
        ". Move them explicitly with .to(device); tinytensor never copies between devices implicitly."
    )
