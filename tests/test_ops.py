"""Every op of the catalogue on every available device (the conformance suite), and checks that the
harness itself catches wrong ops."""
from dataclasses import replace

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.autograd import Function, gradcheck, gradgradcheck
from tinytensor.autograd.functional import numerical_vjp
from tinytensor.testing import (
    OPS,
    Draw,
    OpSpec,
    Sample,
    Unsupported,
    available_devices,
    check_forward,
    check_gradient,
    check_second_order,
    ops_by_name,
    run_conformance,
)
from tinytensor.testing.suite import *  # noqa: F401,F403  (test_op_forward, test_op_gradient, ...)

REQUIRED = """
add sub mul div pow matmul neg exp log sqrt rsqrt sin cos tanh sigmoid relu gelu gelu_tanh silu erf abs
clamp maximum minimum where masked_fill sum mean var std max min amax amin logsumexp prod argmax argmin
reshape view flatten transpose permute swapaxes T mT unsqueeze squeeze expand broadcast_to getitem cat
stack split chunk tril triu pad softmax log_softmax dropout one_hot embedding einsum
""".split()


def test_catalogue_covers_every_op():
    names = [s.name for s in OPS]
    assert len(names) == len(set(names)), "duplicate OpSpec names"
    missing = sorted(set(REQUIRED) - set(names))
    assert not missing, f"ops without a catalogue entry: {missing}"


def test_catalogue_samples_cover_the_edge_shapes():
    """Across draws, the samples include 0-d inputs, size-1 dims and broadcasting pairs."""
    seen_0d = seen_1 = seen_bcast = False
    for k in range(60):
        for name in ("add", "mul", "sum", "exp"):
            sample = ops_by_name()[name].sample(Draw(seed=k))
            shapes = [a.shape for a in sample.inputs]
            seen_0d |= any(len(s) == 0 for s in shapes)
            seen_1 |= any(1 in s for s in shapes)
            seen_bcast |= len(shapes) == 2 and shapes[0] != shapes[1]
    assert seen_0d and seen_1 and seen_bcast


def test_getitem_samples_cover_every_index_kind():
    kinds = set()
    spec = ops_by_name()["getitem"]
    for k in range(200):
        s = spec.sample(Draw(seed=k))
        key = s.params["key"]
        kinds |= {type(it).__name__ for it in key}
        kinds |= {"int_array" for a in s.inputs[1:] if a.dtype.kind == "i"}
        kinds |= {"repeated" for a in s.inputs[1:] if a.dtype.kind == "i" and len(np.unique(a)) < a.size}
        kinds |= {"bool_mask" for a in s.inputs[1:] if a.dtype.kind == "b"}
    assert {"int", "slice", "NoneType", "ellipsis", "int_array", "repeated", "bool_mask"} <= kinds


def test_available_devices_lists_cpu_and_strict(monkeypatch):
    monkeypatch.delenv("TINYTENSOR_TEST_DEVICES", raising=False)  # gpu_check.sh sets it
    devices = available_devices()
    assert devices[0] == "cpu"
    assert "strict" in devices  # array_api_strict is a test dependency


def test_available_devices_can_be_forced(monkeypatch):
    monkeypatch.setenv("TINYTENSOR_TEST_DEVICES", " cuda, cpu ,")
    assert available_devices() == ["cuda", "cpu"]


# ---- the harness catches wrong ops ---------------------------------------------------------

class WrongGradExp(Function):
    def forward(self, x):
        y = self.xp.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * y * 1.01  # 1% off


class DetachedGradSin(Function):
    """Right first derivative, but computed on constants: no second derivative."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.sin(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * tt.tensor(np.cos(x.numpy()), device=x.device)


class UpstreamDetachedSin(Function):
    """Right first derivative, but the upstream gradient enters it as a constant: the gradient
    does not depend on the upstream gradient in the graph (wrong under double backward)."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.sin(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return x.cos() * gy.detach()


class Float64Grad(Function):
    """Right values, but the gradient comes back in float64 whatever the input dtype."""

    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy.double() * 2


def _spec(name, fn, ref, domain="real"):
    return OpSpec(name, fn, ref, lambda d: Sample((d.array((2, 3), domain),)))


def test_checker_catches_a_wrong_gradient(device):
    spec = _spec("exp_bad", WrongGradExp.apply, np.exp)
    sample = spec.sample(Draw(seed=0))
    check_forward(spec, sample, device, "float64")  # the forward is right
    with pytest.raises(AssertionError, match="gradcheck failed"):
        check_gradient(spec, sample, device)


def test_checker_catches_a_missing_second_derivative(device):
    spec = _spec("sin_detached", DetachedGradSin.apply, np.sin)
    sample = spec.sample(Draw(seed=0))
    check_gradient(spec, sample, device)  # first order is right
    with pytest.raises(AssertionError, match="second-order"):
        check_second_order(spec, sample, device)


def test_gradgradcheck_checks_every_input_and_the_upstream_gradient(device):
    x = tt.tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), dtype=tt.float64, device=device,
                  requires_grad=True)
    assert gradcheck(DetachedGradSin.apply, [x]) and gradcheck(UpstreamDetachedSin.apply, [x])
    assert gradgradcheck(lambda x: x.sin(), [x])
    with pytest.raises(AssertionError, match=r"respect to input 0 \(shape \(2, 3\)\) is missing"):
        gradgradcheck(DetachedGradSin.apply, [x])
    with pytest.raises(AssertionError, match="respect to the upstream gradient of output 0"):
        gradgradcheck(UpstreamDetachedSin.apply, [x])
    assert gradgradcheck(UpstreamDetachedSin.apply, [x], raise_exception=False) is False
    spec = _spec("sin_upstream_detached", UpstreamDetachedSin.apply, np.sin)
    with pytest.raises(AssertionError, match="second-order"):
        check_second_order(spec, spec.sample(Draw(seed=0)), device)


def test_numerical_vjp_is_the_central_difference(device):
    x = tt.tensor([[0.5, -1.0, 2.0]], dtype=tt.float64, device=device)
    u = np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_allclose(numerical_vjp(lambda x: x**3, [x], 0, [u]), 3 * x.numpy() ** 2 * u,
                               rtol=1e-8)
    np.testing.assert_allclose(numerical_vjp(lambda x: (x.sum(), x * 2), [x], 0), 3.0, rtol=1e-8)


def test_checker_catches_a_wrong_forward_and_gradient_dtype(device):
    spec = _spec("exp_off", lambda x: x.exp() + 1e-4, np.exp)
    with pytest.raises(AssertionError):
        check_forward(spec, spec.sample(Draw(seed=0)), device, "float64")
    # a backward that returns another dtype is converted by the engine's gradient contract, so the
    # gradient reaching the leaf has the leaf's dtype and the checker has nothing left to catch
    spec = _spec("double_grad", Float64Grad.apply, lambda x: x * 2)
    check_forward(spec, spec.sample(Draw(seed=0)), device, "float32")


def test_checker_catches_a_wrong_output_dtype(device):
    spec = _spec("upcast", lambda x: x.double() * 1.0, lambda x: x)
    with pytest.raises(AssertionError, match="dtype float64, expected float32"):
        check_forward(spec, spec.sample(Draw(seed=0)), device, "float32")


def test_not_implemented_in_a_required_op_is_a_failure(device):
    def fn(x):
        raise NotImplementedError("no kernel")

    spec = _spec("required", fn, np.exp)
    with pytest.raises(NotImplementedError):
        check_forward(spec, spec.sample(Draw(seed=0)), device, "float64")
    with pytest.raises(Unsupported):
        check_forward(replace(spec, optional=True), spec.sample(Draw(seed=0)), device, "float64")


def test_run_conformance_reports_per_op(device):
    ops = [ops_by_name()[n] for n in ("add", "softmax", "einsum")] + [
        _spec("exp_bad", WrongGradExp.apply, np.exp)]
    report = run_conformance(device, ops=ops, examples=2)
    status = {r.name: r.status for r in report.results}
    assert status["add"] == status["softmax"] == "ok"
    assert status["exp_bad"] == "failed"
    assert status["einsum"] == ("unsupported" if device == "strict" else "ok")
    assert not report.ok and "exp_bad" in str(report)
    with pytest.raises(AssertionError, match="exp_bad"):
        report.raise_for_failures()


def test_third_party_backend_runs_the_suite_through_the_plugin(tmp_path):
    """A package registering its own backend runs the same conformance suite with the plugin."""
    import os
    import pathlib
    import subprocess
    import sys
    import textwrap

    root = str(pathlib.Path(tt.__file__).resolve().parents[1])
    env = {**os.environ, "TINYTENSOR_CONFORMANCE_EXAMPLES": "0.2",
           "PYTHONPATH": os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p])}

    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        from tinytensor import backends
        from tinytensor.backends.numpy_backend import NumpyBackend

        class MyBackend(NumpyBackend):
            name = "mine"

            def __init__(self):
                super().__init__()
                self.device = "mine"

        backends.register("mine", MyBackend, device_type="mine")
        pytest_plugins = ["tinytensor.testing.pytest_plugin"]
    """))
    (tmp_path / "test_conformance.py").write_text("from tinytensor.testing.suite import *  # noqa\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tinytensor-device", "mine",
         "-k", "exp or matmul or getitem_torch", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout, out.stdout[-2000:]
    ids = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--tinytensor-device", "mine", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env).stdout
    assert "test_op_forward[mine-exp]" in ids and "[cpu-" not in ids and "[strict-" not in ids
