"""Batching rules: how each op runs on a whole batch at once.

Most ops are rank-polymorphic already: with every batch dim moved to the front (``align``), the op
itself does the right thing, given its ``dim`` arguments shifted past the batch dims. A rule is
``rule(cls, args, kwargs, levels)``: it calls the op (or a few ops) on aligned, ordinary tensors
and returns the result with the batch dims in front. An op without a rule runs once per sample (a
loop, with a one-time warning naming it): slower, never wrong.
"""
from __future__ import annotations

import functools
import math
import warnings

from .. import creation, ops
from ..autograd import forward_ad
from ..autograd.tensor_core import TensorCore
from ..ops import elementwise as ew
from ..ops import indexing as ix
from ..ops import linalg, nn, rearrange, reduction, sampling, scan, shape, sorting
from ..ops._operands import Cast
from ..ops.broadcast import BroadcastTo, SumTo
from ..ops.copy import Clone, ToDevice
from .batched import BatchedTensor, RawAccess, _ArrayStandIn, align, batched_levels, level_sizes, wrap

RULES: dict = {}
_warned: set = set()


def apply_batched(cls, args: tuple, kwargs: dict):
    """``cls.apply(*args, **kwargs)`` where some argument is batched; NotImplemented when none is."""
    levels = batched_levels(args)
    if not levels:
        for a in args:
            if type(a) is _ArrayStandIn or type(a) is tuple and any(type(i) is _ArrayStandIn for i in a):
                raise RawAccess(f"{cls.__name__} was given the array of a batched tensor")
        return NotImplemented
    for a in args:
        if type(a) is tuple and any(type(i) is _ArrayStandIn for i in a):
            raise RawAccess(f"{cls.__name__} was given the array of a batched tensor inside an index")
    rule = RULES.get(cls)
    if rule is None:
        return loop(cls, args, kwargs, levels)
    return wrap(rule(cls, args, kwargs, levels), levels)


def loop(cls, args, kwargs, levels):
    """The fallback: the op once per sample (every batch dim flattened into one), results stacked."""
    if cls not in _warned:
        _warned.add(cls)
        warnings.warn(f"vmap: {cls.__name__} has no batching rule, so vmap runs it once per sample (a "
                      f"Python loop); the results are right, only slower", UserWarning, stacklevel=4)
    sizes = level_sizes(levels)
    n = math.prod(sizes)
    flat = [align(a, levels, expand=True).reshape(n, *a.shape) if type(a) is BatchedTensor else a
            for a in args]
    results = []
    for i in range(n):
        results.append(cls.apply(*[f[i] if type(a) is BatchedTensor else f for a, f in zip(args, flat)],
                                 **kwargs))
    if type(results[0]) is tuple:
        outs = tuple(_stack(list(r), sizes, cls) for r in zip(*results))
    else:
        outs = _stack(results, sizes, cls)
    return wrap(outs, levels)


def _stack(results, sizes, cls):
    shapes = {tuple(r.shape) for r in results}
    if len(shapes) > 1:
        raise RuntimeError(f"vmap: {cls.__name__} gives results of different shapes across the batch "
                           f"({sorted(shapes)}), which cannot be stacked into one batched tensor")
    return ops.stack(results).reshape(*sizes, *results[0].shape)


def rule(*classes):
    def register(fn):
        for c in classes:
            RULES[c] = fn
        return fn

    return register


def _is_tensor(a) -> bool:
    return isinstance(a, TensorCore)


def _rank(args) -> int:
    return max(a.ndim for a in args if _is_tensor(a))


# ---- elementwise: broadcasting does the work ----------------------------------------------------

@rule(ew.Add, ew.Sub, ew.Mul, ew.Div, ew.Pow, ew.Maximum, ew.Minimum, ew.Neg, ew.Exp, ew.Log, ew.Sqrt,
      ew.Rsqrt, ew.Sin, ew.Cos, ew.Tanh, ew.TanhBackward, ew.Sigmoid, ew.SigmoidBackward, ew.Relu,
      ew.ReluBackward, ew.Silu,
      ew.Erf, ew.Gelu, ew.GeluTanh, ew.Abs, ew.Sign, ew.Clamp, ew.Where, ew.Compare,
      ew.ValueTest, Cast, Clone, ToDevice, forward_ad.DropTangent, ew.Log1p, ew.Expm1, ew.Reciprocal,
      ew.Rounding, ew.FloorDivide, ew.Remainder, ew.Log2, ew.Log10, ew.Exp2, ew.Softplus,
      ew.Hardswish, ew.Mish, ew.Hardsigmoid, ew.Softshrink, ew.Prelu, ew.Atan2, ew.NanToNum, ew.Nonzero,
      ew.Tan, ew.Asin, ew.Acos, ew.Atan, ew.Sinh, ew.Cosh, ew.Asinh, ew.Acosh, ew.Atanh, ew.Erfc,
      ew.Hypot, ew.LogAddExp, ew.Xlogy, ew.Logit,
      linalg.MaxAbsDistance, linalg.ScaledSum)
def elementwise(cls, args, kwargs, levels):
    """Batch dims in front, logical dims padded to one rank: NumPy's broadcasting lines them up (and an op
    over the last dim only, as MaxAbsDistance, never sees them)."""
    r = _rank(args)
    return cls.apply(*[align(a, levels, r) if _is_tensor(a) else a for a in args], **kwargs)


@rule(sampling.Bernoulli)
def bernoulli(cls, args, kwargs, levels):
    """The uniform numbers were drawn for one sample (randomness="same"): every sample uses them."""
    x, p, u = args
    v = align(x, levels, expand=True)
    q = align(p, levels, x.ndim, expand=True) if _is_tensor(p) else p
    return cls.apply(v, q, v.backend.xp.broadcast_to(u, tuple(v.shape)))


@rule(forward_ad.MakeDual, ew.GeluBackward, nn.SoftmaxBackward, nn.LogSoftmaxBackward)
def same_shape(cls, args, kwargs, levels):
    """Ops whose tensor inputs have one shape (their kernels write in place): every input expanded
    to the whole batch."""
    nb = len(levels)
    new = [align(a, levels, expand=True) if _is_tensor(a) else a for a in args]
    if cls in (nn.SoftmaxBackward, nn.LogSoftmaxBackward):
        new[-1] += nb  # the dim
    return cls.apply(*new, **kwargs)


# ---- ops with dims: shift them past the batch dims ---------------------------------------------

@rule(reduction.Sum, reduction.Mean, reduction.Amax, reduction.Amin, reduction.MaxAll, reduction.MinAll,
      reduction.LogSumExp, reduction.Prod, reduction.Var, reduction.Std)
def reduce_dims(cls, args, kwargs, levels):
    x, dims, *rest = args
    nb = len(levels)
    return cls.apply(align(x, levels), tuple(d + nb for d in dims), *rest)


@rule(nn.Softmax, nn.LogSoftmax, scan.Cumsum, scan.Cumprod, rearrange.Flip, shape.Permute)
def one_dim(cls, args, kwargs, levels):
    x, dim = args
    nb = len(levels)
    if cls is shape.Permute:
        return cls.apply(align(x, levels), tuple(range(nb)) + tuple(d + nb for d in dim))
    if cls is rearrange.Flip:
        return cls.apply(align(x, levels), tuple(d + nb for d in dim))
    return cls.apply(align(x, levels), dim + nb)


@rule(reduction.Argmax, reduction.Argmin)
def arg_reduce(cls, args, kwargs, levels):
    x, dim, keepdim = args
    nb, v = len(levels), align(x, levels)
    if dim is not None:
        return cls.apply(v, dim + nb, keepdim)
    out = cls.apply(v.reshape(*v.shape[:nb], -1), nb, False)  # over each sample's flattened values
    return out.reshape(*out.shape, *(1,) * x.ndim) if keepdim else out


@rule(sorting.Argsort)
def argsort(cls, args, kwargs, levels):
    x, dim, descending = args
    return cls.apply(align(x, levels), dim + len(levels), descending)


@rule(reduction.MaxAlong)
def max_along(cls, args, kwargs, levels):
    x, indices, dim, keepdim = args  # indices: an array (of a batched tensor, as the stand-in)
    nb = len(levels)
    idx = align(indices.owner, levels, expand=True).array if type(indices) is _ArrayStandIn else indices
    return cls.apply(align(x, levels, expand=True), idx, dim + nb, keepdim)


# ---- shapes ------------------------------------------------------------------------------------

@rule(shape.Reshape)
def reshape(cls, args, kwargs, levels):
    x, new_shape = args
    v = align(x, levels)
    return cls.apply(v, tuple(v.shape[:len(levels)]) + tuple(new_shape))


@rule(BroadcastTo)
def broadcast_to(cls, args, kwargs, levels):
    x, target = args
    v = align(x, levels, len(target))
    return cls.apply(v, tuple(v.shape[:len(levels)]) + tuple(target))


@rule(SumTo)
def sum_to(cls, args, kwargs, levels):
    x, target = args
    nb, v = len(levels), align(x, levels)
    lead = x.ndim - len(target)
    if lead:  # the leading logical dims first (SumTo would sum the batch dims with them)
        v = reduction.Sum.apply(v, tuple(range(nb, nb + lead)), False)
    return cls.apply(v, tuple(v.shape[:nb]) + tuple(target)) if tuple(v.shape[nb:]) != tuple(target) else v


@rule(shape.Tri)
def tri(cls, args, kwargs, levels):
    return cls.apply(align(args[0], levels), *args[1:])


@rule(shape.Pad)
def pad(cls, args, kwargs, levels):
    x, widths, value = args
    return cls.apply(align(x, levels), ((0, 0),) * len(levels) + tuple(widths), value)


@rule(shape.Cat, shape.Stack)
def join(cls, args, kwargs, levels):
    return cls.apply(*[align(a, levels, expand=True) for a in args], dim=kwargs["dim"] + len(levels))


@rule(shape.Split)
def split(cls, args, kwargs, levels):
    x, sizes, dim = args
    return cls.apply(align(x, levels), sizes, dim + len(levels))


@rule(rearrange.Roll)
def roll(cls, args, kwargs, levels):
    x, shifts, dims = args
    nb, v = len(levels), align(x, levels)
    if dims is not None:
        return cls.apply(v, shifts, tuple(d + nb for d in dims))
    flat = cls.apply(v.reshape(*v.shape[:nb], -1), shifts, (nb,))  # each sample's flattened values
    return flat.reshape(*v.shape)


@rule(rearrange.Repeat)
def repeat(cls, args, kwargs, levels):
    x, sizes = args
    v = align(x, levels, len(sizes), expand=True)
    return cls.apply(v, (1,) * len(levels) + tuple(sizes))


def _index_is_simple(index: tuple) -> bool:
    """Batch dims put in front of an index keep their place: the array parts (with the ints, which
    NumPy then broadcasts with them) sit side by side, so NumPy leaves their result dims in place."""
    arrays = [k for k, it in enumerate(index) if hasattr(it, "shape")]
    if not arrays:
        return True
    advanced = [k for k, it in enumerate(index) if hasattr(it, "shape") or isinstance(it, int)]
    return advanced == list(range(advanced[0], advanced[-1] + 1))


def _masks_as_positions(x, index: tuple) -> tuple:
    """A bool mask in an index as the integer positions of its True entries (NumPy's reading of
    it), so that batch dims in front of it need no mask support among other indices."""
    out = []
    for it in index:
        if hasattr(it, "dtype") and x.backend.dtype_of(it).name == "bool" and it.ndim:
            out.extend(x.backend.xp.nonzero(it))
        else:
            out.append(it)
    return tuple(out)


def _one_mask(backend, shape: tuple, index: tuple):
    """An index with one bool mask after full slices, for an array of ``shape``, as (the shape with
    the mask's dims merged into one, the index of the mask's flat positions there); else None."""
    arrays = [k for k, it in enumerate(index) if hasattr(it, "shape")]
    if len(arrays) != 1:
        return None
    p = arrays[0]
    mask = index[p]
    full = slice(None)
    if (backend.dtype_of(mask).name != "bool" or any(it != full for it in index[:p])
            or any(it is not Ellipsis and it != full for it in index[p + 1:])):
        return None
    merged = tuple(shape[:p]) + (math.prod(shape[p:p + mask.ndim]),) + tuple(shape[p + mask.ndim:])
    (positions,) = backend.xp.nonzero(backend.xp.reshape(mask, (-1,)))
    return merged, (full,) * p + (positions, Ellipsis)


@rule(shape.Getitem, shape.BasicGetitem)
def getitem(cls, args, kwargs, levels):
    x, index = args
    nb = len(levels)
    if cls is shape.Getitem:
        one = _one_mask(x.backend, x.shape, index)
        if one is not None:  # x[mask]: x with the mask's dims merged, read at the mask's flat positions
            merged, index = one
            return cls.apply(align(x.reshape(*merged), levels), (slice(None),) * nb + index)
        index = _masks_as_positions(x, index)
    if not _index_is_simple(index):
        return loop(cls, (x, index), kwargs, levels).value
    return cls.apply(align(x, levels), (slice(None),) * len(levels) + tuple(index))


@rule(shape.IndexAdd)
def index_add_back(cls, args, kwargs, levels):
    g, in_shape, index = args
    nb, sizes = len(levels), level_sizes(levels)
    one = _one_mask(g.backend, in_shape, index)
    if one is not None:  # the adjoint of the x[mask] rule above
        merged, flat_index = one
        out = cls.apply(align(g, levels, expand=True), sizes + merged, (slice(None),) * nb + flat_index)
        return out.reshape(*sizes, *in_shape)
    index = _masks_as_positions(g, index)
    if not _index_is_simple(index):
        return loop(cls, args, kwargs, levels).value
    return cls.apply(align(g, levels, expand=True), sizes + tuple(in_shape),
                     (slice(None),) * nb + tuple(index))


# ---- products ----------------------------------------------------------------------------------

@rule(linalg.MatMul)
def matmul(cls, args, kwargs, levels):
    r = _rank(args)
    return cls.apply(*[align(a, levels, r) for a in args])


_LETTERS = "ZYXWVUTSRQPONMLKJIHGFEDCBA"


@rule(linalg.Einsum)
def einsum(cls, args, kwargs, levels):
    spec = kwargs["spec"]
    ins, out = spec.split("->")
    free = [c for c in _LETTERS if c not in spec][:len(levels)]
    batch = "".join(free)
    terms, operands = [], []
    for term, a in zip(ins.split(","), args):
        if type(a) is BatchedTensor:
            terms.append(batch + term)
            operands.append(align(a, levels, expand=True))
        else:
            terms.append(term)
            operands.append(a)
    return cls.apply(*operands, spec=",".join(terms) + "->" + batch + out)


# ---- indexing along a dim ----------------------------------------------------------------------

@rule(ix.Gather, ix.ScatterAdd, ix.Scatter, ix.ScatterReduce)
def gather_scatter(cls, args, kwargs, levels):
    """(x, index, dim), (x, index, src, dim[, reduce]): every tensor batched, dim shifted."""
    k = 2 if cls is ix.Gather else 3  # the tensor arguments come first (src may be a number)
    new = [align(a, levels, expand=True) if _is_tensor(a) else a for a in args[:k]]
    return cls.apply(*new, args[k] + len(levels), *args[k + 1:])


@rule(ix.IndexSelect, ix.IndexAdd)
def index_along(cls, args, kwargs, levels):
    if type(args[1]) is BatchedTensor:  # an index per sample: no single call does it
        return loop(cls, args, kwargs, levels).value
    nb = len(levels)
    if cls is ix.IndexSelect:
        x, index, dim = args
        return cls.apply(align(x, levels), index, dim + nb)
    x, index, source, dim, alpha = args
    return cls.apply(align(x, levels, expand=True), index, align(source, levels, expand=True), dim + nb,
                     alpha)


@rule(nn.Embedding)
def embedding(cls, args, kwargs, levels):
    weight, index = args
    idx = align(index, levels, expand=True)  # (B.., *index)
    if type(weight) is not BatchedTensor:
        return cls.apply(weight, idx)  # the rows of one weight: the index's batch dims come along
    # a weight per sample (func.grad's copies): its rows numbered across the batch, (B·num, dim)
    num, dim = weight.shape
    sizes = level_sizes(levels)
    if index.numel():  # checked against one sample's rows, before the numbering spans them all
        lo, hi = idx.backend.bounds(idx.array)
        if lo < 0 or hi >= num:
            raise IndexError(f"embedding: index {hi if hi >= num else lo} is out of range for a weight with "
                             f"{num} rows")
    rows = align(weight, levels, expand=True).reshape(-1, dim)  # (B·num, dim)
    n = math.prod(sizes)
    first_row = creation.arange(n, device=idx.device).reshape(*sizes, *(1,) * index.ndim) * num
    return cls.apply(rows, idx + first_row)  # (B.., *index, dim)


def register_nn_rules():
    """The rules for tinytensor_nn's fused Functions (imported when tinytensor_nn is)."""
    import sys

    if "tinytensor_nn.functional" not in sys.modules:
        return
    from tinytensor_nn import positional
    from tinytensor_nn.functional import attention, basic, losses

    RULES[losses.Softplus] = RULES[losses.BinaryCrossEntropy] = RULES[positional.Rotate] = elementwise
    RULES[basic.LinearFn] = _linear
    RULES[basic.LayerNormFn] = _layer_norm
    RULES[basic.LayerNormBackward] = functools.partial(_layer_norm_backward, basic.layer_norm_grads)
    RULES[attention.ScaledDotProductAttention] = _attention
    RULES[losses.SoftmaxCrossEntropy] = _cross_entropy
    RULES[losses.SoftmaxCrossEntropyBackward] = _cross_entropy_backward
    RULES[losses.TargetWeights] = _target_weights


def _linear(cls, args, kwargs, levels):
    x, w, b = args
    nb = len(levels)
    if type(w) is not BatchedTensor and type(b) is not BatchedTensor:
        return cls.apply(align(x, levels), w, b)  # x's leading dims hold the batch: one product
    # a weight per sample: y = x Wᵀ + b as a batched matrix product
    v = align(x, levels)
    lead = tuple(v.shape[nb:-1])
    rows = v.reshape(*v.shape[:nb], -1, v.shape[-1])  # (B.., M, in)
    y = ops.matmul(rows, align(w, levels).mT)  # (B.., M, out)
    if b is not None:
        y = y + align(b, levels).unsqueeze(-2)
    return y.reshape(*y.shape[:nb], *lead, w.shape[0])


def _layer_norm(cls, args, kwargs, levels):
    x, w, b, k, eps = args
    v = align(x, levels)
    if type(w) is not BatchedTensor and type(b) is not BatchedTensor:
        return cls.apply(v, w, b, k, eps)
    y = cls.apply(v, None, None, k, eps)
    if w is not None:
        y = y * align(w, levels, x.ndim)
    if b is not None:
        y = y + align(b, levels, x.ndim)
    return y


def _layer_norm_backward(grads_with_tensor_ops, cls, args, kwargs, levels):
    gy, x, w, _mu, _rstd, k, eps, need_bias = args  # μ and rstd are rebuilt from x (batched with it)
    out = grads_with_tensor_ops(gy, x, w, k, eps, need_bias)  # each op batched by its own rule
    if type(out) is tuple:
        return tuple(align(o, levels, expand=True) for o in out)
    return align(out, levels, expand=True)


def _attention(cls, args, kwargs, levels):
    q, k, v, bias, keep, *options = args  # options: scale, causal
    tensors = [t for t in (q, k, v, bias, keep) if t is not None]
    r = max(t.ndim for t in tensors)
    al = [None if t is None else align(t, levels, r) for t in (q, k, v, bias, keep)]
    return cls.apply(*al, *options)


def _cross_entropy(cls, args, kwargs, levels):
    z, a = args
    zs, as_ = align(z, levels, expand=True), align(a, levels, expand=True)
    M, C = z.shape
    n = math.prod(level_sizes(levels))
    out = cls.apply(zs.reshape(n * M, C), as_.reshape(n * M, C))
    return out.reshape(*level_sizes(levels), M)


def _cross_entropy_backward(cls, args, kwargs, levels):
    g, z, a, logp, *need = args  # every sample's rows are rows of one call
    M, C = z.shape
    n = math.prod(level_sizes(levels))
    rows = [align(t, levels, expand=True).reshape(n * M, *t.shape[1:]) for t in (g, z, a, logp)]
    out = cls.apply(*rows, *need)
    sizes = level_sizes(levels)
    return tuple(o.reshape(*sizes, M, C) for o in out) if type(out) is tuple else out.reshape(*sizes, M, C)


def _target_weights(cls, args, kwargs, levels):
    target, weight, c, *options = args
    if type(weight) is BatchedTensor:  # class weights per sample: no single call does it
        return tuple(out.value for out in loop(cls, args, kwargs, levels))
    a, wt = cls.apply(align(target, levels, expand=True), weight, c, *options)  # every sample's rows
    sizes = level_sizes(levels)
    return a.reshape(*sizes, -1, c), wt.reshape(*sizes, -1)  # (B.., M, C), (B.., M)
