"""The op conformance suite as pytest tests: import it into a test module.

    # test_conformance.py (with the plugin enabled, see tinytensor.testing.pytest_plugin)
    from tinytensor.testing.suite import *  # noqa: F401,F403

Every op of the catalogue on every device: forward in float32 and float64 against NumPy, float64
numerical gradients, second derivatives. Shapes and options are drawn by hypothesis; set
TINYTENSOR_CONFORMANCE_EXAMPLES to scale the number of examples (default 1.0).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .catalogue import OPS
from .checks import Unsupported, check_forward, check_gradient, check_jvp, check_second_order, check_vmap
from .draw import Draw

__all__ = ["test_op_forward", "test_op_gradient", "test_op_jvp", "test_op_vmap", "test_op_second_order"]

_SCALE = float(os.environ.get("TINYTENSOR_CONFORMANCE_EXAMPLES", "1.0"))


def _settings(n: int):
    return settings(max_examples=max(1, round(n * _SCALE)), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def _run(check, spec, device, data, *args):
    try:
        check(spec, spec.sample(Draw(data)), device, *args)
    except Unsupported as e:
        pytest.skip(f"declared unsupported: {e}")


def _specs(keep=lambda s: True):
    specs = [s for s in OPS if keep(s)]
    return pytest.mark.parametrize("spec", specs, ids=[s.name for s in specs])


@_specs()
@_settings(25)
@given(data=st.data())
def test_op_forward(spec, device, data):
    """Forward (float32 and float64) against the NumPy reference; gradient shapes and dtypes."""
    for dtype in spec.dtypes:
        _run(check_forward, spec, device, data, dtype)


@_specs(lambda s: s.differentiable)
@_settings(12)
@given(data=st.data())
def test_op_gradient(spec, device, data):
    """float64 gradients against central differences with a random upstream gradient."""
    _run(check_gradient, spec, device, data)


@_specs(lambda s: s.differentiable)
@_settings(12)
@given(data=st.data())
def test_op_jvp(spec, device, data):
    """Forward mode: the tangent against the directional derivative, and <v, J u> against reverse mode."""
    _run(check_jvp, spec, device, data)


@_specs()
@_settings(8)
@given(data=st.data())
def test_op_vmap(spec, device, data):
    """func.vmap of the op against a Python loop over the batch."""
    _run(check_vmap, spec, device, data)


@_specs(lambda s: s.differentiable and s.second_order)
@_settings(8)
@given(data=st.data())
def test_op_second_order(spec, device, data):
    """Hessian-vector products by double backward against central differences."""
    _run(check_second_order, spec, device, data)
