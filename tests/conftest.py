"""Every test taking a ``device`` argument runs on every available device (cpu, strict, cuda).

``--long`` runs the differential fuzzer (tests/test_fuzz_torch.py) with 20,000 examples per device
instead of CI's 1,000 (the same as TINYTENSOR_FUZZ_EXAMPLES=20000).
"""
import os

from tinytensor.testing import register_strict_backend

register_strict_backend()

pytest_plugins = ["tinytensor.testing.pytest_plugin"]


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="differential fuzzer: 20,000 examples per device (tests/test_fuzz_torch.py)")


def pytest_configure(config):
    if config.getoption("--long"):
        os.environ.setdefault("TINYTENSOR_FUZZ_EXAMPLES", "20000")
