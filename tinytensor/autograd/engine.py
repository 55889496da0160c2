"""The backward walk.

The graph is a DAG of Nodes (one per op call). Each Node has ``next_edges``: for every input, either
``None`` (needs no gradient), ``(node, output_nr)`` for a tensor produced by another op, or
``(leaf_tensor, 0)`` for a leaf, whose gradient is accumulated into ``leaf.grad``.

We walk it without recursion: first count, for every node, how many edges point at it; then run
nodes from a ready stack, each once all the gradients flowing into it have arrived (Kahn's
topological order). A 100,000-op chain costs a loop, not a Python stack frame per op.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from .grad_mode import is_anomaly_enabled, set_grad_enabled

# Tools that look inside a backward pass (autograd.explain, autograd.memory_report) install an
# observer here; the walk then reports every step to it. Unused, it costs one check per step.
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


class Node:
    """A recorded op in the graph; Function subclasses it."""

    __slots__ = ("next_edges", "_out_meta", "_hooks", "_retained", "_freed", "__weakref__")

    def __init__(self):
        self.next_edges = ()
        self._out_meta = None  # None: one output; [(shape, dtype), ...] for multi-output ops
        self._hooks = None  # {output_nr: [hook, ...]} for non-leaf tensors
        self._retained = None  # {output_nr: weakref to tensor} for retain_grad()
        self._freed = False

    def name(self) -> str:
        return type(self).__name__

    def run_backward(self, grads):  # pragma: no cover - Function implements it
        raise NotImplementedError

    def release(self):
        """Drop what was saved for backward (after a backward without retain_graph)."""
        self._freed = True


def _count_dependencies(roots) -> dict:
    deps: dict[int, int] = {}
    stack = list({id(t): t for t, _ in roots}.values())  # two outputs of one node: walk it once
    seen = {id(t) for t in stack}
    while stack:
        node = stack.pop()
        if not isinstance(node, Node):
            continue
        for edge in node.next_edges:
            if edge is None:
                continue
            target = edge[0]
            key = id(target)
            deps[key] = deps.get(key, 0) + 1
            if key not in seen:
                seen.add(key)
                stack.append(target)
    return deps


def _sum(a, b, create_graph: bool):
    """a + b for two gradients of one tensor; recorded only when building a graph of the backward."""
    return a + b if create_graph else a._wrap(a.data + b.data)


def run_backward(roots, root_grads, *, retain_graph: bool, create_graph: bool, capture=None):
    """Propagate ``root_grads`` from ``roots`` ((node or leaf, output_nr) pairs) to the leaves.

    Without ``capture`` the gradients of leaves are accumulated into their ``.grad``. With
    ``capture`` (a dict ``{(id(target), output_nr): None}``, used by ``autograd.grad``) the total
    gradient arriving at each listed target is stored there instead and no ``.grad`` is touched.
    """
    observer = _observer.get()
    if observer is not None:
        observer = observer.begin(retain_graph)
    deps = _count_dependencies(roots)
    buffers: dict[int, list] = {}
    ready = []
    for (target, nr), g in zip(roots, root_grads):
        key = id(target)
        if key not in buffers:
            buffers[key] = [None] * _num_outputs(target)
            if deps.get(key, 0) == 0:
                ready.append(target)
        buf = buffers[key]
        buf[nr] = g if buf[nr] is None else _sum(buf[nr], g, create_graph)

    anomaly = is_anomaly_enabled()
    with set_grad_enabled(create_graph):
        while ready:
            target = ready.pop()
            grads = buffers.pop(id(target))
            if isinstance(target, Node):
                if grads[0] is None and all(g is None for g in grads):
                    out_grads = (None,) * len(target.next_edges)  # no gradient flows through it
                else:
                    if target._hooks or target._retained or capture is not None:
                        _before_node(target, grads, capture)
                    if target._freed:
                        _raise_freed(target)
                    out_grads = target.run_backward(grads)
                    if anomaly:
                        _check_finite(target, out_grads)
                if observer is not None:
                    observer.node(target, grads, out_grads, buffers)
                edges = target.next_edges
                if not retain_graph:
                    target.release()
                for edge, g in zip(edges, out_grads):
                    if edge is None:
                        continue
                    nxt, nr = edge
                    key = id(nxt)
                    buf = buffers.get(key)
                    if buf is None:
                        buf = buffers[key] = [None] * _num_outputs(nxt)
                    if g is not None:
                        old = buf[nr]
                        buf[nr] = g if old is None else _sum(old, g, create_graph)
                    left = deps[key] - 1
                    deps[key] = left
                    if not left:
                        ready.append(nxt)
                grads = out_grads = g = old = None  # free this step's gradients before the next step
            else:
                _finish_leaf(target, grads[0], capture, create_graph)
                if observer is not None:
                    observer.leaf(target, grads[0], buffers)


def _num_outputs(target) -> int:
    meta = target._out_meta if isinstance(target, Node) else None
    return 1 if meta is None else len(meta)


def _before_node(node: Node, grads: list, capture) -> None:
    """Run tensor hooks, fill retain_grad() tensors and autograd.grad captures for node's outputs."""
    if node._hooks or node._retained:
        for nr, g in enumerate(grads):
            if g is None:
                continue
            for hook in (node._hooks or {}).get(nr, ()):
                new = hook(g)
                g = g if new is None else new
            grads[nr] = g
            ref = (node._retained or {}).get(nr)
            tensor = ref() if ref is not None else None
            if tensor is not None:
                tensor.grad = g if tensor.grad is None else tensor.grad + g
    if capture is not None:
        for nr, g in enumerate(grads):
            if (id(node), nr) in capture:
                capture[(id(node), nr)] = g


def _raise_freed(node: Node):
    raise RuntimeError(
        f"{node.name()}: trying to backward through the graph a second time, but its saved "
        f"tensors were already freed. Pass retain_graph=True to the first backward() call."
    )


def _check_finite(node: Node, grads) -> None:
    for g in grads:
        if g is not None and not g.isfinite().all().item():
            raise RuntimeError(f"detect_anomaly: {node.name()}.backward produced NaN or inf values")


def _finish_leaf(leaf, grad, capture, create_graph: bool):
    if grad is None:
        return
    for hook in leaf._hooks or ():
        new = hook(grad)
        grad = grad if new is None else new
    if capture is not None:
        if (id(leaf), 0) in capture:
            capture[(id(leaf), 0)] = grad
        return
    if not create_graph:
        grad = grad.detach()
    leaf.grad = grad if leaf.grad is None else _sum(leaf.grad, grad, create_graph)
