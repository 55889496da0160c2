"""Every test taking a ``device`` argument runs on every available device (cpu, strict, cuda).

``--long`` runs the differential fuzzer (tests/test_fuzz_torch.py) with 20,000 examples per device
instead of CI's 1,000 (the same as TINYTENSOR_FUZZ_EXAMPLES=20000).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinytensor.backends.deferred import checks_at_once
from tinytensor.testing import register_strict_backend

register_strict_backend()

pytest_plugins = ["tinytensor.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _value_checks_at_the_op(request):
    """The error tests expect a bad index to raise at its op on every device: there value checks run
    at once (a sync each), except in test_host_sync.py, which tests their deferral to the next sync,
    and test_docs.py, whose pages show what a user gets."""
    if request.module.__name__.rpartition(".")[2] in ("test_host_sync", "test_docs"):
        yield
        return
    with checks_at_once():
        yield


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="differential fuzzer: 20,000 examples per device (tests/test_fuzz_torch.py)")


def pytest_configure(config):
    if config.getoption("--long"):
        os.environ.setdefault("TINYTENSOR_FUZZ_EXAMPLES", "20000")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The docs site, built once per test run with ``mkdocs build --strict`` (or the one that
    ``$TINYTENSOR_SITE`` names, built a moment ago); tests/test_docs.py, test_docstrings.py and
    test_docs_browser.py read it."""
    if os.environ.get("TINYTENSOR_SITE"):
        return Path(os.environ["TINYTENSOR_SITE"])
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out
