"""Helpers for the nn tests: gradient checks of whole modules, random parameters, torch comparisons."""
from __future__ import annotations

import numpy as np

import tinytensor as tt
from tinytensor.autograd import gradcheck

# float64 agrees with torch to rounding (sums in another order); float32 to its precision
TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}


def x_of(*shape, seed=0, scale=1.0) -> np.ndarray:
    """Seeded standard-normal values of ``shape``, times ``scale``."""
    return np.random.default_rng(seed).standard_normal(shape) * scale


def close(ours, theirs, dtype: str, what: str) -> None:
    """Our tensor equals torch's (or an array): the same shape and dtype, values within TOL[dtype]."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == tuple(theirs.shape), f"{what}: shape {ours.shape} vs torch {tuple(theirs.shape)}"
    assert ours.dtype.name == str(theirs.dtype), f"{what}: dtype {ours.dtype.name} vs torch {theirs.dtype}"
    np.testing.assert_allclose(ours.numpy(), theirs, err_msg=what, **TOL[dtype])


def perturb_(module, seed=1):
    """Random values in every parameter (so ones/zeros init cannot hide a wrong gradient)."""
    rng = np.random.default_rng(seed)
    with tt.no_grad():
        for p in module.parameters():
            p.copy_(tt.tensor(rng.standard_normal(p.shape), dtype=p.dtype, device=p.device))
    return module


def module_gradcheck(module, inputs, call=None, **kw) -> bool:
    """gradcheck of module(*inputs) with respect to the inputs that require grad AND every parameter.

    gradcheck perturbs copies of its inputs; the parameters are routed through by pointing each
    Parameter's data at the (perturbed) copy while the module runs. ``call(module, *inputs)``
    replaces the plain ``module(*inputs)`` (e.g. to pass masks or take output [0]).
    """
    params = list(module.parameters())
    n = len(inputs)
    call = call or (lambda m, *xs: m(*xs))

    def fn(*args):
        saved = [p.array for p in params]
        for p, a in zip(params, args[n:]):
            p.array = a.array
        try:
            return call(module, *args[:n])
        finally:
            for p, d in zip(params, saved):
                p.array = d

    return gradcheck(fn, list(inputs) + params, **kw)
