"""Random sampling from given probabilities: bernoulli (0/1 draws) and multinomial (category
indices). The random numbers come from the seeded host generator (tt.manual_seed) or a
tt.Generator, so a seed gives the same samples on every device (not PyTorch's samples)."""
from __future__ import annotations

import operator

from ..autograd.function import Function
from ..autograd.tensor_core import TensorCore
from ..dtypes import bool_
from ..random import host_generator
from ._operands import like
from .broadcast import broadcast_shapes, sum_to
from .elementwise import select


class Bernoulli(Function):
    """1 with probability p, else 0 (u < p for a uniform u), in x's shape and dtype; p is x itself
    when not given. A sample is a step function of p: its derivative is 0 wherever it exists, and
    PyTorch records it so (the result requires grad, every gradient is 0)."""

    def forward(self, x, p, u):
        self.p_shape = getattr(p, "shape", None)
        if x.size == 0:
            return self.backend.zeros(x.shape, x.dtype)
        probs = x if p is None else p
        return self.backend.astype(u < probs, self.backend.dtype_of(x))

    def backward(self, gy):
        nothing = like(gy, gy.backend.full((), False, bool_))
        zero = select(nothing, gy)  # zeros, even where gy is inf or NaN
        gp = None
        if self.p_shape is not None and self.needs_input_grad[1]:
            gp = sum_to(zero, self.p_shape) if gy.array.size else like(
                gy, gy.backend.zeros(self.p_shape, gy.array.dtype))
        return zero, gp, None

    def jvp(self, tx, tp, _):
        r = self.result  # a step function of p: its tangent is 0
        return like(r, r.backend.zeros(r.shape, r.array.dtype))


def _uniform(x, generator):
    """Uniform numbers in [0, 1) of x's shape, on x's device (float64: u < 1 stays true for p = 1)."""
    u = host_generator(generator).random(tuple(x.shape))
    return x.backend.from_host(u)


def _check_probabilities(p, op: str) -> None:
    xp = p.backend.xp
    if p.array.size and not bool(xp.all((p.array >= 0) & (p.array <= 1))):
        raise RuntimeError(f"{op}: probabilities must be in [0, 1] (and not NaN), got a tensor of shape "
                           f"{tuple(p.shape)} with values outside")


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples: 1 with probability input (or with probability p, in input's shape), in input's dtype."""
    if p is None:
        if not input.dtype.is_floating_point:
            raise TypeError(f"bernoulli: the probabilities must be floating point, got {input.dtype.name}; "
                            f"pass p= to draw in an integer dtype")
        _check_probabilities(input, "bernoulli")
    else:
        p = _check_p(p, input, "bernoulli")
    return Bernoulli.apply(input, p, _uniform(input, generator))


def bernoulli_fill(input, p=0.5, generator=None):
    """The values Tensor.bernoulli_ writes: samples of probability p (a number, or a tensor that
    expands to input's shape) in input's shape and dtype."""
    p = _check_p(p, input, "bernoulli_")
    if isinstance(p, TensorCore) and tuple(p.shape) != tuple(input.shape) and input.array.size:
        # (an empty tensor is left as it is, whatever p's shape, as PyTorch)
        if broadcast_shapes(tuple(p.shape), tuple(input.shape), op="bernoulli_") != tuple(input.shape):
            raise RuntimeError(f"bernoulli_: p of shape {tuple(p.shape)} does not expand to the tensor's "
                               f"shape {tuple(input.shape)}")
    return Bernoulli.apply(input, p, _uniform(input, generator))


def _check_p(p, input, op: str):
    if isinstance(p, TensorCore):
        if p.backend is not input.backend:
            raise RuntimeError(f"{op}: p is on {p.device} but the tensor is on {input.device}")
        if not p.dtype.is_floating_point:
            raise TypeError(f"{op}: p must be floating point, got {p.dtype.name}")
        _check_probabilities(p, op)
        return p
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"{op}: expects p to be in [0, 1], but got p={p}")
    return p


class Multinomial(Function):
    """Category indices drawn with probabilities proportional to each row of p (R, C).

    With replacement, inverse-CDF sampling: the first category whose cumulative sum exceeds u·total.
    Without, the exponential race: category c finishes at time e_c / p_c (e_c ~ Exp(1)), and the
    first n to finish are n draws without replacement, in the order drawn.
    """

    differentiable = False

    def forward(self, p, noise, n, replacement):
        xp = self.xp
        p = xp.astype(p, xp.float64)
        rows, classes = p.shape
        if rows == 0:
            return self.backend.zeros((0, n), xp.int64)
        if replacement:
            cdf = xp.cumulative_sum(p, axis=1)  # (R, C)
            target = noise * cdf[:, -1:]  # (R, n): u · total
            picked = xp.sum(xp.astype(cdf[:, None, :] <= target[:, :, None], xp.int64), axis=2)
            # u · total can round up to the total: the last category with a nonzero probability then
            last = (classes - 1) - xp.argmax(xp.astype(xp.flip(p > 0, axis=1), xp.int8), axis=1)
            return xp.minimum(picked, xp.astype(xp.reshape(last, (rows, 1)), xp.int64))
        finish = xp.where(p > 0, noise / xp.where(p > 0, p, xp.ones_like(p)), xp.full_like(p, float("inf")))
        return xp.astype(xp.argsort(finish, axis=1, stable=True)[:, :n], xp.int64)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """num_samples category indices per row of input (1-d or 2-d), drawn with probabilities
    proportional to its values (nonnegative, not all zero); without replacement each category at
    most once."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype.name}")
    if isinstance(num_samples, bool) or not hasattr(num_samples, "__index__"):
        raise TypeError(f"multinomial: num_samples must be an int, got {type(num_samples).__name__}")
    n = operator.index(num_samples)
    p = input.reshape(1, -1) if input.ndim == 1 else input
    rows, classes = p.shape
    if n <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (num_samples={n})")
    if not replacement and n > classes:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without "
                           f"replacement ({n} from {classes} categories)")
    xp = input.backend.xp
    if rows:
        a = p.array
        if not bool(xp.all(xp.isfinite(a) & (a >= 0))):
            raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
        if classes == 0 or not bool(xp.all(xp.sum(a, axis=1) > 0)):
            raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
        if not replacement and int(xp.min(xp.sum(xp.astype(a > 0, xp.int64), axis=1))) < n:
            raise RuntimeError(f"multinomial: invalid multinomial distribution (with replacement=False, not "
                               f"enough categories with nonzero probability to draw {n} samples)")
    gen = host_generator(generator)
    noise = gen.random((rows, n)) if replacement else gen.standard_exponential((rows, classes))
    out = Multinomial.apply(p, input.backend.from_host(noise), n, bool(replacement))
    return out.reshape(n) if input.ndim == 1 else out
