"""functional_call: a Module run with other tensors in place of its parameters and buffers."""
from __future__ import annotations

from ..autograd.tensor_core import TensorCore


def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """module(*args, **kwargs) with each named parameter or buffer ("layer.weight") replaced by the
    tensor given for it; the module itself is left as it was. Makes a model a function of its
    weights, for func.grad, func.vmap (ensembles, per-sample gradients) and func.jacrev."""
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        dicts = (dicts,)
    given: dict = {}
    for d in dicts:
        for name, t in d.items():
            if name in given:
                raise ValueError(f"functional_call: {name!r} is given twice in parameter_and_buffer_dicts")
            given[name] = t
    known = {n: p for n, p in module.named_parameters()} | {n: b for n, b in module.named_buffers()}
    unknown = [n for n in given if n not in known]
    if unknown:
        raise ValueError(f"functional_call: {type(module).__name__} has no parameter or buffer named "
                         f"{unknown[0]!r} (it has {sorted(known)[:6]}{'...' if len(known) > 6 else ''})")
    if strict:
        missing = [n for n in known if n not in given]
        if missing:
            raise ValueError(f"functional_call: strict=True, but no tensor is given for {missing}")
    if tie_weights:  # a tensor shared by two names (tied weights) takes the given one under both names
        by_id: dict = {}
        for n, t in known.items():
            by_id.setdefault(id(t), []).append(n)
        for names in by_id.values():
            for n in names:
                if n in given:
                    for other in names:
                        given.setdefault(other, given[n])
    for name, t in given.items():
        if not isinstance(t, TensorCore):
            raise TypeError(f"functional_call: the value for {name!r} must be a Tensor, got "
                            f"{type(t).__name__}")
        if tuple(t.shape) != tuple(known[name].shape):
            raise ValueError(f"functional_call: {name!r} has shape {tuple(known[name].shape)} in the module, "
                             f"but the tensor given for it has shape {tuple(t.shape)}")
    swapped = []
    try:
        for name, t in given.items():
            owner, attr = _owner(module, name)
            store = owner._parameters if attr in owner._parameters else owner._buffers
            swapped.append((store, attr, store[attr]))
            store[attr] = t
        return module(*(args if isinstance(args, tuple) else (args,)), **(kwargs or {}))
    finally:
        for store, attr, old in reversed(swapped):
            store[attr] = old


def _owner(module, name: str):
    *path, attr = name.split(".")
    for p in path:
        module = module._modules[p]
    return module, attr
