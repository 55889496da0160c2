"""The backward walk.

The graph is a DAG of Nodes (one per op call). Each Node has ``next_edges``: for every input, either
``None`` (needs no gradient), ``(node, output_nr)`` for a tensor produced by another op, or
``(leaf_tensor, 0)`` for a leaf, whose gradient is accumulated into ``leaf.grad``.

We walk it without recursion: first count, for every node, how many edges point at it; then run
nodes from a ready stack, each once all the gradients flowing into it have arrived (Kahn's
topological order). A 100,000-op chain costs a loop, not a Python stack frame per op.

What happens around each step (tensor hooks, ``retain_grad``, accumulating into ``.grad``,
``autograd.grad``'s capture, tools that watch the walk) is the job of a ``Listener``; the walk
itself is only the loop in ``run_backward``.
"""
from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from contextvars import ContextVar

from .grad_mode import is_anomaly_enabled, set_grad_enabled

# The callbacks queued (queue_callback) during the backward walk now running; None outside a walk.
_callbacks: ContextVar = ContextVar("tinytensor_backward_callbacks", default=None)

# Tools that look inside a backward pass (autograd.explain, autograd.memory_report) install an
# observer here; the walk then reports every step to it.
_observer: ContextVar = ContextVar("tinytensor_backward_observer", default=None)


@contextmanager
def observe_backward(observer):
    """Report the steps of backward walks run inside this block to ``observer``.

    At the start of a walk the engine calls ``observer.begin(retain_graph)``, which returns the
    object to notify (or None to leave this walk alone, e.g. a nested one). Then, in the engine's
    order, ``.node(node, grads_in, grads_out, buffers)`` after each node's backward (before its
    saved tensors are released) and ``.leaf(leaf, grad, buffers)`` after each leaf's gradient
    is accumulated; ``buffers`` holds the gradients still waiting to be used.
    """
    token = _observer.set(observer)
    try:
        yield observer
    finally:
        _observer.reset(token)


def queue_callback(callback) -> None:
    """Run ``callback()`` once the backward walk now running has finished (PyTorch's
    ``Variable._execution_engine.queue_callback``). Call it from a hook during backward; callbacks
    run in the order queued, after every gradient of the walk has been accumulated.
    """
    queued = _callbacks.get()
    if queued is None:
        raise RuntimeError("queue_callback: no backward pass is running; call it from a hook during backward")
    queued.append(callback)


class Node:
    """A recorded op in the graph; Function subclasses it."""

    __slots__ = ("next_edges", "_out_meta", "_in_meta", "_hooks", "_retained", "_freed", "__weakref__")

    def __init__(self, next_edges: tuple = (), in_meta=()):
        self.next_edges = next_edges
        self._out_meta = None  # None: one output; [(shape, dtype), ...] for multi-output ops
        self._in_meta = in_meta  # (shape, dtype, backend) of each input that needs a gradient, else None
        self._hooks = None  # {output_nr: [hook, ...]} for non-leaf tensors
        self._retained = None  # {output_nr: weakref to tensor} for retain_grad()
        self._freed = False

    def name(self) -> str:
        """The op's name in messages and reprs (``grad_fn=<Mul>``): the class name."""
        return type(self).__name__

    def run_backward(self, grads):  # pragma: no cover - Function implements it
        """The gradients for this node's inputs from those of its outputs (Function implements it)."""
        raise NotImplementedError

    def release(self):
        """Drop what was saved for backward (after a backward without retain_graph)."""
        self._freed = True


# ---- the walk --------------------------------------------------------------------------------

def run_backward(roots, root_grads, *, retain_graph: bool, create_graph: bool, listener=None,
                 capture=None):
    """Propagate ``root_grads`` from ``roots`` ((node or leaf, output_nr) pairs) to the leaves.

    ``listener`` decides what reaching a leaf means: by default (``Accumulate``) its gradient is
    added to ``.grad``; ``autograd.grad`` passes ``capture``, a dict of the targets whose gradients
    it wants, and gets them there instead (``Capture``).
    """
    if listener is None:
        listener = Accumulate(create_graph) if capture is None else Capture(create_graph, capture)
    observer = _observer.get()
    if observer is not None and (observer := observer.begin(retain_graph)) is not None:
        listener = Observed(listener, observer)
    listener.start(root_grads)
    callbacks = []
    token = _callbacks.set(callbacks)
    try:
        _walk(roots, root_grads, retain_graph, create_graph, listener)
        for callback in callbacks:  # a callback may queue more: they run too
            callback()
    finally:
        _callbacks.reset(token)


def _walk(roots, root_grads, retain_graph: bool, create_graph: bool, listener) -> None:
    """Kahn's walk from the roots: each node's backward runs once all its gradients have arrived."""
    deps = _count_dependencies(roots)
    buffers: dict[int, list] = {}  # id(node or leaf) -> the gradients of its outputs so far
    ready = deque()  # a stack (deque: no reallocation as a chain's one ready node comes and goes)
    for (target, nr), g in zip(roots, root_grads):
        if _deliver(buffers, target, nr, g, create_graph) and deps.get(id(target), 0) == 0:
            ready.append(target)

    # (id, output_nr) of the buffered gradients that are sums this walk made: arrays of their own, so the
    # next gradients for them are added in place (as PyTorch's InputBuffer does), without a new array
    sums = set()
    every_node = listener.every_node  # else only nodes with hooks or retain_grad() are shown to it
    with set_grad_enabled(create_graph):
        while ready:
            target = ready.pop()
            grads = buffers.pop(id(target))
            if not isinstance(target, Node):  # a leaf: every gradient for it has arrived
                listener.leaf(target, grads[0], buffers)
                continue
            if grads[0] is None and all(g is None for g in grads):  # no gradient flows through it
                out_grads = (None,) * len(target.next_edges)
            else:
                if every_node or target._hooks or target._retained:
                    grads = listener.before_node(target, grads)
                if target._freed:
                    _raise_freed(target)
                out_grads = target.run_backward(grads)
            if every_node:
                listener.after_node(target, grads, out_grads, buffers)
            if not retain_graph:
                target.release()
            for edge, g, meta in zip(target.next_edges, out_grads, target._in_meta):
                if edge is None:
                    continue
                # the gradient contract: shape, dtype and device of the input it is for
                if g is not None and (getattr(g, "backend", None) is not meta[2] or g.array.shape != meta[0]
                                      or g.array.dtype != meta[1]):
                    g = conform_grad(g, *meta, f"{target.name()}.backward")
                nxt, nr = edge
                key = id(nxt)
                buf = buffers.get(key)  # add g into nxt's buffer (the roots' go in by _deliver)
                if buf is None:
                    buf = buffers[key] = [None] * _num_outputs(nxt)
                if g is not None:
                    if buf[nr] is None:
                        buf[nr] = g
                    elif (key, nr) in sums:  # a sum made here, which nothing else holds: add in place
                        buf[nr].array += g.array
                    else:
                        buf[nr] = _sum(buf[nr], g, create_graph)
                        if not create_graph:  # (a recorded sum is a node's output: never written to)
                            sums.add((key, nr))
                deps[key] -= 1
                if not deps[key]:  # every gradient for nxt has arrived
                    ready.append(nxt)
            grads = out_grads = g = None  # free this step's gradients before the next step


def _count_dependencies(roots) -> dict:
    """For every node and leaf reachable from the roots: how many edges point at it."""
    deps: dict[int, int] = {}
    stack = deque(t for t in {id(t): t for t, _ in roots}.values() if isinstance(t, Node))  # a node once
    walked = {id(t) for t in stack}  # the roots' nodes; every other node is walked when first counted
    while stack:
        for edge in stack.pop().next_edges:
            if edge is None:
                continue
            key = id(edge[0])
            if key in deps:
                deps[key] += 1
            else:
                deps[key] = 1
                if isinstance(edge[0], Node) and key not in walked:
                    stack.append(edge[0])
    return deps


def _deliver(buffers: dict, target, nr: int, g, create_graph: bool) -> bool:
    """Add gradient ``g`` to output ``nr`` of ``target``'s buffer; True if the buffer is new."""
    key = id(target)
    buf = buffers.get(key)
    new = buf is None
    if new:
        buf = buffers[key] = [None] * _num_outputs(target)
    if g is not None:
        buf[nr] = g if buf[nr] is None else _sum(buf[nr], g, create_graph)
    return new


def _num_outputs(target) -> int:
    meta = target._out_meta if isinstance(target, Node) else None
    return 1 if meta is None else len(meta)


def _sum(a, b, create_graph: bool):
    """a + b for two gradients of one tensor; recorded only when building a graph of the backward."""
    return a + b if create_graph else a._wrap(a.array + b.array)


def _raise_freed(node: Node):
    raise RuntimeError(
        f"{node.name()}: trying to backward through the graph a second time, but its saved "
        f"tensors were already freed. Pass retain_graph=True to the first backward() call."
    )


# ---- the gradient contract -------------------------------------------------------------------

def conform_grad(g, shape: tuple, dtype, backend, who: str):
    """``g`` as the gradient of a tensor of ``shape`` and ``dtype`` (the array's) on ``backend``, or an
    error naming ``who``.

    A gradient with extra or stretched dimensions that sum down to ``shape`` is summed (a backward
    that forgot to undo broadcasting); another dtype is cast; another shape or device is an error.
    """
    if not hasattr(g, "array") or not hasattr(g, "backend"):
        raise TypeError(f"{who}: returned a {type(g).__name__} as a gradient; expected a Tensor or None")
    if g.backend is not backend:
        raise RuntimeError(
            f"{who}: returned a gradient on {g.backend.device} for a tensor on {backend.device}"
        )
    gshape = g.array.shape
    if gshape != shape:
        lead = len(gshape) - len(shape)
        if lead < 0 or any(s != 1 and s != n for s, n in zip(shape, gshape[lead:])):
            raise RuntimeError(
                f"{who}: returned a gradient of shape {tuple(gshape)} for a tensor of shape {tuple(shape)}"
            )
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 != gshape[lead + i])
        g = (g.sum(dim=axes, keepdim=True) if axes else g).reshape(shape)
    dtype = backend.dtype_of_xp(dtype)
    if g.dtype is not dtype:
        if not dtype.is_floating_point:
            raise RuntimeError(f"{who}: a gradient for a tensor of dtype {dtype}, which cannot have one")
        g = g.to(dtype=dtype)
    return g


# ---- listeners: what happens around each step ------------------------------------------------

class Accumulate:
    """The default listener: runs tensor hooks, fills ``retain_grad()`` tensors and accumulates each
    leaf's gradient into its ``.grad``, which is always an array of the leaf's own: writable, the
    leaf's shape and dtype, shared with no other tensor and no broadcast view. Then the leaf's
    post-accumulate hooks see it: its ``.grad`` is final for this walk."""

    def __init__(self, create_graph: bool):
        self.create_graph = create_graph
        self.anomaly = self.every_node = is_anomaly_enabled()  # anomaly mode checks every node
        self.given = set()  # ids of the arrays already handed out in this walk (roots, .grads)

    def start(self, root_grads) -> None:
        self.given.update(id(g.array) for g in root_grads)

    def before_node(self, node: Node, grads: list) -> list:
        if node._hooks or node._retained:
            for nr, g in enumerate(grads):
                if g is None:
                    continue
                g = grads[nr] = _run_hooks((node._hooks or {}).get(nr, ()), g, f"a hook on {node.name()}")
                ref = (node._retained or {}).get(nr)
                tensor = ref() if ref is not None else None
                if tensor is not None:
                    tensor.grad = self.own(g) if tensor.grad is None else _sum(tensor.grad, g, False)
        return grads

    def after_node(self, node: Node, grads, out_grads, buffers) -> None:
        if self.anomaly:
            for g in out_grads:
                if g is not None and not g.isfinite().all().item():
                    raise RuntimeError(f"detect_anomaly: {node.name()}.backward produced NaN or inf values")

    def leaf(self, leaf, grad, buffers) -> None:
        if grad is None:
            return
        grad = _run_hooks(leaf._hooks or (), grad, "a hook on a leaf tensor")
        if leaf.grad is None:
            leaf.grad = self.own(grad)
        else:
            leaf.grad = _sum(leaf.grad, grad if self.create_graph else grad.detach(), self.create_graph)
        for hook in leaf._post_accumulate_hooks or ():
            hook(leaf)

    def own(self, g):
        """g, or a copy of it when its array is a view, read-only, or already handed out."""
        data = g.array
        if g.backend.owns(data) and id(data) not in self.given:
            self.given.add(id(data))
            return g if self.create_graph else g.detach()
        if self.create_graph:
            return g.clone()  # recorded: the copy stays differentiable
        copy = g._wrap(g.backend.copy(data))
        self.given.add(id(copy.array))
        return copy


class Capture(Accumulate):
    """``autograd.grad``: the total gradient reaching each target in ``wanted`` (a dict
    ``{(id(node or leaf), output_nr): None}``) is stored there; no ``.grad`` is touched."""

    def __init__(self, create_graph: bool, wanted: dict):
        super().__init__(create_graph)
        self.wanted = wanted
        self.every_node = True

    def before_node(self, node, grads):
        grads = super().before_node(node, grads)
        for nr, g in enumerate(grads):
            if (id(node), nr) in self.wanted:
                self.wanted[(id(node), nr)] = g
        return grads

    def leaf(self, leaf, grad, buffers):
        if grad is not None and (id(leaf), 0) in self.wanted:
            self.wanted[(id(leaf), 0)] = _run_hooks(leaf._hooks or (), grad, "a hook on a leaf tensor")


class Observed:
    """A listener that also reports every step to an observer (autograd.explain, memory_report)."""

    every_node = True

    def __init__(self, inner, observer):
        self.inner, self.observer = inner, observer

    def start(self, root_grads):
        self.inner.start(root_grads)

    def before_node(self, node, grads):
        return self.inner.before_node(node, grads)

    def after_node(self, node, grads, out_grads, buffers):
        self.inner.after_node(node, grads, out_grads, buffers)
        self.observer.node(node, grads, out_grads, buffers)

    def leaf(self, leaf, grad, buffers):
        self.inner.leaf(leaf, grad, buffers)
        self.observer.leaf(leaf, grad, buffers)


def _run_hooks(hooks, g, who: str):
    """Each hook sees the gradient; one that returns a tensor replaces it (checked like a backward's)."""
    for hook in hooks:
        new = hook(g)
        if new is not None:
            g = conform_grad(new, g.array.shape, g.array.dtype, g.backend, who)
    return g
