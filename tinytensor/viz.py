"""Draw the graph autograd recorded: Graphviz DOT text with no dependency, rendered by ``dot`` if present.

    import tinytensor as tt
    from tinytensor import viz
    w = tt.randn(3, requires_grad=True)
    loss = (w.tanh() * w).sum()
    loss.backward()
    print(viz.to_dot(loss, names={"w": w}))   # paste into any Graphviz viewer
    viz.draw(loss, "graph.svg", names={"w": w})  # needs the Graphviz `dot` program

Boxes are tensors: the leaves (blue), the output (green) and intermediates kept with
``retain_grad()`` (yellow), each with shape, dtype, device and, once backward has run, the norm of
its ``.grad``. Ellipses are ops (one per Function call) with the bytes they saved for backward;
a dashed ellipse has already been through a backward without ``retain_graph`` (its saved tensors
were freed, its structure stays). Arrows follow the forward computation, input -> op -> output;
backward walks them in reverse. Tensors that need no gradient (data, constants) are not part of
the graph and are not drawn. Graphs built by ``create_graph=True`` draw the same way.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .autograd.engine import Node
from .autograd.graph import describe, distinct, format_bytes, grad_norm, nbytes, saved_arrays, walk
from .autograd.tensor_core import TensorCore

_FILL = {"leaf": "#cfe2ff", "output": "#c7f0c2", "retained": "#fff3b0", "constant": "#eeeeee"}

INSTALL_HINT = (
    "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS) or `conda install -c conda-forge graphviz`; or write tinytensor.viz.to_dot(...) to a "
    ".dot file and open it in any Graphviz viewer"
)


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not on PATH."""


def to_dot(outputs, names: dict | None = None) -> str:
    """Graphviz DOT text of the graph that produced ``outputs`` (a Tensor or a list of Tensors).

    ``names`` maps labels to tensors ({"w": w}), shown on their boxes. Works before and after
    backward, and on graphs of higher-order derivatives; walks the graph without recursion.
    """
    roots = [outputs] if isinstance(outputs, TensorCore) else list(outputs)
    for r in roots:
        if not isinstance(r, TensorCore):
            raise TypeError(f"to_dot: expected a Tensor or a list of Tensors, got {type(r).__name__}")
    label_of = {id(t): name for name, t in (names or {}).items()}
    targets = walk([r for r in roots if r.requires_grad])

    ids: dict[int, str] = {}
    lines: list[str] = []

    def tensor_box(t, role: str) -> str:
        key = id(t)
        if key not in ids:
            ids[key] = f"t{len(ids)}"
            title = label_of.get(key, role)
            if key in label_of and role != "leaf":
                title = f"{title} ({role})"
            rows = [title, describe(t)]
            if t.grad is not None:
                rows.append(f"grad norm {grad_norm(t.grad):.4g}")
            lines.append(f'  {ids[key]} [label="{_escape(rows)}", shape=box, style="filled", '
                         f'fillcolor="{_FILL[role]}"];')
        return ids[key]

    via: dict[tuple, str] = {}  # (id(node), output_nr) -> the box of a retained tensor on that output
    n_ops = 0
    for target in targets:
        if not isinstance(target, Node):
            tensor_box(target, "leaf")
            continue
        n_ops += 1
        ids[id(target)] = name = f"f{len(ids)}"
        rows = [target.name()]
        meta = target._out_meta or [None]
        if len(meta) > 1:
            rows.append("outputs " + ", ".join(str(tuple(m[0])) for m in meta))
        saved = distinct(saved_arrays(target))
        if target._freed:
            rows.append("saved: freed")
        elif saved:
            rows.append(f"saved {format_bytes(sum(nbytes(a) for a in saved))}")
        style = "dashed" if target._freed else "filled"
        lines.append(f'  {name} [label="{_escape(rows)}", shape=ellipse, style="{style}", '
                     f'fillcolor="#e8e8e8"];')
        for nr, ref in sorted((target._retained or {}).items()):
            t = ref()
            if t is not None:
                via[(id(target), nr)] = box = tensor_box(t, "retained")
                lines.append(f"  {name} -> {box}{_out_label(target, nr)};")

    for target in targets:
        if not isinstance(target, Node):
            continue
        for edge in target.next_edges:
            if edge is None:
                continue
            src, nr = edge
            if (id(src), nr) in via:
                lines.append(f"  {via[(id(src), nr)]} -> {ids[id(target)]};")
            else:
                lines.append(f"  {ids[id(src)]} -> {ids[id(target)]}{_out_label(src, nr)};")

    for r in roots:
        if r.grad_fn is None:
            tensor_box(r, "leaf" if r.requires_grad else "constant")
        elif (id(r.grad_fn), r._output_nr) not in via:
            box = tensor_box(r, "output")
            lines.append(f"  {ids[id(r.grad_fn)]} -> {box}{_out_label(r.grad_fn, r._output_nr)};")

    n_leaves = sum(1 for t in targets if not isinstance(t, Node))
    head = [
        "digraph autograd {",
        f"  // {n_ops} ops, {n_leaves} leaves; arrows run forward (input -> op -> output)",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    return "\n".join(head + lines + ["}"]) + "\n"


def draw(outputs, path, names: dict | None = None, format: str | None = None) -> Path:
    """Render ``to_dot(outputs, names)`` to ``path`` (.svg, .png, .pdf ...) with Graphviz ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFoundError(
            f"viz.draw: the Graphviz `dot` program was not found on PATH; {INSTALL_HINT}"
        )
    path = Path(path)
    fmt = format or path.suffix.lstrip(".").lower() or "svg"
    result = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=to_dot(outputs, names),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"viz.draw: `dot -T{fmt}` failed for {path}: {result.stderr.strip()}")
    return path


def _out_label(src, nr: int) -> str:
    """Label an arrow with the output number when its op has several outputs."""
    if isinstance(src, Node) and src._out_meta is not None and len(src._out_meta) > 1:
        return f' [label="out {nr}"]'
    return ""


def _escape(rows: list[str]) -> str:
    return "\\n".join(r.replace("\\", "\\\\").replace('"', '\\"') for r in rows)


__all__ = ["to_dot", "draw", "GraphvizNotFoundError"]
