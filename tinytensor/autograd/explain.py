"""Watch a backward pass step by step, and find out why a tensor's ``.grad`` is None.

    w = tt.randn(3, requires_grad=True)
    loss = (w.tanh() * w).sum()
    steps = tt.autograd.explain(loss, names={"w": w})   # runs loss.backward() and prints each step
    print(tt.autograd.why_no_grad(w.tanh(), loss))        # "not_leaf: ... call .retain_grad() ..."

``explain`` really runs the backward pass (so the leaves' ``.grad`` are set as usual) and records
each step in the order the engine runs it: an op receives the gradient of the loss with respect to
its output(s) and sends one gradient to each of its inputs; a leaf receives its gradient and adds it
to ``.grad`` (the step PyTorch calls AccumulateGrad).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from .engine import Node, observe_backward
from .graph import describe, grad_norm, walk
from .tensor_core import TensorCore


@dataclass(frozen=True)
class GradInfo:
    """Shape and Euclidean norm of one gradient."""

    shape: tuple
    norm: float

    def __str__(self) -> str:
        return f"{self.shape} norm {self.norm:.4g}"


@dataclass(frozen=True)
class Step:
    """One step of a backward pass.

    ``op`` is the Function's name, or ``"AccumulateGrad"`` when a leaf receives its gradient
    (then ``name`` is the leaf's name). ``grads_in[i]`` is the gradient w.r.t. output i of the op
    (None where no gradient reached that output); ``grads_out[j]`` is the gradient the op sends to
    input j and ``targets[j]`` where it goes (both None for inputs that need no gradient).
    """

    index: int
    op: str
    name: str
    grads_in: tuple
    grads_out: tuple
    targets: tuple


class _Recorder:
    """The engine observer behind ``explain``: one Step per node and per leaf, in engine order."""

    def __init__(self, names: dict | None):
        self.names = {id(t): n for n, t in (names or {}).items()}
        self.steps: list[Step] = []
        self.started = False

    def begin(self, retain_graph: bool):
        if self.started:  # a backward run inside this one (e.g. by a hook): not part of the story
            return None
        self.started = True
        return self

    def node(self, node, grads_in, grads_out, buffers):
        targets = tuple(None if e is None else self._target_name(e) for e in node.next_edges)
        out = tuple(None if e is None else _info(g) for e, g in zip(node.next_edges, grads_out))
        self.steps.append(Step(len(self.steps) + 1, node.name(), node.name(),
                               tuple(_info(g) for g in grads_in), out, targets))

    def leaf(self, leaf, grad, buffers):
        self.steps.append(Step(len(self.steps) + 1, "AccumulateGrad", self._leaf_name(leaf),
                               (_info(grad),), (), ()))

    def _target_name(self, edge) -> str:
        target, nr = edge
        if isinstance(target, Node):
            multi = target._out_meta is not None and len(target._out_meta) > 1
            return f"{target.name()}[{nr}]" if multi else target.name()
        return self._leaf_name(target)

    def _leaf_name(self, leaf) -> str:
        name = self.names.get(id(leaf))
        return f"leaf {name}" if name is not None else f"leaf {tuple(leaf.shape)}"


def _info(g):
    return None if g is None else GradInfo(tuple(g.shape), grad_norm(g))


def explain(loss, gradient=None, *, retain_graph: bool = False, create_graph: bool = False,
            names: dict | None = None, verbose: bool = True, file=None) -> list[Step]:
    """Run ``loss.backward(gradient, retain_graph, create_graph)``, printing and returning its steps.

    ``names`` ({"w": w}) labels leaves; ``verbose=False`` only returns the steps; ``file`` is where
    the table goes (default stdout).
    """
    if not isinstance(loss, TensorCore):
        raise TypeError(f"explain: expected a Tensor, got {type(loss).__name__}")
    recorder = _Recorder(names)
    with observe_backward(recorder):
        loss.backward(gradient, retain_graph=retain_graph, create_graph=create_graph)
    if verbose:
        print(format_steps(recorder.steps, loss), file=file or sys.stdout)
    return recorder.steps


def format_steps(steps: list[Step], loss=None) -> str:
    """The table ``explain`` prints: one row per step, one line per outgoing gradient."""
    what = f" of a {describe(loss)} tensor" if loss is not None else ""
    lines = [
        f"backward{what}: {len(steps)} steps, in the order the engine ran them",
        f"{'step':>4}  {'op':<16}{'gradient in (w.r.t. its output)':<34}gradients out (w.r.t. its inputs)",
    ]
    for s in steps:
        if s.op == "AccumulateGrad":
            lines.append(f"{s.index:>4}  {s.op:<16}{_fmt(s.grads_in[0]):<34}into {s.name}.grad")
            continue
        grad_in = ", ".join(_fmt(g) for g in s.grads_in)
        outs = [f"-> {t}: {_fmt(g)}" for g, t in zip(s.grads_out, s.targets) if t is not None]
        lines.append(f"{s.index:>4}  {s.op:<16}{grad_in:<34}{outs[0] if outs else ''}")
        lines.extend(f"{'':>4}  {'':<16}{'':<34}{o}" for o in outs[1:])
    return "\n".join(lines)


def _fmt(g) -> str:
    return "no gradient" if g is None else str(g)


@dataclass(frozen=True)
class NoGradReason:
    """Why a tensor's ``.grad`` is None: a short ``code`` and a ``message`` that says what to do."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def why_no_grad(tensor, loss=None) -> NoGradReason:
    """Say why ``tensor.grad`` is None (and how to get it); pass ``loss`` to check it reaches the tensor.

    Codes: ``has_grad`` (it is not None), ``not_floating``, ``requires_grad_off``, ``not_leaf``,
    ``loss_has_no_graph``, ``not_reached``, ``grad_reset``, ``backward_not_run``.
    """
    t = tensor
    if not isinstance(t, TensorCore):
        raise TypeError(f"why_no_grad: expected a Tensor, got {type(t).__name__}")
    if t.grad is not None:
        return NoGradReason("has_grad", f"it has a gradient: .grad is a {describe(t.grad)} tensor")
    if not t.dtype.is_floating_point:
        return NoGradReason("not_floating", f"it is a {t.dtype.name} tensor; only floating-point tensors "
                                            f"carry gradients (convert with .float() before using it)")
    if not t.requires_grad:
        return NoGradReason(
            "requires_grad_off",
            "requires_grad is False, so autograd does not track it. Create it with requires_grad=True "
            "(or call .requires_grad_()). If it is the result of an op, that op ran under no_grad(), "
            "on a .detach()ed tensor, or only on tensors that do not require grad.",
        )
    retained = t.grad_fn is not None and _is_retained(t)
    if t.grad_fn is not None and not retained:
        return NoGradReason(
            "not_leaf",
            f"it is not a leaf: the op {t.grad_fn.name()} computed it from other tensors, and backward "
            f"stores .grad only on leaves. Call .retain_grad() on it before backward (or use "
            f"tt.autograd.grad(loss, it)). If it is meant to be a parameter, make it a leaf: create it "
            f"with the dtype and device you want and requires_grad=True, or use .detach().requires_grad_().",
        )
    if loss is None:
        return NoGradReason(
            "backward_not_run",
            "it requires grad but no backward has stored a gradient in it yet: call loss.backward() on a "
            "loss computed from it (pass loss= to why_no_grad to check that the loss reaches it). "
            "tt.autograd.grad() returns gradients instead of storing them in .grad.",
        )
    if not loss.requires_grad:
        return NoGradReason(
            "loss_has_no_graph",
            "the loss has no graph (requires_grad is False): it was computed under no_grad(), from "
            ".detach()ed tensors, or from tensors that do not require grad, so backward cannot reach "
            "anything. Compute it with grad mode on.",
        )
    graph = list(walk([loss]))
    reached = {id(x) for x in graph}
    if id(t.grad_fn if retained else t) not in reached:
        return NoGradReason(
            "not_reached",
            "the loss's graph does not reach it: it was not used to compute the loss, or it was used "
            "only under no_grad(), through .detach(), or through ops without a gradient (argmax, "
            "comparisons, integer casts), which cut it from the graph.",
        )
    if any(getattr(x, "_freed", False) for x in graph):  # (a node that saved nothing is never freed)
        return NoGradReason(
            "grad_reset",
            "backward already ran through this loss's graph (its saved tensors are freed), yet .grad is "
            "None: it was reset since (zero_grad(set_to_none=True), or .grad = None), or the gradient "
            "was taken with tt.autograd.grad(), which returns it instead of storing it.",
        )
    return NoGradReason(
        "backward_not_run",
        "the loss reaches it but backward has not run: call loss.backward() (if it has run with "
        "retain_graph=True, or through a graph that saved no tensors, .grad was reset to None since).",
    )


def _is_retained(t) -> bool:
    ref = (t.grad_fn._retained or {}).get(t._output_nr)
    return ref is not None and ref() is t


__all__ = ["explain", "format_steps", "why_no_grad", "Step", "GradInfo", "NoGradReason"]
