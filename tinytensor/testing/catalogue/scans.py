"""Scans along a dim: cumsum and cumprod (the latter also on inputs with zeros, where the gradient
is not y/x)."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import LOOSE, OpSpec, Sample


def _scan_sample(domains):
    def sample(d: Draw) -> Sample:
        shape = d.shape()
        nd = len(shape)
        return Sample((d.array(shape, d.choice(domains)),), dict(dim=d.integers(-max(nd, 1), max(nd, 1) - 1)))

    return sample


def _np_scan(f):
    return lambda x, dim: x.copy() if x.ndim == 0 else f(x, axis=dim)


SPECS: list[OpSpec] = [
    OpSpec("cumsum", lambda x, dim: tt.cumsum(x, dim), _np_scan(np.cumsum), _scan_sample(("real",)),
           lambda torch, x, dim: torch.cumsum(x, dim), **LOOSE),
    OpSpec("cumprod", lambda x, dim: x.cumprod(dim), _np_scan(np.cumprod),
           _scan_sample(("nonzero", "with_zeros", "with_zeros")), lambda torch, x, dim: torch.cumprod(x, dim),
           **LOOSE),
]
