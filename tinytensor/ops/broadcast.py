"""Broadcasting and its adjoint. Every binary op's backward reduces its gradient with sum_to."""
from __future__ import annotations

from ..autograd.function import Function


class BroadcastTo(Function):
    is_view = True

    def forward(self, x, shape):
        self.in_shape = x.shape
        return self.xp.broadcast_to(x, shape)

    def backward(self, gy):
        return sum_to(gy, self.in_shape)  # the adjoint of copying is summing

    def jvp(self, tx, _):
        return BroadcastTo.apply(tx, self.result.shape)  # linear: the tangent takes the same op


class SumTo(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return self.backend.sum_to(x, shape)

    def backward(self, gy):
        return broadcast_to(gy, self.in_shape)

    def jvp(self, tx, _):
        return SumTo.apply(tx, self.result.shape)


def broadcast_to(x, shape):
    """x expanded to ``shape`` by NumPy's broadcasting rules (a view; its gradient is summed back);
    ``torch.broadcast_to``."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    _check_broadcast(tuple(x.shape), shape, "broadcast_to")
    return BroadcastTo.apply(x, shape)


def sum_to(x, shape):
    """Sum ``x`` over the dimensions that broadcasting added or stretched, down to ``shape``."""
    if x.shape == shape:
        return x
    return SumTo.apply(x, tuple(shape))


def _check_broadcast(src: tuple, dst: tuple, op: str):
    ok = len(src) <= len(dst) and all(s in (1, d) for s, d in zip(src[::-1], dst[::-1]))
    if not ok:
        raise ValueError(f"{op}: cannot broadcast shape {src} to {dst}")


def broadcast_shapes(*shapes, op: str = "broadcast") -> tuple:
    """NumPy's broadcasting of shapes, with an error that names the op and every shape."""
    first = shapes[0]
    if all(s == first for s in shapes):  # the common case, at a tenth of the cost
        return tuple(first)
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(-ndim, 0):
        sizes = {s[i] for s in shapes if len(s) >= -i} - {1}
        if len(sizes) > 1:
            raise ValueError(
                f"{op}: shapes {', '.join(str(tuple(s)) for s in shapes)} are not broadcastable "
                f"(dimension {i} has sizes {sorted(sizes)})"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
