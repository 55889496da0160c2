"""torch for the parity tests: skipped where it is missing, a failure when CI requires it."""
from __future__ import annotations

import os

import pytest


def require_torch():
    """Import torch, or skip the calling test module (fail instead under TINYTENSOR_REQUIRE_PARITY=1)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("TINYTENSOR_REQUIRE_PARITY") == "1":
            raise
        pytest.skip("torch is not installed (pip install -e '.[parity]')", allow_module_level=True)
    torch.set_num_threads(1)
    return torch
