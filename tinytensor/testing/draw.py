"""Where the conformance samples come from: shapes and options drawn by hypothesis (or a seeded
NumPy generator when hypothesis is not installed), values from named domains.

A sample generator asks a ``Draw`` for what it needs::

    def sample(d: Draw) -> Sample:
        a, b = d.broadcast_shapes(2)             # e.g. (3, 1) and (2, 1, 4)
        return Sample((d.array(a), d.array(b, "nonzero")))

Values come from a NumPy generator seeded by one drawn integer, so hypothesis shrinks shapes and
options (what breaks ops) while the numbers stay well conditioned for a numerical gradient.
"""
from __future__ import annotations

import numpy as np

# ---- value domains: (rng, shape) -> float64 array ----------------------------------------------

def _real(rng, shape):
    return rng.standard_normal(shape)


def _positive(rng, shape):
    """[0.5, 2]: log, sqrt, rsqrt, the base of pow."""
    return rng.uniform(0.5, 2.0, shape)


def _nonzero(rng, shape):
    """±[0.5, 2]: divisors, prod."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _offgrid(rng, shape):
    """k + f with k an integer in [-3, 3) and f in [0.1, 0.4] or [0.6, 0.9]: >= 0.1 from every integer and
    half-integer (floor, round, remainder: a central difference never straddles a jump), and, divided by
    ±1 or ±2 (``divisors``), >= 0.05 from every integer."""
    f = rng.uniform(0.1, 0.4, shape) + 0.5 * rng.integers(0, 2, shape)
    return rng.integers(-3, 3, shape) + f


def _divisors(rng, shape):
    """±1 or ±2 (remainder, floor_divide: see offgrid)."""
    return rng.choice([-2.0, -1.0, 1.0, 2.0], shape)


def _lattice(rng, shape, offset):
    n = int(np.prod(shape, dtype=np.int64))
    k = rng.permutation(n) - n // 2
    vals = (k + offset) * 0.3 + rng.uniform(-0.05, 0.05, n)
    return vals.reshape(shape)


def _distinct(rng, shape):
    """All values distinct (>= 0.2 apart), >= 0.1 away from 0 and from ±0.6.

    For ops with kinks or ties (relu, abs, clamp(-0.6, 0.6), max, argmax, sort-like selections):
    a central difference never straddles a kink.
    """
    return _lattice(rng, shape, 0.5)


def _distinct_shifted(rng, shape):
    """Like ``distinct`` but on the lattice shifted by half a step: never within 0.05 of a
    ``distinct`` value, so maximum(a, b) with a from one and b from the other has no ties."""
    return _lattice(rng, shape, 0.0)


def _with_zeros(rng, shape):
    """±[0.5, 2] with about a third of the entries exactly 0 (prod's zero cases)."""
    x = _nonzero(rng, shape)
    return np.where(rng.random(shape) < 0.35, 0.0, x)


def _ties(rng, shape):
    """Whole numbers in [-2, 2]: equal values across operands (comparisons), exact in every dtype."""
    return rng.integers(-2, 3, shape).astype(np.float64)


def _nonfinite(rng, shape):
    """Standard normal with about a third of the entries inf, -inf or NaN (isfinite, isnan)."""
    x = rng.standard_normal(shape)
    special = rng.choice([np.inf, -np.inf, np.nan], shape)
    return np.where(rng.random(shape) < 0.35, special, x)


def _logits(rng, shape):
    """Large logits (±1e4 scale): softmax must stay finite."""
    return rng.standard_normal(shape) * 1e4


DOMAINS = {
    "real": _real, "positive": _positive, "nonzero": _nonzero, "distinct": _distinct,
    "offgrid": _offgrid, "divisors": _divisors,
    "distinct_shifted": _distinct_shifted, "with_zeros": _with_zeros, "logits": _logits,
    "ties": _ties, "nonfinite": _nonfinite,
}


class Draw:
    """Draws shapes, options and arrays for one sample; backed by hypothesis ``data`` or an rng."""

    def __init__(self, data=None, seed: int = 0, max_side: int = 3, max_dims: int = 3):
        self._data = data
        self._rng = np.random.default_rng(seed)
        self.max_side = max_side
        self.max_dims = max_dims
        self.rng = np.random.default_rng(self.integers(0, 2**32 - 1))

    def _st(self):
        import hypothesis.strategies as st

        return st

    # ---- scalars and choices --------------------------------------------------------------
    def integers(self, lo: int, hi: int) -> int:
        """An int in [lo, hi] (both ends included)."""
        if self._data is not None:
            return self._data.draw(self._st().integers(lo, hi))
        return int(self._rng.integers(lo, hi, endpoint=True))

    def choice(self, options):
        """One of ``options``."""
        options = list(options)
        if self._data is not None:
            return self._data.draw(self._st().sampled_from(options))
        return options[int(self._rng.integers(0, len(options)))]

    def boolean(self) -> bool:
        """False or True."""
        return self.choice((False, True))

    def permutation(self, n: int) -> tuple:
        """A permutation of 0..n-1, as a tuple."""
        if self._data is not None:
            return tuple(self._data.draw(self._st().permutations(list(range(n)))))
        return tuple(int(i) for i in self._rng.permutation(n))

    # ---- shapes ---------------------------------------------------------------------------
    def shape(self, min_dims: int = 0, max_dims: int | None = None, min_side: int = 1,
              max_side: int | None = None) -> tuple:
        """A shape of min_dims..max_dims dimensions, each of min_side..max_side (the limits default to the
        drawer's)."""
        max_dims = self.max_dims if max_dims is None else max_dims
        max_side = self.max_side if max_side is None else max_side
        ndim = self.integers(min_dims, max(min_dims, max_dims))
        return tuple(self.integers(min_side, max_side) for _ in range(ndim))

    def broadcast_shapes(self, n: int = 2, min_dims: int = 0, max_dims: int | None = None) -> list:
        """``n`` shapes that broadcast together (0-d, size-1 and missing leading dims included)."""
        max_dims = self.max_dims if max_dims is None else max_dims
        base = self.shape(min_dims, max_dims)
        shapes = []
        for _ in range(n):
            lead = self.integers(0, len(base))  # drop some leading dims
            shapes.append(tuple(1 if self.integers(0, 3) == 0 else s for s in base[lead:]))
        return shapes

    # ---- arrays ---------------------------------------------------------------------------
    def array(self, shape, domain: str = "real") -> np.ndarray:
        """A float64 array of ``shape`` from a named domain (see DOMAINS)."""
        return np.asarray(DOMAINS[domain](self.rng, tuple(shape)), dtype=np.float64)

    def indices(self, shape, n: int, negative: bool = False) -> np.ndarray:
        """An int64 array of indices into a dimension of size n (repeats likely)."""
        lo = -n if negative else 0
        return np.asarray(self.rng.integers(lo, n, size=tuple(shape)), dtype=np.int64)

    def mask(self, shape) -> np.ndarray:
        """A random NumPy bool array of ``shape`` (each element True with probability ½)."""
        return np.asarray(self.rng.random(tuple(shape)) < 0.5)


def prime_factors(n: int) -> list:
    """The prime factors of n > 0 with repeats (12 -> [2, 2, 3]): the sizes a reshape can regroup."""
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out
