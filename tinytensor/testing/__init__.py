"""Conformance harness: the op catalogue, the checks, devices and a pytest plugin.

A backend (the built-in ones, or a third party's) passes when every op of ``OPS`` matches its NumPy
reference forward and its gradients (first and second order) match central differences:

    from tinytensor.testing import run_conformance
    print(run_conformance("strict"))

or under pytest, with ``pytest_plugins = ["tinytensor.testing.pytest_plugin"]`` in conftest.py and
``from tinytensor.testing.suite import *`` in a test module.
"""
from .catalogue import OPS, OpSpec, Sample, ops_by_name
from .checks import (
    Unsupported,
    check_backward_meta,
    check_forward,
    check_gradient,
    check_sample,
    check_second_order,
)
from .conformance import ConformanceReport, run_conformance
from .devices import available_devices
from .draw import DOMAINS, Draw
from .strict_backend import StrictBackend, register_strict_backend

__all__ = [
    "OPS", "OpSpec", "Sample", "ops_by_name", "Unsupported", "check_backward_meta", "check_forward",
    "check_gradient", "check_sample", "check_second_order", "ConformanceReport", "run_conformance",
    "available_devices", "DOMAINS", "Draw", "StrictBackend", "register_strict_backend",
]
