"""Random sampling: bernoulli and multinomial. The generator is seeded in the call, so that the
NumPy reference can draw the same numbers. PyTorch's generator draws others: its side gets the same
numbers too (torch.bernoulli of the 0/1 outcomes; multinomial's two algorithms in torch ops). That
the samples are random, with the right distribution, is checked in tests/test_ops_indexing.py."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample


def _seeded(f):
    def call(*xs, seed, **kw):
        state = tt.get_rng_state()
        tt.manual_seed(seed)  # the same draws on every call: gradients can be checked numerically
        try:
            return f(*xs, **kw)
        finally:
            tt.set_rng_state(state)

    return call


def _bernoulli_sample(d: Draw) -> Sample:
    shape = d.shape()
    probs = d.rng.uniform(0.05, 0.95, shape)
    return Sample((probs,), dict(p=d.choice((None, None, 0.3)), seed=d.integers(0, 1000)))


def _np_bernoulli(x, p, seed):
    u = np.random.default_rng(seed).random(x.shape)
    return (u < (x if p is None else p)).astype(x.dtype)


def _torch_bernoulli(torch, x, p, seed):
    """torch.bernoulli of the outcomes u < p (probabilities 0 and 1: its samples are certain), in the
    graph of x: PyTorch's dtype, requires_grad and zero gradient."""
    u = torch.from_numpy(np.random.default_rng(seed).random(tuple(x.shape)))
    return torch.bernoulli((u < (x if p is None else p)).to(x.dtype) + 0 * x)


def _multinomial_sample(d: Draw) -> Sample:
    rows, classes = d.integers(1, 3), d.integers(1, 4)
    p = d.array((rows, classes), "positive")
    if classes > 1 and d.boolean():  # a category that is never drawn
        p[:, d.integers(0, classes - 1)] = 0.0
    nonzero = int((p > 0).sum(axis=1).min())
    replacement = d.boolean()
    n = d.integers(1, 4) if replacement else d.integers(1, nonzero)
    p = p[0] if d.boolean() else p
    return Sample((p,), dict(num_samples=n, replacement=replacement, seed=d.integers(0, 1000)))


def _np_multinomial(p, num_samples, replacement, seed):
    """Inverse-CDF draws (searchsorted) with replacement; without, the exponential race e_c / p_c."""
    rows = np.atleast_2d(p)
    rng = np.random.default_rng(seed)
    if replacement:
        u = rng.random((rows.shape[0], num_samples))
        out = []
        for r, ur in zip(rows, u):
            cdf = np.cumsum(r)
            last = np.flatnonzero(r > 0)[-1]
            out.append(np.minimum(np.searchsorted(cdf, ur * cdf[-1], side="right"), last))
        out = np.array(out, dtype=np.int64)
    else:
        e = rng.standard_exponential(rows.shape)
        with np.errstate(divide="ignore"):
            keys = np.where(rows > 0, e / np.where(rows > 0, rows, 1.0), np.inf)
        out = np.argsort(keys, axis=1, kind="stable")[:, :num_samples].astype(np.int64)
    return out[0] if p.ndim == 1 else out


def _torch_multinomial(torch, p, num_samples, replacement, seed):
    """The same two algorithms in torch ops, on the same random numbers: torch.searchsorted in the
    cumulative sums, or a stable torch.argsort of the finishing times."""
    rows = p.reshape(1, -1) if p.ndim == 1 else p
    rng = np.random.default_rng(seed)
    rows = rows.double()
    if replacement:
        cdf = torch.cumsum(rows, dim=1)
        u = torch.from_numpy(rng.random((rows.shape[0], num_samples)))
        last = rows.shape[1] - 1 - torch.argmax(torch.flip((rows > 0).long(), (1,)), dim=1, keepdim=True)
        out = torch.minimum(torch.searchsorted(cdf, u * cdf[:, -1:], right=True), last)
    else:
        e = torch.from_numpy(rng.standard_exponential(tuple(rows.shape)))
        keys = torch.where(rows > 0, e / torch.where(rows > 0, rows, 1.0), torch.inf)
        out = torch.argsort(keys, dim=1, stable=True)[:, :num_samples]
    return out[0] if p.ndim == 1 else out


SPECS: list[OpSpec] = [
    # a sample is a step function of p: the gradient is 0 (as PyTorch records it)
    OpSpec("bernoulli", _seeded(lambda x, p: tt.bernoulli(x, p)), _np_bernoulli, _bernoulli_sample,
           _torch_bernoulli),
    OpSpec("multinomial", _seeded(lambda p, **kw: tt.multinomial(p, **kw)), _np_multinomial,
           _multinomial_sample, _torch_multinomial, differentiable=False),
]
