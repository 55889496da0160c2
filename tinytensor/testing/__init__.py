"""Conformance harness: the op catalogue, the checks, devices and a pytest plugin.

A backend (the built-in ones, or a third party's) passes when every op of ``OPS`` matches its NumPy
reference forward and its gradients (first and second order) match central differences (the ops in
``NON_DIFFERENTIABLE`` are checked forward only, and their results must carry no graph):

    from tinytensor.testing import run_conformance
    print(run_conformance("strict"))

or under pytest, with ``pytest_plugins = ["tinytensor.testing.pytest_plugin"]`` in conftest.py and
``from tinytensor.testing.suite import *`` in a test module. ``count_host_syncs()`` counts the
device→host reads (each a sync on a GPU) made on the strict device inside a block, with the op and
the stack of each.
"""
from .catalogue import NON_DIFFERENTIABLE, OPS, OpSpec, Sample, ops_by_name
from .checks import (
    Unsupported,
    check_backward_meta,
    check_forward,
    check_gradient,
    check_jvp,
    check_sample,
    check_second_order,
    check_vmap,
)
from .conformance import ConformanceReport, run_conformance
from .devices import available_devices
from .draw import DOMAINS, Draw
from .strict_backend import HostSyncs, StrictBackend, Transfer, count_host_syncs, register_strict_backend

__all__ = [
    "OPS", "NON_DIFFERENTIABLE", "OpSpec", "Sample", "ops_by_name", "Unsupported", "check_backward_meta",
    "check_forward",
    "check_gradient", "check_jvp", "check_vmap", "check_sample", "check_second_order", "ConformanceReport",
    "run_conformance",
    "available_devices", "DOMAINS", "Draw", "StrictBackend", "register_strict_backend", "count_host_syncs",
    "HostSyncs", "Transfer",
]
