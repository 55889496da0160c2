"""Fused ops for networks: softmax, log_softmax, dropout, one_hot, embedding."""
from __future__ import annotations

from ..autograd.dual import add as add_tangents
from ..autograd.function import Function
from ._operands import floating, like
from .dims import normalize_dim


class Softmax(Function):
    def forward(self, x, dim):
        self.dim = dim
        y = self.backend.softmax(x, dim) if x.size else self.xp.zeros_like(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return SoftmaxBackward.apply(y, gy, self.dim)

    def jvp(self, tx, _):
        return SoftmaxBackward.apply(self.result, tx, self.dim)  # J = diag(y) - y yᵀ is symmetric: J·t = Jᵀ·t


class SoftmaxBackward(Function):
    """gx = y ⊙ (gy - Σ gy⊙y); a Function of its own so that softmax has a second derivative."""

    def forward(self, y, gy, dim):
        self.dim = dim
        self.save_for_backward(y, gy)
        return self.backend.softmax_grad(y, gy, dim)

    def backward(self, gg):
        y, gy = self.saved_tensors
        d = self.dim
        s = (gy * y).sum(dim=d, keepdim=True)
        g_y = gg * (gy - s) - gy * (gg * y).sum(dim=d, keepdim=True)
        g_gy = SoftmaxBackward.apply(y, gg, d)  # the map gy -> gx is self-adjoint
        return g_y, g_gy, None

    def jvp(self, ty, tgy, _):
        y, gy, _ = self.primals  # gx = y ⊙ (gy - Σ gy⊙y)
        d = self.dim
        dy = None
        if ty is not None:
            dy = ty * (gy - (gy * y).sum(dim=d, keepdim=True)) - y * (gy * ty).sum(dim=d, keepdim=True)
        return add_tangents(dy, None if tgy is None else SoftmaxBackward.apply(y, tgy, d))


class LogSoftmax(Function):
    def forward(self, x, dim):
        self.dim = dim
        y = self.backend.log_softmax(x, dim) if x.size else self.xp.zeros_like(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return LogSoftmaxBackward.apply(y, gy, self.dim)

    def jvp(self, tx, _):
        return tx - (tx * self.result.exp()).sum(dim=self.dim, keepdim=True)  # dy = dx - Σ softmax(x)·dx


class LogSoftmaxBackward(Function):
    """gx = gy - e^y Σ gy"""

    def forward(self, y, gy, dim):
        self.dim = dim
        self.save_for_backward(y, gy)
        return self.backend.log_softmax_grad(y, gy, dim)

    def backward(self, gg):
        y, gy = self.saved_tensors
        d = self.dim
        p = y.exp()
        g_y = -gg * p * gy.sum(dim=d, keepdim=True)
        g_gy = gg - (gg * p).sum(dim=d, keepdim=True)
        return g_y, g_gy, None

    def jvp(self, ty, tgy, _):
        y, gy, _ = self.primals  # gx = gy - e^y Σ gy
        p = y.exp()
        dy = None if ty is None else -ty * p * gy.sum(dim=self.dim, keepdim=True)
        return add_tangents(dy, None if tgy is None else LogSoftmaxBackward.apply(y, tgy, self.dim))


def softmax(x, dim: int = -1):
    """e^x / Σ e^x along dim, shifted by the max so that ±1e4 logits stay finite."""
    x = floating(x)
    d = normalize_dim(dim, x.ndim, "softmax", x.shape)  # one int, as PyTorch's
    if x.ndim == 0:  # softmax over its one element
        return Softmax.apply(x.reshape(1), 0).reshape(())
    return Softmax.apply(x, d)


def log_softmax(x, dim: int = -1):
    """x - logsumexp(x) along dim."""
    x = floating(x)
    d = normalize_dim(dim, x.ndim, "log_softmax", x.shape)
    if x.ndim == 0:
        return LogSoftmax.apply(x.reshape(1), 0).reshape(())
    return LogSoftmax.apply(x, d)


def dropout(x, p: float = 0.5, training: bool = True):
    """Zero each element with probability p and scale the rest by 1/(1-p); seeded by tt.manual_seed."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:  # every element dropped: x · 0, in x's dtype (as PyTorch; bool and int stay)
        return x * 0.0 if x.dtype.is_floating_point else like(x, x.backend.xp.zeros_like(x.array))
    if not x.dtype.is_floating_point:
        raise TypeError(f"dropout: scaling by 1/(1-p) needs a floating-point tensor, got {x.dtype} "
                        f"(shape {x.shape}); as PyTorch, only p = 0, p = 1 or training=False keep it")
    from ..random import host_generator

    # the mask is drawn on the host (one seeded stream for every device) and copied over as bools:
    # a quarter of the bytes of float32 multipliers, which are made where x lives
    keep = x.backend.from_host(host_generator().random(x.shape) >= p)
    scale = x.backend.astype(keep, x.dtype) * (1.0 / (1.0 - p))  # 0 or 1/(1-p)
    return x * like(x, scale)


def one_hot(index, num_classes: int = -1):
    """int64 tensor with a 1 at each index along a new last dimension."""
    if index.dtype.is_floating_point or index.dtype.name == "bool":
        raise TypeError(f"one_hot: expected an integer tensor, got {index.dtype}")
    xp = index.backend.xp
    if not index.array.size:
        if num_classes <= 0:  # PyTorch's rule: an empty index needs a positive num_classes
            raise RuntimeError(f"one_hot: can not infer the number of classes from an empty tensor "
                               f"(shape {index.shape}); pass num_classes")
    elif num_classes < 0:  # the output's shape depends on the values: a host read (a sync on a GPU)
        lo, hi = index.backend.bounds(index.array)
        num_classes = hi + 1
        if lo < 0:
            raise IndexError(f"one_hot: class values must be in [0, {num_classes}), got [{lo}, {hi}]")
    else:
        n = num_classes  # (a bad value matches no class below: the values need no clipping)
        index.backend.check_range(index.array, 0, n, IndexError,
                                  lambda v: f"one_hot: class values must be in [0, {n}), got {v}")
    n = max(num_classes, 0)
    hot = index.backend.one_hot(index.array, n, index.backend.xp_dtype(index.dtype))  # (M, n)
    return like(index, xp.reshape(hot, tuple(index.shape) + (n,)))


class Embedding(Function):
    """weight[index]: a row of the weight for each index (an integer array, checked here: the values
    are at hand in forward, also when func.vmap runs the op on a whole batch)."""

    def forward(self, weight, index):
        n = weight.shape[0]
        index = self.backend.check_range(  # (clipped into range while the check waits: backends/deferred.py)
            index, 0, n, IndexError, lambda i: f"embedding: index {i} is out of range for a weight with "
                                               f"{n} rows")
        self.num, self.index = n, index
        return self.backend.take_rows(weight, index)

    def backward(self, gy):
        return EmbeddingBackward.apply(gy, self.index, self.num), None

    def jvp(self, tw, _):
        return Embedding.apply(tw, self.primals[1])  # the tangent's rows


class EmbeddingBackward(Function):
    """Rows of the gradient summed into the weight's rows (repeated indices add)."""

    def forward(self, gy, index, num):
        self.index = index
        return self.backend.add_rows(num, index, gy)

    def backward(self, gg):
        return Embedding.apply(gg, self.index), None, None

    def jvp(self, tgy, _index, _num):
        return EmbeddingBackward.apply(tgy, self.index, self.num)


def embedding(input, weight):
    """weight[input]: a row for each integer in input; shape input.shape + weight.shape[1:]."""
    if input.dtype.is_floating_point or input.dtype.name == "bool":
        raise TypeError(f"embedding: indices must be an integer tensor, got {input.dtype}")
    if input.backend is not weight.backend:
        raise RuntimeError(f"embedding: indices are on {input.device} but the weight is on {weight.device}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: 'weight' must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{weight.shape}")
    return Embedding.apply(weight, input)  # the indices are checked in forward
