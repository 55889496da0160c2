"""``grad`` (gradients as return values) and numerical checks of analytic gradients."""
from __future__ import annotations

import numpy as np

from .engine import run_backward
from .tensor_core import TensorCore


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False):
    """d(outputs)/d(inputs) · grad_outputs, returned as a tuple; no ``.grad`` is modified."""
    outputs = [outputs] if isinstance(outputs, TensorCore) else list(outputs)
    single = isinstance(inputs, TensorCore)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, TensorCore):
        grad_outputs = [grad_outputs]
    roots, root_grads = [], []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("grad: an output does not require grad (computed under no_grad, or from "
                               "tensors without requires_grad=True)")
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad: grad_outputs is needed for the non-scalar output of shape {out.shape}"
                )
            g = out._wrap(out.backend.full(out.shape, 1, out.dtype))
        roots.append(out._edge())
        root_grads.append(g)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"grad: an input (shape {t.shape}) does not require grad")
    keys = [(id(t._edge()[0]), t._edge()[1]) for t in inputs]
    capture = dict.fromkeys(keys)
    run_backward(roots, root_grads, retain_graph=create_graph if retain_graph is None else retain_graph,
                 create_graph=create_graph, capture=capture)
    result = []
    for t, k in zip(inputs, keys):
        g = capture[k]
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: an input of shape {t.shape} was not used to compute the outputs; pass "
                f"allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


def _numerical_jvp(fn, inputs, i, upstream, eps):
    """(f(x + eps e_k) - f(x - eps e_k)) / 2eps · upstream for every element k of inputs[i]."""
    x = inputs[i]
    host = x.numpy().astype(np.float64)
    out = np.zeros(host.size)
    for k in range(host.size):
        vals = []
        for sign in (1.0, -1.0):
            h = host.copy().reshape(-1)
            h[k] += sign * eps
            xi = x._wrap(x.backend.from_host(h.reshape(host.shape).astype(x.dtype.name)))
            xi.requires_grad = x.requires_grad
            args = list(inputs)
            args[i] = xi
            outs = fn(*args)
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            vals.append(sum(float((o.numpy().astype(np.float64) * u).sum()) for o, u in zip(outs, upstream)))
        out[k] = (vals[0] - vals[1]) / (2 * eps)
    return out.reshape(host.shape)


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Compare the analytic vector-Jacobian product of fn with central differences (use float64).

    A random upstream gradient is drawn for every output, so errors that cancel under a
    gradient of ones are still caught.
    """
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    for t in inputs:
        if isinstance(t, TensorCore) and t.requires_grad and t.dtype.name != "float64":
            raise TypeError(f"gradcheck: use float64 inputs for a meaningful check, got {t.dtype}")
    rng = np.random.default_rng(seed)
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    upstream = [rng.standard_normal(o.shape) for o in outs]
    diff_inputs = [i for i, t in enumerate(inputs) if isinstance(t, TensorCore) and t.requires_grad]
    analytic = grad(
        outs, [inputs[i] for i in diff_inputs],
        [o._wrap(o.backend.from_host(u.astype(o.dtype.name))) for o, u in zip(outs, upstream)],
        allow_unused=True,
    )
    for i, g in zip(diff_inputs, analytic):
        num = _numerical_jvp(fn, inputs, i, upstream, eps)
        ana = np.zeros_like(num) if g is None else g.numpy().astype(np.float64)
        if not np.allclose(ana, num, atol=atol, rtol=rtol):
            if not raise_exception:
                return False
            err = np.abs(ana - num).max()
            raise AssertionError(
                f"gradcheck failed for input {i} (shape {inputs[i].shape}): max abs error {err:.3g}\n"
                f"analytic:\n{ana}\nnumerical:\n{num}"
            )
    return True


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0) -> bool:
    """gradcheck of the function inputs -> grad(fn(inputs)) · u, i.e. of the second derivatives."""
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    rng = np.random.default_rng(seed + 1)
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    upstream = [o._wrap(o.backend.from_host(rng.standard_normal(o.shape).astype(o.dtype.name))) for o in outs]
    diff = [i for i, t in enumerate(inputs) if isinstance(t, TensorCore) and t.requires_grad]

    def first_grads(*args):
        o = fn(*args)
        o = list(o) if isinstance(o, (tuple, list)) else [o]
        gs = grad(o, [args[i] for i in diff], upstream, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None and g.requires_grad)

    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
