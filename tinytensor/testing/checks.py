"""The checks run on every op: forward against the NumPy reference, float64 numerical gradients with
a random upstream gradient, and a numerical check of the second derivatives.

Each check takes an ``OpSpec``, one ``Sample`` and a device, and raises ``AssertionError`` (with the
op, the sample and the device in the message) when the op is wrong, ``Unsupported`` when an optional
op is declared unsupported by the backend (it raised ``NotImplementedError``).
"""
from __future__ import annotations

import contextlib

import numpy as np

import tinytensor as tt
from tinytensor.autograd import gradcheck, gradgradcheck
from tinytensor.backends import canonical_device

from .catalogue import OpSpec, Sample

F64_RTOL, F64_ATOL = 1e-9, 1e-12  # float64 forward against the float64 NumPy reference
GRAD_EPS, GRAD_ATOL, GRAD_RTOL = 1e-6, 1e-6, 1e-5  # float64 central differences
GRAD2_ATOL, GRAD2_RTOL = 1e-5, 1e-4  # second order: differences of a gradient


class Unsupported(Exception):
    """An optional op (``OpSpec.optional``) that this backend declares unsupported."""


@contextlib.contextmanager
def _context(spec: OpSpec, sample: Sample, device: str, what: str):
    """Name the op, the check, the device and the sample on whatever goes wrong inside."""
    try:
        yield
    except Unsupported:
        raise
    except Exception as e:
        e.add_note(f"[{what}] op {spec.name!r} on device {device!r}: {sample.describe()}")
        raise


def call_op(spec: OpSpec, tensors: list, params: dict):
    """spec.fn on the tensors; a NotImplementedError from an optional op's forward means the
    backend declares the op unsupported. (From a backward, or from a required op, it is a failure.)"""
    try:
        return spec.fn(*tensors, **params)
    except NotImplementedError as e:
        if spec.optional:
            raise Unsupported(f"{spec.name} on {tensors[0].device!r}: {e}") from e
        raise


def as_list(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def make_inputs(sample: Sample, device: str, dtype: str, requires_grad: bool = False) -> list:
    """The sample's arrays as tensors on ``device``: float inputs in ``dtype``, others as they are."""
    out = []
    for a, diff in zip(sample.inputs, sample.differentiable()):
        if a.dtype.kind == "f":
            out.append(tt.tensor(a.astype(dtype), device=device, requires_grad=requires_grad and diff))
        else:
            out.append(tt.tensor(a, device=device))
    return out


def reference_inputs(sample: Sample, dtype: str) -> list:
    """What the reference sees: the same values the tensors hold (rounded to dtype), in float64."""
    return [a.astype(dtype).astype(np.float64) if a.dtype.kind == "f" else a for a in sample.inputs]


def _float_outputs(spec: OpSpec, params: dict):
    """fn restricted to its floating outputs (max(dim) also returns integer indices)."""

    def f(*xs):
        outs = [o for o in as_list(spec.fn(*xs, **params)) if o.dtype.is_floating_point]
        return outs[0] if len(outs) == 1 else tuple(outs)

    return f


def compare(got, want, device: str, dtype: str, rtol: float, atol: float, what: str = "output") -> None:
    """Outputs of an op against the reference: count, type, device, shape, dtype, values."""
    got, want = as_list(got), [np.asarray(w) for w in as_list(want)]
    assert len(got) == len(want), f"{what}: {len(got)} outputs, the reference has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        name = f"{what} {i}" if len(got) > 1 else what
        assert isinstance(g, tt.Tensor), f"{name}: expected a Tensor, got {type(g).__name__}"
        assert g.device == canonical_device(device), f"{name}: on {g.device}, expected {device}"
        assert g.shape == w.shape, f"{name}: shape {g.shape}, the reference has {w.shape}"
        if w.dtype.kind == "f":
            assert g.dtype.name == dtype, f"{name}: dtype {g.dtype.name}, expected {dtype} (the input dtype)"
        elif w.dtype.kind in "iu":
            assert g.dtype is tt.int64, f"{name}: dtype {g.dtype.name}, expected int64"
        else:
            assert g.dtype is tt.bool, f"{name}: dtype {g.dtype.name}, expected bool"
        values = g.numpy()
        if w.dtype.kind == "f":
            np.testing.assert_allclose(values, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(values, w, err_msg=name)


def check_forward(spec: OpSpec, sample: Sample, device: str, dtype: str) -> None:
    """Forward in ``dtype`` matches the float64 NumPy reference; grads come back in ``dtype``."""
    with _context(spec, sample, device, f"forward {dtype}"):
        tensors = make_inputs(sample, device, dtype)
        want = spec.ref(*reference_inputs(sample, dtype), **sample.params)
        got = call_op(spec, tensors, sample.params)
        rtol, atol = (F64_RTOL, F64_ATOL) if dtype == "float64" else (spec.rtol, spec.atol)
        compare(got, want, device, dtype, rtol, atol)
        for t, a in zip(tensors, sample.inputs):  # inputs are never modified
            np.testing.assert_array_equal(t.numpy(), a.astype(dtype) if a.dtype.kind == "f" else a,
                                          err_msg="the op modified its input")
    if spec.differentiable and any(sample.differentiable()):
        check_backward_meta(spec, sample, device, dtype)
    elif not spec.differentiable and any(a.dtype.kind == "f" for a in sample.inputs):
        with _context(spec, sample, device, f"no graph {dtype}"):
            outs = as_list(spec.fn(*make_inputs(sample, device, dtype, requires_grad=True), **sample.params))
            assert not any(o.requires_grad for o in outs), "a non-differentiable op recorded a graph"


def check_backward_meta(spec: OpSpec, sample: Sample, device: str, dtype: str) -> None:
    """backward() puts a gradient of the input's shape, dtype and device in every input's .grad."""
    with _context(spec, sample, device, f"backward {dtype}"):
        tensors = make_inputs(sample, device, dtype, requires_grad=True)
        outs = as_list(_float_outputs(spec, sample.params)(*tensors))
        rng = np.random.default_rng(0)
        if len(outs) == 1:
            up = tt.tensor(rng.standard_normal(outs[0].shape).astype(dtype), device=device)
            outs[0].backward(up)
        else:
            total = sum((o * tt.tensor(rng.standard_normal(o.shape).astype(dtype), device=device)).sum()
                        for o in outs)
            total.backward()
        for i, t in enumerate(tensors):
            if not t.requires_grad:
                assert t.grad is None, f"input {i} does not require grad but got a .grad"
                continue
            g = t.grad
            assert g is not None, f"input {i} (shape {t.shape}) received no gradient"
            assert g.shape == t.shape, f"input {i}: gradient shape {g.shape}, input shape {t.shape}"
            assert g.dtype is t.dtype, f"input {i}: gradient dtype {g.dtype.name}, input dtype {t.dtype.name}"
            assert g.device == t.device, f"input {i}: gradient on {g.device}, input on {t.device}"
            assert not g.requires_grad, f"input {i}: .grad requires grad after a plain backward()"
            assert np.isfinite(g.numpy()).all(), f"input {i}: non-finite gradient {g.numpy()}"


def check_gradient(spec: OpSpec, sample: Sample, device: str) -> None:
    """float64 analytic vector-Jacobian products against central differences (random upstream)."""
    if not spec.differentiable or not any(sample.differentiable()):
        return
    with _context(spec, sample, device, "gradient"):
        tensors = make_inputs(sample, device, "float64", requires_grad=True)
        call_op(spec, tensors, sample.params)
        gradcheck(_float_outputs(spec, sample.params), tensors, eps=GRAD_EPS, atol=GRAD_ATOL,
                  rtol=GRAD_RTOL)


def check_second_order(spec: OpSpec, sample: Sample, device: str) -> None:
    """Second derivatives by double backward against central differences of the analytic gradient,
    with respect to every input and to the (random) upstream gradient: ``tt.autograd.gradgradcheck``.

    A first gradient that silently drops out of the graph (a backward that is not differentiable)
    shows up as a mismatch instead of being left out.
    """
    if not (spec.differentiable and spec.second_order) or not any(sample.differentiable()):
        return
    with _context(spec, sample, device, "second order"):
        tensors = make_inputs(sample, device, "float64", requires_grad=True)
        call_op(spec, tensors, sample.params)
        gradgradcheck(_float_outputs(spec, sample.params), tensors, eps=GRAD_EPS, atol=GRAD2_ATOL,
                      rtol=GRAD2_RTOL)


def check_jvp(spec: OpSpec, sample: Sample, device: str) -> None:
    """Forward mode: the op's tangent J·u for a random u against the central-difference directional
    derivative (f(x + εu) - f(x - εu)) / 2ε, and ⟨v, J u⟩ from forward mode against ⟨Jᵀ v, u⟩ from
    reverse mode for a random v (two ways to the same number), in float64."""
    if not spec.differentiable or not any(sample.differentiable()):
        return
    from tinytensor.autograd import forward_ad as fwAD

    with _context(spec, sample, device, "jvp"):
        rng = np.random.default_rng(2)
        tensors = make_inputs(sample, device, "float64", requires_grad=True)
        call_op(spec, tensors, sample.params)  # an optional op this backend lacks: Unsupported
        f = _float_outputs(spec, sample.params)
        diff = [i for i, t in enumerate(tensors) if t.requires_grad]
        u = {i: rng.standard_normal(tensors[i].shape) for i in diff}
        with fwAD.dual_level():
            duals = [fwAD.make_dual(t, tt.tensor(u[i], device=device)) if i in u else t
                     for i, t in enumerate(tensors)]
            outs = as_list(f(*duals))
            got = []
            for o in outs:
                primal, tangent = fwAD.unpack_dual(o)
                assert tangent is None or (tangent.shape == o.shape and tangent.dtype is o.dtype
                                           and tangent.device == o.device), "tangent shape/dtype/device"
                got.append(np.zeros(o.shape) if tangent is None else tangent.numpy())
        # the directional derivative by central differences
        eps = GRAD_EPS
        moved = []
        for sign in (1.0, -1.0):
            xs = [tt.tensor(t.numpy() + sign * eps * u[i], device=device) if i in u else t
                  for i, t in enumerate(tensors)]
            moved.append([o.numpy() for o in as_list(f(*xs))])
        for k, (g, p, m) in enumerate(zip(got, *moved)):
            num = (p - m) / (2 * eps)
            np.testing.assert_allclose(g, num, atol=GRAD_ATOL * 10, rtol=GRAD_RTOL * 10,
                                       err_msg=f"jvp of output {k} against the directional derivative")
        # <v, J u> from forward mode against <Jᵀ v, u> from reverse mode
        outs = as_list(f(*tensors))
        vs = [rng.standard_normal(o.shape) for o in outs]
        keep = [k for k, o in enumerate(outs) if o.requires_grad]
        forward = sum(float((v * g).sum()) for v, g in zip(vs, got))
        reverse = 0.0
        if keep:
            grads = tt.autograd.grad([outs[k] for k in keep], [tensors[i] for i in diff],
                                     [tt.tensor(vs[k], device=device) for k in keep], allow_unused=True)
            reverse = sum(float((g.numpy() * u[i]).sum()) for i, g in zip(diff, grads) if g is not None)
        np.testing.assert_allclose(forward, reverse, rtol=1e-7, atol=1e-9, err_msg="<v, J u> two ways")


def check_vmap(spec: OpSpec, sample: Sample, device: str, seed: int = 0) -> None:
    """func.vmap of the op over a batch of three inputs against a Python loop over them, in float64:
    float inputs batched along a drawn dim (scaled copies, which keep the sample's domain), integer and
    bool inputs batched or shared (in_dims None). Random ops run with randomness="same"."""
    from tinytensor import func

    with _context(spec, sample, device, "vmap"):
        rng = np.random.default_rng(seed)
        base = make_inputs(sample, device, "float64")
        call_op(spec, base, sample.params)
        scales = (1.0, 0.5, 0.75)
        stacked, dims = [], []
        share_ints = bool(rng.integers(0, 2)) and any(a.dtype.kind == "f" for a in sample.inputs)
        for a, t in zip(sample.inputs, base):
            if a.dtype.kind != "f" and share_ints:
                stacked.append(t)
                dims.append(None)
                continue
            d = int(rng.integers(0, a.ndim + 1))
            copies = [a * s if a.dtype.kind == "f" else a for s in scales]
            stacked.append(tt.tensor(np.stack(copies, axis=d), device=device))
            dims.append(d)
        def op(*xs):
            return spec.fn(*xs, **sample.params)

        got = as_list(func.vmap(op, in_dims=tuple(dims), randomness="same")(*stacked))
        want = []
        for b in range(len(scales)):
            xs = [x if d is None else x[(slice(None),) * d + (b,)] for x, d in zip(stacked, dims)]
            want.append(as_list(op(*xs)))
        assert len(got) == len(want[0]), f"vmap gave {len(got)} outputs, the loop {len(want[0])}"
        for k, g in enumerate(got):
            w = np.stack([o[k].numpy() for o in want])
            assert g.shape == w.shape, f"output {k}: vmap shape {g.shape}, loop {w.shape}"
            assert g.dtype is want[0][k].dtype, f"output {k}: vmap dtype {g.dtype}, loop {want[0][k].dtype}"
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12, equal_nan=True,
                                       err_msg=f"output {k}: vmap against a loop")
    if not spec.differentiable or not any(sample.differentiable()):
        return
    with _context(spec, sample, device, "vmap of backward"):  # batched cotangents: jacrev's case
        f = _float_outputs(spec, sample.params)
        diff = [i for i, d in enumerate(sample.differentiable()) if d]

        def g(*ds):
            xs = list(base)
            for i, d in zip(diff, ds):
                xs[i] = d
            return f(*xs)

        out, vjp_fn = func.vjp(g, *[base[i] for i in diff])
        outs = as_list(out)
        cts = [tt.tensor(rng.standard_normal((len(scales),) + tuple(o.shape)), device=device) for o in outs]

        def pull(*c):
            return vjp_fn(c if isinstance(out, tuple) else c[0])

        got = func.vmap(pull)(*cts)
        for b in range(len(scales)):
            want = pull(*[c[b] for c in cts])
            for k, (gk, wk) in enumerate(zip(got, want)):
                np.testing.assert_allclose(gk[b].numpy(), wk.numpy(), rtol=1e-10, atol=1e-12,
                                           err_msg=f"vmap of vjp_fn, input {diff[k]}, cotangent {b}")


def check_sample(spec: OpSpec, sample: Sample, device: str, second_order: bool = True) -> None:
    """Every check on one sample: forward in each dtype, gradient, tangent, vmap, second order."""
    for dtype in spec.dtypes:
        check_forward(spec, sample, device, dtype)
    check_gradient(spec, sample, device)
    if second_order:
        check_second_order(spec, sample, device)
    check_jvp(spec, sample, device)
    check_vmap(spec, sample, device)
