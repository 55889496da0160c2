"""Helpers for the attention/Transformer/ViT tests: gradient checks of whole modules."""
from __future__ import annotations

from tinytensor.autograd import gradcheck


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
