"""Reading a recorded graph: its nodes and leaves, what each node saved, and gradient sizes.

Shared by the tools that look inside autograd (``tinytensor.viz``, ``autograd.explain``,
``autograd.memory_report``). Everything here only reads the graph; nothing changes it.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype
from .engine import Node
from .function import _CONST, _INPUT, _OUTPUT
from .tensor_core import TensorCore


def walk(roots) -> list:
    """Every Node and leaf tensor reachable from ``roots`` (tensors, nodes or leaves), each once.

    Iterative depth-first search, so a graph of a million ops needs no deep Python stack. The
    order is deterministic: a target comes before the inputs it points to.
    """
    order, seen = [], set()
    stack = [_target(r) for r in reversed(list(roots))]
    stack = [t for t in stack if t is not None]
    while stack:
        target = stack.pop()
        if id(target) in seen:
            continue
        seen.add(id(target))
        order.append(target)
        if isinstance(target, Node):
            for edge in reversed(target.next_edges):
                if edge is not None and id(edge[0]) not in seen:
                    stack.append(edge[0])
    return order


def _target(obj):
    """The graph object a root stands for: a tensor's producer, a leaf itself, or a Node."""
    if isinstance(obj, Node):
        return obj
    if isinstance(obj, TensorCore):
        if obj.grad_fn is not None:
            return obj.grad_fn
        return obj if obj.requires_grad else None
    raise TypeError(f"expected a Tensor or a graph Node, got {type(obj).__name__}")


def saved_arrays(node: Node) -> list:
    """The backend arrays ``node`` keeps for backward through ``save_for_backward`` (empty once freed)."""
    out = []
    for kind, value, _ in getattr(node, "_saved", ()):
        if kind == _INPUT:
            out.append(value.array)
        elif kind == _OUTPUT:
            out.append(value[0])
        elif kind == _CONST and hasattr(value, "shape"):
            out.append(value)
    return out


def distinct(arrays) -> list:
    """The arrays with repeats (the same object saved twice, as by ``x * x``) removed."""
    seen = {}
    for a in arrays:
        seen.setdefault(id(a), a)
    return list(seen.values())


def saved_leaf_arrays(node: Node) -> list:
    """Those of ``saved_arrays(node)`` that are the data of leaf tensors (inputs, parameters)."""
    return [value.array for kind, value, _ in getattr(node, "_saved", ())
            if kind == _INPUT and value.grad_fn is None]


def attribute_arrays(node: Node) -> list:
    """Arrays a Function keeps as plain attributes (e.g. index arrays): not freed by backward."""
    return [v for v in getattr(node, "__dict__", {}).values()
            if hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, TensorCore)]


def nbytes(array) -> int:
    """Bytes of an array's elements (also for namespaces whose arrays have no ``.nbytes``)."""
    n = getattr(array, "nbytes", None)
    if n is not None:
        return int(n)
    return int(array.size) * as_dtype(array.dtype).itemsize


def format_bytes(n: int) -> str:
    """``96 B``, ``1.5 KiB``, ``3.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def grad_norm(t) -> float:
    """The Euclidean norm of a gradient tensor, computed in float64 on the host."""
    host = np.asarray(t.backend.to_host(t.array), dtype=np.float64)
    return float(np.sqrt(np.sum(host * host)))


def describe(t) -> str:
    """``(3, 4) float32 cpu``: shape, dtype and device of a tensor."""
    return f"{tuple(t.shape)} {t.dtype.name} {t.device}"


__all__ = [
    "walk", "saved_arrays", "distinct", "saved_leaf_arrays", "attribute_arrays", "nbytes", "format_bytes",
    "grad_norm", "describe",
]
