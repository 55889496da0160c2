"""Products: matmul (every operand rank PyTorch accepts, with batch broadcasting) and einsum."""
from __future__ import annotations

import numpy as np

import tinytensor as tt

from ..draw import Draw
from .base import LOOSE, OpSpec, Sample


def _matmul_sample(d: Draw) -> Sample:
    n, k, m, b = (d.integers(1, 3) for _ in range(4))
    kind = d.choice(("mm", "bmm", "bcast", "bcast_rhs", "vv", "vm", "mv"))
    shapes = {
        "mm": ((n, k), (k, m)),
        "bmm": ((b, n, k), (b, k, m)),
        "bcast": (d.choice(((1, n, k), (2, 1, n, k))), (b, k, m)),
        "bcast_rhs": ((b, n, k), (k, m)),
        "vv": ((k,), (k,)),
        "vm": ((k,), d.choice(((k, m), (b, k, m)))),
        "mv": (d.choice(((n, k), (b, n, k))), (k,)),
    }[kind]
    return Sample(tuple(d.array(s) for s in shapes), dict(how=d.choice(("op", "fn"))))


_EINSUMS = (
    "ij,jk->ik", "bij,bjk->bik", "ij->ji", "ij,ij->", "i,j->ij", "ij->i", "ijk->kj",
    "bhqd,bhkd->bhqk", "ij,jk->i", "i,i->i",
)


def _einsum_sample(d: Draw) -> Sample:
    spec = d.choice(_EINSUMS)
    sizes = {c: d.integers(1, 3) for c in sorted(set(spec) - set(",->"))}
    terms = spec.split("->")[0].split(",")
    return Sample(tuple(d.array(tuple(sizes[c] for c in t)) for t in terms), dict(spec=spec))


def _plus_product_sample(ndim: int):
    """addmm (ndim 2), baddbmm (3): an input broadcasting to the product's shape, β and α."""
    def sample(d: Draw) -> Sample:
        b, n, k, m = (d.integers(1, 3) for _ in range(4))
        lead = (b,) if ndim == 3 else ()
        out = lead + (n, m)
        shape = d.choice((out, out[-1:], (1,) * (ndim - 1) + (m,), (), out[:-1] + (1,)))
        beta, alpha = d.choice(((1, 1), (0.5, 2.0), (0, 1), (-1, 0.5)))
        return Sample((d.array(shape), d.array(lead + (n, k)), d.array(lead + (k, m))),
                      dict(beta=beta, alpha=alpha))

    return sample


def _np_plus_product(input, a, b, beta, alpha):
    return (beta * input if beta else 0.0) + alpha * np.matmul(a, b)


def _addc_sample(divisor: bool):
    def sample(d: Draw) -> Sample:
        sa, sb, sc = d.broadcast_shapes(3)
        return Sample((d.array(sa), d.array(sb), d.array(sc, "nonzero" if divisor else "real")),
                      dict(value=d.choice((1, 0.5, -2.0))))

    return sample


def _vectors_sample(same_length: bool):
    def sample(d: Draw) -> Sample:
        n = d.integers(1, 4)
        return Sample((d.array((n,)), d.array((n if same_length else d.integers(1, 4),))))

    return sample


def _mm_sample(ndim: int):
    def sample(d: Draw) -> Sample:
        b, n, k, m = (d.integers(1, 3) for _ in range(4))
        lead = (b,) if ndim == 3 else ()
        return Sample((d.array(lead + (n, k)), d.array(lead + (k, m))))

    return sample


def _cdist_sample(d: Draw) -> Sample:
    """x1 (..., P, M) and x2 (..., R, M) with broadcasting batch dims; distinct values, so that no
    difference is 0 (norm's kink) and p = inf has no ties."""
    b1, b2 = d.broadcast_shapes(2, max_dims=2)
    m = d.integers(1, 3)
    x1 = d.array(b1 + (d.integers(1, 3), m), "distinct")
    x2 = d.array(b2 + (d.integers(1, 3), m), "distinct_shifted")
    return Sample((x1, x2), dict(p=d.choice((2.0, 2.0, 1.0, 3.0, 0.5, 0.0, np.inf))))


def _np_cdist(x1, x2, p):
    diff = x1[..., :, None, :] - x2[..., None, :, :]
    return np.linalg.norm(diff, ord=p, axis=-1)


def _cosine_sample(d: Draw) -> Sample:
    sa = d.shape(1)
    sb = tuple(1 if d.integers(0, 3) == 0 else s for s in sa)[d.integers(0, len(sa) - 1):]
    return Sample((d.array(sa), d.array(sb)), dict(dim=d.integers(-len(sa), len(sa) - 1)))


def _np_cosine(a, b, dim, eps=1e-8):
    a, b = np.broadcast_arrays(a, b)
    na = np.maximum(np.linalg.norm(a, axis=dim, keepdims=True), eps)
    nb = np.maximum(np.linalg.norm(b, axis=dim, keepdims=True), eps)
    return np.sum((a / na) * (b / nb), axis=dim)


SPECS: list[OpSpec] = [
    OpSpec("cdist", lambda a, b, p: tt.cdist(a, b, p), _np_cdist, _cdist_sample,
           lambda torch, a, b, p: torch.cdist(a, b, p), **LOOSE),
    OpSpec("cosine_similarity", lambda a, b, dim: tt.cosine_similarity(a, b, dim), _np_cosine, _cosine_sample,
           lambda torch, a, b, dim: torch.cosine_similarity(a, b, dim), **LOOSE),
    OpSpec("matmul", lambda a, b, how: a @ b if how == "op" else tt.matmul(a, b),
           lambda a, b, how: np.matmul(a, b), _matmul_sample,
           lambda torch, a, b, how: torch.matmul(a, b), **LOOSE),
    OpSpec("mm", lambda a, b: a.mm(b), np.matmul, _mm_sample(2), lambda torch, a, b: torch.mm(a, b), **LOOSE),
    OpSpec("bmm", lambda a, b: tt.bmm(a, b), np.matmul, _mm_sample(3), lambda torch, a, b: torch.bmm(a, b),
           **LOOSE),
    OpSpec("addmm", lambda i, a, b, beta, alpha: tt.addmm(i, a, b, beta=beta, alpha=alpha), _np_plus_product,
           _plus_product_sample(2),
           lambda torch, i, a, b, beta, alpha: torch.addmm(i, a, b, beta=beta, alpha=alpha), **LOOSE),
    OpSpec("baddbmm", lambda i, a, b, beta, alpha: i.baddbmm(a, b, beta=beta, alpha=alpha), _np_plus_product,
           _plus_product_sample(3),
           lambda torch, i, a, b, beta, alpha: torch.baddbmm(i, a, b, beta=beta, alpha=alpha), **LOOSE),
    OpSpec("addcmul", lambda i, a, b, value: tt.addcmul(i, a, b, value=value),
           lambda i, a, b, value: i + value * a * b, _addc_sample(False),
           lambda torch, i, a, b, value: torch.addcmul(i, a, b, value=value)),
    OpSpec("addcdiv", lambda i, a, b, value: i.addcdiv(a, b, value=value),
           lambda i, a, b, value: i + value * a / b, _addc_sample(True),
           lambda torch, i, a, b, value: torch.addcdiv(i, a, b, value=value)),
    OpSpec("dot", lambda a, b: a.dot(b), np.dot, _vectors_sample(True), lambda torch, a, b: torch.dot(a, b),
           **LOOSE),
    OpSpec("outer", lambda a, b: tt.outer(a, b), np.outer, _vectors_sample(False),
           lambda torch, a, b: torch.outer(a, b)),
    OpSpec("einsum", lambda *xs, spec: tt.einsum(spec, *xs), lambda *xs, spec: np.einsum(spec, *xs),
           _einsum_sample, lambda torch, *xs, spec: torch.einsum(spec, *xs), optional=True, **LOOSE),
]
