"""``grad`` (gradients as return values) and numerical checks of analytic gradients."""
from __future__ import annotations

import numpy as np

from . import dual
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
            if out.array.size != 1:
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
    retain = create_graph if retain_graph is None else retain_graph
    # inside a dual level (forward_ad) the backward ops carry tangents: they run as Tensor ops
    create = create_graph or bool(dual.open_levels.get())
    run_backward(roots, root_grads, retain_graph=retain, create_graph=create, capture=capture)
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


def _as_list(outs) -> list:
    return list(outs) if isinstance(outs, (tuple, list)) else [outs]


def numerical_vjp(fn, inputs, i: int, upstream=None, eps: float = 1e-6) -> np.ndarray:
    """Σₒ upstreamₒ · ∂fn(inputs)ₒ/∂inputs[i] by central differences, in float64, as a NumPy array.

    Element k of the result is (f(x + ε eₖ) − f(x − ε eₖ)) / 2ε with f = Σₒ upstreamₒ · fnₒ and x =
    inputs[i]: the vector–Jacobian product an analytic backward must match. ``fn`` returns a Tensor
    or a tuple of Tensors; ``upstream`` holds one array per output (None: all ones). Use float64
    inputs: the perturbation is applied in float64 and then cast to the input's dtype.
    """
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
            vals.append([o.numpy().astype(np.float64) for o in _as_list(fn(*args))])
        ups = [1.0] * len(vals[0]) if upstream is None else upstream
        # the outputs are differenced element by element before the upstream weights them: large
        # outputs that do not depend on x (a masked_fill value of -1e4) then cancel exactly
        out[k] = sum(float(((p - m) * u).sum()) for p, m, u in zip(vals[0], vals[1], ups)) / (2 * eps)
    return out.reshape(host.shape)


def _require_float64(inputs, what: str) -> None:
    for t in inputs:
        if isinstance(t, TensorCore) and t.requires_grad and t.dtype.name != "float64":
            raise TypeError(f"{what}: use float64 inputs for a meaningful check, got {t.dtype}")


def _constant(like, array):
    return like._wrap(like.backend.from_host(np.asarray(array).astype(like.dtype.name)))


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Compare the analytic vector-Jacobian product of fn with central differences (use float64).

    A random upstream gradient is drawn for every output, so errors that cancel under a
    gradient of ones are still caught.
    """
    inputs = _as_list(inputs)
    _require_float64(inputs, "gradcheck")
    rng = np.random.default_rng(seed)
    outs = _as_list(fn(*inputs))
    upstream = [rng.standard_normal(o.shape) for o in outs]
    diff_inputs = [i for i, t in enumerate(inputs) if isinstance(t, TensorCore) and t.requires_grad]
    analytic = grad(outs, [inputs[i] for i in diff_inputs],
                    [_constant(o, u) for o, u in zip(outs, upstream)], allow_unused=True)
    for i, g in zip(diff_inputs, analytic):
        num = numerical_vjp(fn, inputs, i, upstream, eps)
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


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
                  raise_exception: bool = True) -> bool:
    """Check the second derivatives of fn: differentiate its analytic gradient by double backward and
    compare with central differences of that gradient (use float64).

    The gradient g(x, u) = uᵀ ∂fn/∂x is taken with a random upstream gradient u for every output,
    and g is checked as a function of every input that requires grad *and* of u, against a random
    vector w. A part of g that does not depend on x in the graph (a backward computed on constants)
    counts as a zero second derivative, so it fails wherever the numerical one is not zero.
    """
    inputs = _as_list(inputs)
    _require_float64(inputs, "gradgradcheck")
    rng = np.random.default_rng(seed + 1)
    outs = _as_list(fn(*inputs))
    diff = [i for i, t in enumerate(inputs) if isinstance(t, TensorCore) and t.requires_grad]
    kept = [k for k, o in enumerate(outs) if o.requires_grad]  # outputs with a graph to differentiate
    ups = [_constant(outs[k], rng.standard_normal(outs[k].shape)) for k in kept]
    for u in ups:
        u.requires_grad = True
    n = len(inputs)

    def first_grads(*args):
        """g(x, u): the analytic gradient of fn at args[:n] for the upstream args[n:], zeros where unused."""
        o = _as_list(fn(*args[:n]))
        o = [o[k] for k in kept]
        gs = [None] * len(diff)
        if o:
            gs = grad(o, [args[i] for i in diff], list(args[n:]), create_graph=True, allow_unused=True)
        return tuple(_constant(args[i], np.zeros(args[i].shape)) if g is None else g
                     for i, g in zip(diff, gs))

    args = inputs + ups
    gs = first_grads(*args)
    ws = [rng.standard_normal(g.shape) for g in gs]
    variables = diff + list(range(n, n + len(ups)))
    live = [(g, w) for g, w in zip(gs, ws) if g.requires_grad]
    analytic = [None] * len(variables)
    if live:
        analytic = grad([g for g, _ in live], [args[v] for v in variables],
                        [_constant(g, w) for g, w in live], allow_unused=True)
    for v, g in zip(variables, analytic):
        num = numerical_vjp(first_grads, args, v, ws, eps)
        ana = np.zeros_like(num) if g is None else g.numpy().astype(np.float64)
        if np.allclose(ana, num, atol=atol, rtol=rtol):
            continue
        if not raise_exception:
            return False
        what = (f"input {v} (shape {inputs[v].shape})" if v < n
                else f"the upstream gradient of output {kept[v - n]} (shape {args[v].shape})")
        missing = " is missing (the gradient does not depend on it in the graph)" if g is None else ""
        raise AssertionError(
            f"gradgradcheck failed: the second-order gradient with respect to {what}{missing}; "
            f"max abs error {np.abs(ana - num).max():.3g}\nanalytic:\n{ana}\nnumerical:\n{num}"
        )
    return True
