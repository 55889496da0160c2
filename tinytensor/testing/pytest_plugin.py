"""A pytest plugin that runs tests taking a ``device`` argument on every available device.

In a ``conftest.py``::

    pytest_plugins = ["tinytensor.testing.pytest_plugin"]

then any test with a ``device`` parameter runs once per device ("cpu", "strict", "cuda" where they
work). ``--tinytensor-device NAME`` (repeatable) or TINYTENSOR_TEST_DEVICES=a,b picks devices, e.g.
a third-party backend registered in that conftest. To run the op conformance suite, add a test
module containing ``from tinytensor.testing.suite import *``.
"""
from __future__ import annotations

from .devices import available_devices


def pytest_addoption(parser):
    group = parser.getgroup("tinytensor")
    group.addoption("--tinytensor-device", action="append", default=None, dest="tinytensor_device",
                    help="device for tests taking a `device` argument (repeatable; default: all available)")


def _devices(config) -> list[str]:
    return config.getoption("tinytensor_device", default=None) or available_devices()


def pytest_report_header(config):
    return f"tinytensor devices: {', '.join(_devices(config))}"


def _explicitly_parametrized(metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "device"):
        devices = _devices(metafunc.config)
        metafunc.parametrize("device", devices, ids=devices)
