"""How much memory one backward pass holds: what the graph saved, what it frees, and the peak.

    report = tt.autograd.memory_report(loss)   # runs loss.backward() and measures it
    print(report)

What is measured (bytes of array elements, counted once per distinct array object):

- ``saved_bytes``: the arrays the graph's ops kept with ``save_for_backward`` when backward
  started. ``saved_leaf_bytes`` is the part owned by leaf tensors (inputs, parameters), which stay
  alive after the graph lets them go; the rest are activations, which the graph alone keeps.
- ``freed_bytes``: saved arrays let go during backward: an array is let go when the last op that
  saved it has run its backward and dropped what it saved (every op, without ``retain_graph``;
  none with it). So ``freed_bytes == saved_bytes`` after a plain ``backward()``.
- ``peak_bytes``: the largest, over the steps of the walk, of saved arrays not yet let go plus live
  gradients: those waiting in the engine's buffers, the ones the current op received and sent,
  and the ``.grad`` of leaves filled so far in this pass. ``peak_grad_bytes`` is the gradient part
  at its own largest.
- ``attribute_bytes``: arrays ops keep as plain attributes (e.g. embedding's index array); backward
  does not free these, they go with the graph.

Not measured: temporaries inside a single op's backward, allocator caches and pools (CuPy's memory
pool), and arrays the caller still holds (the forward outputs it kept).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .engine import Node, observe_backward
from .graph import attribute_arrays, distinct, format_bytes, nbytes, saved_arrays, saved_leaf_arrays, walk
from .tensor_core import TensorCore


@dataclass
class MemoryReport:
    """Bytes held by one backward pass; see the module docstring for what each number counts."""

    saved_bytes: int = 0
    saved_leaf_bytes: int = 0
    freed_bytes: int = 0
    peak_bytes: int = 0
    peak_grad_bytes: int = 0
    leaf_grad_bytes: int = 0
    attribute_bytes: int = 0
    num_ops: int = 0
    by_op: dict = field(default_factory=dict)  # op name -> saved bytes (each array counted once)

    def __str__(self) -> str:
        rows = [
            f"backward over {self.num_ops} ops",
            f"  saved for backward  {format_bytes(self.saved_bytes):>12}"
            f"  ({format_bytes(self.saved_leaf_bytes)} of it owned by leaves)",
            f"  freed by backward   {format_bytes(self.freed_bytes):>12}",
            f"  peak saved + grads  {format_bytes(self.peak_bytes):>12}"
            f"  (gradients alone peaked at {format_bytes(self.peak_grad_bytes)})",
            f"  leaf gradients      {format_bytes(self.leaf_grad_bytes):>12}",
        ]
        if self.attribute_bytes:
            rows.append(f"  kept as attributes  {format_bytes(self.attribute_bytes):>12}"
                        f"  (not freed by backward)")
        rows.append("  saved, by op:")
        for op, b in sorted(self.by_op.items(), key=lambda kv: -kv[1]):
            rows.append(f"    {op:<18}{format_bytes(b):>12}")
        return "\n".join(rows)


class _MemoryObserver:
    """Follows a backward walk: which saved arrays are still held, which gradients are live."""

    def __init__(self, roots):
        self.report = MemoryReport()
        self.holders: dict[int, int] = {}  # id(saved array) -> number of ops still holding it
        self.size: dict[int, int] = {}  # id(saved array) -> bytes
        self.node_arrays: dict[int, list] = {}  # id(node) -> ids of the distinct arrays it saved
        self.leaf_grads: dict[int, object] = {}  # id(leaf) -> its .grad array after this pass
        self.started = False
        self.retain_graph = False
        r = self.report
        leaf_owned, attrs = {}, {}
        for target in walk(roots):
            if not isinstance(target, Node):
                continue
            r.num_ops += 1
            arrays = distinct(saved_arrays(target))
            self.node_arrays[id(target)] = [id(a) for a in arrays]
            for a in arrays:
                self.holders[id(a)] = self.holders.get(id(a), 0) + 1
                self.size[id(a)] = nbytes(a)
            if arrays:
                r.by_op[target.name()] = r.by_op.get(target.name(), 0) + sum(nbytes(a) for a in arrays)
            leaf_owned.update((id(a), nbytes(a)) for a in saved_leaf_arrays(target))
            attrs.update((id(a), nbytes(a)) for a in attribute_arrays(target))
        r.saved_bytes = sum(self.size.values())
        r.saved_leaf_bytes = sum(leaf_owned.values())
        r.attribute_bytes = sum(attrs.values())
        self.live_saved = r.saved_bytes

    def begin(self, retain_graph: bool):
        if self.started:  # a backward run inside this one: not measured
            return None
        self.started, self.retain_graph = True, retain_graph
        return self

    def node(self, node, grads_in, grads_out, buffers):
        self._measure(buffers, (*grads_in, *grads_out))
        if self.retain_graph:
            return
        for key in self.node_arrays.pop(id(node), ()):  # the engine releases this node next
            self.holders[key] -= 1
            if self.holders[key] == 0:
                self.live_saved -= self.size[key]
                self.report.freed_bytes += self.size[key]

    def leaf(self, leaf, grad, buffers):
        if leaf.grad is not None:
            self.leaf_grads[id(leaf)] = leaf.grad.array
        self._measure(buffers, (grad,))

    def _measure(self, buffers, step_grads):
        arrays = {}
        for buf in buffers.values():
            for g in buf:
                if g is not None:
                    arrays[id(g.array)] = g.array
        for g in step_grads:
            if g is not None:
                arrays[id(g.array)] = g.array
        for a in self.leaf_grads.values():
            arrays[id(a)] = a
        grad_bytes = sum(nbytes(a) for a in arrays.values())
        r = self.report
        r.peak_grad_bytes = max(r.peak_grad_bytes, grad_bytes)
        r.peak_bytes = max(r.peak_bytes, self.live_saved + grad_bytes)


def memory_report(loss, gradient=None, *, retain_graph: bool = False,
                  create_graph: bool = False) -> MemoryReport:
    """Run ``loss.backward(gradient, retain_graph, create_graph)`` and report the bytes it held."""
    if not isinstance(loss, TensorCore):
        raise TypeError(f"memory_report: expected a Tensor, got {type(loss).__name__}")
    observer = _MemoryObserver([loss])
    leaves = [t for t in walk([loss]) if not isinstance(t, Node)]
    with observe_backward(observer):
        loss.backward(gradient, retain_graph=retain_graph, create_graph=create_graph)
    observer.report.leaf_grad_bytes = sum(nbytes(t.grad.array) for t in leaves if t.grad is not None)
    return observer.report


__all__ = ["memory_report", "MemoryReport"]
