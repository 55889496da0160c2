"""vmap: a function of one sample, run on a whole batch at once."""
from __future__ import annotations

import functools
import itertools
import warnings

from .. import random as tt_random
from ..autograd import function
from ..autograd.tensor_core import TensorCore
from ..ops.dims import normalize_dim
from . import _pytree, batching
from .batched import BatchedTensor, Level, RawAccess, active

_ids = itertools.count(1)
RANDOMNESS = ("error", "different", "same")


class _NeedsLoop(Exception):
    """A random draw under randomness="different": vmap runs the function once per sample."""


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """``func`` mapped over a batch dim of its inputs: vmap(f)(x)[i] = f(x[i]), in one call.

    ``in_dims`` gives each input's batch dim (an int, None for an input shared by every sample, or a
    tuple/dict matching the inputs); ``out_dims`` where the batch dim goes in each output.
    ``randomness``: "error" (a random op inside raises), "different" (each sample its own draws) or
    "same" (one draw shared by the batch).
    """
    if randomness not in RANDOMNESS:
        raise ValueError(f"vmap: randomness must be one of {RANDOMNESS}, got {randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size must be a positive int or None, got {chunk_size!r}")
    name = getattr(func, "__name__", repr(func))

    @functools.wraps(func)
    def batched(*args, **kwargs):
        leaves, spec = _pytree.flatten(args)
        dims = _pytree.broadcast_prefix(in_dims if isinstance(in_dims, tuple) or len(args) != 1
                                        else (in_dims,), args, f"vmap({name}): in_dims")
        size = _batch_size(leaves, dims, name)
        if chunk_size is not None and chunk_size < size:
            chunks = [_slice_args(leaves, dims, start, min(start + chunk_size, size))
                      for start in range(0, size, chunk_size)]
            outs = [batched(*_pytree.unflatten(c, spec), **kwargs) for c in chunks]
            return _concat(outs, out_dims, name)
        level = Level(next(_ids), size, randomness)
        wrapped = [x if d is None else _enter(x, d, level.id) for x, d in zip(leaves, dims)]
        try:
            with _running(level):
                out = func(*_pytree.unflatten(wrapped, spec), **kwargs)
                return _exit(out, level, out_dims, name)
        except (RawAccess, _NeedsLoop) as e:
            why = str(e) if isinstance(e, RawAccess) else "a random op under randomness='different'"
            return _loop(func, args, kwargs, leaves, dims, spec, level, out_dims, name, why)
        except (TypeError, AttributeError) as e:
            if "_ArrayStandIn" not in str(e):  # an array library refusing the stand-in (it checks types
                raise                          # before touching it): that too is a raw read
            return _loop(func, args, kwargs, leaves, dims, spec, level, out_dims, name, str(e))

    return batched


def _batch_size(leaves, dims, name) -> int:
    sizes = {}
    for i, (x, d) in enumerate(zip(leaves, dims)):
        if d is None:
            continue
        if not isinstance(x, TensorCore):
            raise ValueError(f"vmap({name}): input {i} is a {type(x).__name__}, which has no dim {d} to map "
                             f"over; give it in_dims None")
        if not isinstance(d, int):
            raise TypeError(f"vmap({name}): in_dims must hold ints or None, got {d!r} for input {i}")
        if not -x.ndim <= d < max(x.ndim, 1) or x.ndim == 0:
            raise ValueError(f"vmap({name}): in_dims={d} for input {i} of shape {tuple(x.shape)}, which has "
                             f"no dim {d} (it has {x.ndim} dims)")
        sizes[i] = x.shape[d]
    if not sizes:
        raise ValueError(f"vmap({name}): at least one input must be mapped over (every in_dims is None)")
    if len(set(sizes.values())) > 1:
        got = ", ".join(f"input {i}: {n}" for i, n in sizes.items())
        raise ValueError(f"vmap({name}): the inputs mapped over have different sizes along their in_dims "
                         f"({got}); they must agree")
    return next(iter(sizes.values()))


def _enter(x, d: int, level: int):
    """x with its dim d as the batch dim of the new (newest) level."""
    if type(x) is BatchedTensor:
        nb = len(x.levels)
        d = normalize_dim(d, x.ndim, "vmap") + nb
        order = [d] + [k for k in range(x.value.ndim) if k != d]
        return BatchedTensor(x.value.permute(*order), (level,) + x.levels)
    d = normalize_dim(d, x.ndim, "vmap")
    v = x.permute(d, *[k for k in range(x.ndim) if k != d]) if d else x
    return BatchedTensor(v, (level,))


def _exit(out, level: Level, out_dims, name):
    leaves, spec = _pytree.flatten(out)
    dims = _pytree.broadcast_prefix(out_dims, out, f"vmap({name}): out_dims")
    result = []
    for i, (t, d) in enumerate(zip(leaves, dims)):
        if not isinstance(t, TensorCore):
            raise TypeError(f"vmap({name}): the function returned a {type(t).__name__} (output {i}); vmap "
                            f"needs it to return tensors")
        result.append(_leave(t, level, d, name))
    return _pytree.unflatten(result, spec)


def _leave(t, level: Level, d, name):
    """Output ``t`` of the function with level's batch dim at ``d`` (as the caller's tensor)."""
    if type(t) is BatchedTensor and level.id in t.levels:
        if d is None:
            raise ValueError(f"vmap({name}): out_dims None for an output that differs across the batch")
        rest = t.levels[1:]
        assert t.levels[0] == level.id  # the newest level is always the first batch dim
        v = t.value
    elif d is None:  # the same for every sample, and asked for once
        return t
    else:  # the same for every sample: repeated along the new dim
        rest = t.levels if type(t) is BatchedTensor else ()
        v = t.value if type(t) is BatchedTensor else t
        v = v.unsqueeze(0).expand(level.size, *v.shape)
    logical = v.ndim - 1 - len(rest)
    d = normalize_dim(d, logical + 1, f"vmap({name}): out_dims")
    k = len(rest) + d  # where the batch dim goes among the value's dims
    if k:
        order = list(range(1, v.ndim))
        order.insert(k, 0)
        v = v.permute(*order)
    return BatchedTensor(v, rest) if rest else v


class _running:
    """Level becomes the newest running vmap: ops see batched inputs, draws see the randomness mode."""

    def __init__(self, level: Level):
        self.level = level

    def __enter__(self):
        batching.register_nn_rules()
        self.tokens = (active.set(active.get() + (self.level,)),
                       function.batching.set(batching.apply_batched),
                       tt_random.draw_hook.set(functools.partial(_draw, self.level)))

    def __exit__(self, *exc):
        a, b, c = self.tokens
        tt_random.draw_hook.reset(c)
        function.batching.reset(b)
        active.reset(a)


def _draw(level: Level):
    if level.randomness == "error":
        raise RuntimeError("vmap: a random op (dropout, bernoulli, rand, ...) was called inside vmap with "
                           "randomness='error'; pass randomness='different' (each sample its own random "
                           "numbers) or 'same' (one draw shared by every sample)")
    if level.randomness == "different":
        raise _NeedsLoop()


def _loop(func, args, kwargs, leaves, dims, spec, level: Level, out_dims, name, why):
    """vmap's fallback: func once per sample, the results stacked along out_dims."""
    warnings.warn(f"vmap({name}): {why}; vmap runs {name} once per sample instead (a loop over "
                  f"{level.size})", UserWarning, stacklevel=3)
    outs = []
    for i in range(level.size):
        sample = [x if d is None else _select(x, d, i) for x, d in zip(leaves, dims)]
        with _sample(level):
            outs.append(func(*_pytree.unflatten(sample, spec), **kwargs))
    flat = [_pytree.flatten(o)[0] for o in outs]
    out_spec = _pytree.flatten(outs[0])[1]
    odims = _pytree.broadcast_prefix(out_dims, outs[0], f"vmap({name}): out_dims")
    from .. import ops

    stacked = [ops.stack([f[j] for f in flat], dim=0 if d is None else d) for j, d in enumerate(odims)]
    return _pytree.unflatten(stacked, out_spec)


class _sample:
    """One sample of a looping vmap: random draws are allowed ("same": each sample the same state)."""

    def __init__(self, level: Level):
        self.level = level

    def __enter__(self):
        if self.level.randomness == "same":
            if not hasattr(self.level, "_state"):
                object.__setattr__(self.level, "_state", tt_random.get_rng_state())
            tt_random.set_rng_state(self.level._state)
        self.token = tt_random.draw_hook.set(None if self.level.randomness != "error"
                                             else functools.partial(_draw, self.level))

    def __exit__(self, *exc):
        tt_random.draw_hook.reset(self.token)


def _select(x, d: int, i: int):
    index = [slice(None)] * x.ndim
    index[normalize_dim(d, x.ndim, "vmap")] = i
    return x[tuple(index)]


def _slice_args(leaves, dims, start, stop):
    out = []
    for x, d in zip(leaves, dims):
        if d is None:
            out.append(x)
            continue
        index = [slice(None)] * x.ndim
        index[normalize_dim(d, x.ndim, "vmap")] = slice(start, stop)
        out.append(x[tuple(index)])
    return out


def _concat(outs, out_dims, name):
    from .. import ops

    flat = [_pytree.flatten(o)[0] for o in outs]
    spec = _pytree.flatten(outs[0])[1]
    odims = _pytree.broadcast_prefix(out_dims, outs[0], f"vmap({name}): out_dims")
    return _pytree.unflatten([ops.cat([f[j] for f in flat], dim=d) for j, d in enumerate(odims)], spec)
