"""Matrix products: matmul with NumPy's rules (batched, broadcast batch dims, 1-D cases), einsum."""
from __future__ import annotations

import math

from ..autograd.dual import add as add_tangents
from ..autograd.function import Function
from ..autograd.tensor_core import TensorCore
from ..dtypes import bool_, int64, promote
from ._operands import binary, cast, like
from .broadcast import broadcast_shapes, broadcast_to, sum_to
from .elementwise import _Binary, abs, clamp, sign, where
from .reduction import norm


class MatMul(Function):
    """(..., n, k) @ (..., k, m); batch dims broadcast."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        needs = self.needs_input_grad  # keep only what the needed gradients use
        self.save_for_backward(a if needs[1] else None, b if needs[0] else None)
        return self.backend.matmul(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        if self.unobserved():  # the same products on the arrays: one node's cost instead of up to six ops'
            return self._backward_on_arrays(gy, a, b)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(gy @ b.mT, self.a_shape)  # dL/dA = G Bᵀ
        if self.needs_input_grad[1]:
            if len(self.b_shape) == 2 and a.ndim > 2:  # one matrix for a stack: Σ over it in one product
                rows = math.prod(a.shape[:-1])
                gb = a.reshape(rows, a.shape[-1]).mT @ gy.reshape(rows, gy.shape[-1])
            else:
                gb = sum_to(a.mT @ gy, self.b_shape)  # dL/dB = Aᵀ G
        return ga, gb

    def _backward_on_arrays(self, gy, a, b):
        backend, xp, g = self.backend, self.xp, gy.array
        mm, mT = backend.matmul, xp.matrix_transpose
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gy._wrap(backend.sum_to(mm(g, mT(b.array)), self.a_shape))
        if self.needs_input_grad[1]:
            if len(self.b_shape) == 2 and a.ndim > 2:
                rows = math.prod(a.shape[:-1])
                gb = mm(mT(xp.reshape(a.array, (rows, a.shape[-1]))), xp.reshape(g, (rows, g.shape[-1])))
            else:
                gb = backend.sum_to(mm(mT(a.array), g), self.b_shape)
            gb = gy._wrap(gb)
        return ga, gb

    def jvp(self, ta, tb):
        a, b = self.primals  # d(AB) = dA B + A dB
        return add_tangents(None if ta is None else MatMul.apply(ta, b),
                            None if tb is None else MatMul.apply(a, tb))


def mm(a, b):
    """The product of two matrices (2-D only; ``torch.mm``)."""
    _check_ndim("mm", (a, b), 2)
    return matmul(a, b)


def bmm(a, b):
    """Batched matrix product of (b, n, k) and (b, k, m) (3-D only, equal batches; ``torch.bmm``)."""
    _check_ndim("bmm", (a, b), 3)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: batch sizes differ: {tuple(a.shape)} and {tuple(b.shape)} (bmm does not "
                         f"broadcast; use matmul for that)")
    return matmul(a, b)


def dot(a, b):
    """The inner product of two 1-D tensors of one length (``torch.dot``; matmul for anything else)."""
    _check_ndim("dot", (a, b), 1)
    if a.shape != b.shape:
        raise ValueError(f"dot: lengths differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def outer(a, b):
    """The outer product a bᵀ of two 1-D tensors, (n, m) (``torch.outer``)."""
    _check_ndim("outer", (a, b), 1)
    return a.unsqueeze(1) * b.unsqueeze(0)


def _check_ndim(op, operands, ndim: int):
    shapes = [tuple(getattr(t, "shape", ())) for t in operands]
    if any(not isinstance(t, TensorCore) or t.ndim != ndim for t in operands):
        raise ValueError(f"{op}: expected two {ndim}-D tensors, got shapes {shapes[0]} and {shapes[1]}")


def matmul(a, b):
    """Matrix product with NumPy's rules: 1-D operands are promoted to matrices and squeezed back."""
    a, b = binary(a, b, "matmul")
    bools = a.dtype is bool_  # then both are (binary promotes a bool with anything else)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
            f"{a2.shape[-1]} (last dim of the first) != {b2.shape[-2]} "
            f"({'first' if b.ndim == 1 else 'second-to-last'} dim of the second)"
        )
    broadcast_shapes(a2.shape[:-2], b2.shape[:-2], op="matmul (batch dimensions)")
    if bools:
        # PyTorch has no bool kernel: it refuses unless an operand is empty (then no kernel runs)
        if (math.prod(a.shape) and math.prod(b.shape)) or a.ndim == b.ndim == 1:
            raise TypeError(f"matmul: two bool tensors (shapes {a.shape} and {b.shape}) have no matrix "
                            "product, as in PyTorch; cast one first: a.long() @ b or a.float() @ b")
        a2, b2 = cast(a2, int64), cast(b2, int64)
    out = MatMul.apply(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out != 0 if bools else out  # empty, or all False (a sum over nothing)


class Einsum(Function):
    def forward(self, *operands, spec):
        self.spec = spec
        self.save_for_backward(*operands)
        return self.backend.einsum(spec, *operands)

    def backward(self, gy):
        ins, out = self.spec.split("->")
        terms = ins.split(",")
        saved = self.saved_tensors
        grads = []
        for i, term in enumerate(terms):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(terms) if j != i]
            rest = [s for j, s in enumerate(saved) if j != i]
            sizes = dict(zip(term, saved[i].shape))
            letters = "".join(dict.fromkeys(term))  # each letter once: a repeated one is a diagonal
            # letters summed out of operand i alone (absent from the output and the other operands):
            # the gradient is constant along them, so compute it without them and broadcast
            missing = [c for c in letters if c not in out and all(c not in t for t in others)]
            kept = "".join(c for c in letters if c not in missing)
            g = einsum(",".join([out] + others) + "->" + kept, gy, *rest)
            if missing:
                g = g.reshape(tuple(1 if c in missing else sizes[c] for c in letters))
                g = g.expand(*(sizes[c] for c in letters))
            grads.append(_on_diagonals(g, letters, term) if len(letters) < len(term) else g)
        return tuple(grads)

    def jvp(self, *tangents):
        ops = list(self.primals)  # the product rule: one term per operand with a tangent
        return add_tangents(*(None if t is None else Einsum.apply(*ops[:i], t, *ops[i + 1:], spec=self.spec)
                              for i, t in enumerate(tangents)))


def _on_diagonals(g, letters: str, term: str):
    """The gradient of an operand whose ``term`` repeats letters ("ii", "iji"): ``g`` (over each
    letter once, in ``letters`` order) on the diagonals the repeats pick, zero elsewhere."""
    shape = [g.shape[letters.index(c)] for c in term]
    first = {c: term.index(c) for c in letters}
    # g with a size-1 axis at every repeat, broadcast over the operand's shape
    g = g.reshape(tuple(n if first[c] == k else 1 for k, (c, n) in enumerate(zip(term, shape))))
    on = None
    for k, c in enumerate(term):
        if first[c] != k:  # position k must equal position first[c]
            a = arange_along(g, shape, first[c])
            b = arange_along(g, shape, k)
            on = (a == b) if on is None else on & (a == b)
    return where(on, g.expand(*shape), 0.0)


def arange_along(ref, shape, axis: int):
    """0, 1, ... along ``axis`` of an array of ``shape`` (size 1 elsewhere), on ref's device."""
    bk = ref.backend
    view = tuple(n if k == axis else 1 for k, n in enumerate(shape))
    return like(ref, bk.xp.reshape(bk.arange(shape[axis]), view))


def einsum(spec: str, *operands):
    """Einstein summation with an explicit output ('ij,jk->ik'); differentiable."""
    spec = spec.replace(" ", "")
    if "->" not in spec or "..." in spec:
        raise ValueError(f"einsum: give an explicit output and no '...', got {spec!r}")
    if len(spec.split("->")[0].split(",")) != len(operands):
        raise ValueError(f"einsum: {spec!r} names {len(spec.split(','))} operands, got {len(operands)}")
    # one dtype for all operands, promoted as by a binary op; bools that are summed are summed as int64
    # (PyTorch's result), never in bool, where True + True saturates to True
    dtype = operands[0].dtype
    for t in operands[1:]:
        dtype = promote(dtype, t.dtype)
    ins, out = spec.split("->")
    if dtype is bool_ and set(ins) - set(out) - {","}:
        dtype = int64
    return Einsum.apply(*(cast(t, dtype) for t in operands), spec=spec)


# ---- distances and similarities -------------------------------------------------------------------

_CDIST_MODES = (
    "use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist",
)


class MaxAbsDistance(Function):
    """max |d| over the last dim, with PyTorch's cdist gradient: sign(d) at *every* element that reaches
    the maximum (amax splits ties instead), multiplied in as PyTorch's."""

    def forward(self, d):
        y = self.xp.max(self.xp.abs(d), axis=-1)
        self.save_for_backward(d, y)
        return y

    @staticmethod
    def _ties(d, y):
        return cast(abs(d) == y.unsqueeze(-1), d.dtype) * sign(d)

    def backward(self, gy):
        d, y = self.saved_tensors
        return gy.unsqueeze(-1) * self._ties(d, y)

    def jvp(self, td):
        return (td * self._ties(self.primals[0], self.result)).sum(-1)


def cdist(x1, x2, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance between every row of x1 (..., P, M) and every row of x2 (..., R, M): a
    (..., P, R) tensor, the batch dims broadcasting (``torch.cdist``). A zero distance has gradient 0;
    p = inf gives every tied element the full gradient, as PyTorch's. Computed directly for every
    compute_mode (PyTorch's matrix-product form for p = 2 rounds differently at ~1e-7 in float32) from a
    (..., P, R, M) difference."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, TensorCore) or t.ndim < 2:
            raise RuntimeError(f"cdist: {name} must be a tensor of at least 2 dimensions, got "
                               f"{tuple(t.shape) if isinstance(t, TensorCore) else type(t).__name__}")
        if not t.dtype.is_floating_point:
            raise RuntimeError(f"cdist: only floating-point dtypes are supported, {name} is {t.dtype.name}; "
                               f"convert it first, e.g. {name}.float()")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: x1 and x2 must have the same number of columns, got shapes "
                           f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0:
        raise RuntimeError(f"cdist: p must be a non-negative number, got {p!r}")
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"cdist: compute_mode must be one of {_CDIST_MODES}, got {compute_mode!r}")
    if x1.dtype is not x2.dtype and not (x1.shape[-2] and x2.shape[-2] and x1.shape[-1]):
        x2 = cast(x2, x1.dtype)  # no distances to compute: PyTorch checks no dtypes, and answers in x1's
    if x1.dtype is not x2.dtype:
        raise RuntimeError(f"cdist: x1 and x2 must have one dtype, got {x1.dtype.name} and {x2.dtype.name} "
                           f"(as PyTorch); convert one, e.g. x2.to(x1.dtype)")
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M)
    if p == math.inf:  # (rows of no columns are 0 apart)
        return MaxAbsDistance.apply(d) if d.shape[-1] else d.sum(-1)
    return norm(d, p, -1)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Σ x1·x2 / (‖x1‖ ‖x2‖) along dim, after broadcasting, with each norm held at eps or above:
    (x1 / max(‖x1‖, eps)) · (x2 / max(‖x2‖, eps)), PyTorch's formula (``torch.cosine_similarity``,
    ``F.cosine_similarity``); integer and bool inputs are refused, as PyTorch's.

    Where a norm is held at eps its gradient here is 0, the derivative of what is computed. PyTorch
    clamps in place without recording it, so its gradient there treats the norm as ‖x‖ divided by the
    clamped value; the two agree for every vector whose norm is above eps, and for zero vectors."""
    shape = broadcast_shapes(x1.shape, x2.shape, op="cosine_similarity")
    # broadcast first, then promoted (PyTorch's order: a 0-d float64 widens a float32 vector here)
    x1, x2 = binary(broadcast_to(x1, shape), broadcast_to(x2, shape), "cosine_similarity")
    if not x1.dtype.is_floating_point:
        raise RuntimeError(f"cosine_similarity: expected floating-point inputs, the common dtype is "
                           f"{x1.dtype.name} (as PyTorch); convert them first, e.g. x1.float()")
    n1 = clamp(norm(x1, 2, dim, keepdim=True), min=eps)
    n2 = clamp(norm(x2, 2, dim, keepdim=True), min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


# ---- products plus a term: PyTorch's fused forms, composed -------------------------------------

class ScaledSum(_Binary):
    """β · a + α · b (b's shape; a broadcasts to it). With β = 0 a's values are not read, so its NaN and
    inf stay out of the result, while its gradient is still gy · β (NaN where gy is inf), as PyTorch's."""

    def forward(self, a, b, *, beta, alpha):
        self.beta, self.alpha = beta, alpha
        y = b if alpha == 1 else b * alpha
        if beta == 0:
            return self.xp.broadcast_to(y, b.shape) if y is not b else self.backend.copy(b)
        return (a if beta == 1 else a * beta) + y

    def backward(self, gy):
        return self.reduce(gy * self.beta, gy * self.alpha)

    def jvp(self, ta, tb):
        return self.spread(add_tangents(None if ta is None else ta * self.beta,
                                        None if tb is None else tb * self.alpha))


def _plus_product(op: str, input, product, beta, alpha):
    """β · input + α · product, the result of product's shape (input broadcasts to it, as PyTorch's:
    never the other way)."""
    shape = tuple(product.shape)
    try:
        fits = broadcast_shapes(tuple(input.shape), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} does not broadcast to the product's "
                           f"shape {shape}")
    return ScaledSum.apply(*binary(input, product, op), beta=beta, alpha=alpha)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """β · input + α · (mat1 @ mat2) for matrices mat1 (n, k), mat2 (k, m); ``torch.addmm``."""
    _check_ndim("addmm", (mat1, mat2), 2)
    return _plus_product("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """β · input + α · (batch1 @ batch2) for stacks (b, n, k), (b, k, m); ``torch.baddbmm``."""
    return _plus_product("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def _to_one_shape(*tensors):
    """The tensors broadcast to one shape first, so that every gradient is formed at the result's shape
    and summed down afterwards, as PyTorch's fused ops do (it matters at inf, NaN and empty results)."""
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return (t if tuple(t.shape) == shape else broadcast_to(t, shape) for t in tensors)


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value · tensor1 · tensor2, broadcasting; ``torch.addcmul``."""
    input, tensor1, tensor2 = _to_one_shape(input, tensor1, tensor2)
    return input + value * tensor1 * tensor2  # (value · tensor1) · tensor2: PyTorch's order of rounding


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value · tensor1 / tensor2, broadcasting; ``torch.addcdiv``."""
    input, tensor1, tensor2 = _to_one_shape(input, tensor1, tensor2)
    return input + value * tensor1 / tensor2
