"""The neural-network ops of tinytensor.ops: softmax, log_softmax, dropout, one_hot, embedding."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import OpSpec, Sample, functional, np_axis, np_logsumexp


def _np_softmax(x, dim):
    x = np.asarray(x)
    if x.ndim == 0:
        return np.ones_like(x)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _softmax_sample(d: Draw) -> Sample:
    shape = d.shape()
    nd = len(shape)
    return Sample((d.array(shape),), dict(dim=d.integers(-max(nd, 1), max(nd, 1) - 1)))


def _dropout_sample(d: Draw) -> Sample:
    return Sample((d.array(d.shape()),), dict(
        p=d.choice((0.0, 0.25, 0.5, 1.0)), training=d.choice((True, True, False)),
        seed=d.integers(0, 1000)))


def _dropout(x, p, training, seed):
    state = tt.get_rng_state()
    tt.manual_seed(seed)  # the same mask on every call, so gradients can be checked numerically
    try:
        return tt.dropout(x, p, training)
    finally:
        tt.set_rng_state(state)


def _np_dropout(x, p, training, seed):
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = np.random.default_rng(seed).random(x.shape) >= p
    return x * keep / (1.0 - p)


def _one_hot_sample(d: Draw) -> Sample:
    n = d.integers(1, 4)
    idx = d.indices(d.shape(0, 2), n)
    return Sample((idx,), dict(num_classes=d.choice((-1, n, n + 2))))


def _np_one_hot(idx, num_classes):
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    return (idx[..., None] == np.arange(n)).astype(np.int64)


def _embedding_sample(d: Draw) -> Sample:
    n, dim = d.integers(1, 4), d.integers(1, 3)
    return Sample((d.indices(d.shape(0, 2), n), d.array((n, dim))))


SPECS: list[OpSpec] = [
    OpSpec("softmax", lambda x, dim: tt.softmax(x, dim), _np_softmax, _softmax_sample,
           lambda torch, x, dim: torch.softmax(x, dim)),
    OpSpec("log_softmax", lambda x, dim: x.log_softmax(dim),
           lambda x, dim: x - np_logsumexp(x, np_axis(dim, x.ndim), True), _softmax_sample,
           lambda torch, x, dim: torch.log_softmax(x, dim)),
    # the mask is seeded here, so the reference can draw the same one; torch's generator draws
    # other masks (no torch_ref). That the mask is random is checked in tests/test_op_coverage.py.
    OpSpec("dropout", _dropout, _np_dropout, _dropout_sample, None),
    OpSpec("one_hot", lambda idx, num_classes: tt.one_hot(idx, num_classes), _np_one_hot,
           _one_hot_sample, lambda torch, idx, num_classes: functional(torch).one_hot(idx, num_classes),
           differentiable=False),
    OpSpec("embedding", tt.embedding, lambda idx, w: w[idx], _embedding_sample,
           lambda torch, idx, w: functional(torch).embedding(idx, w)),
]
