"""Which devices the conformance suite can run on here."""
from __future__ import annotations

import os

from tinytensor import backends

from .strict_backend import register_strict_backend


def available_devices() -> list[str]:
    """"cpu"; "strict" when array_api_strict is importable; "cuda" when CuPy and a GPU work.

    The environment variable TINYTENSOR_TEST_DEVICES (comma-separated) overrides the list.
    """
    register_strict_backend()
    forced = os.environ.get("TINYTENSOR_TEST_DEVICES")
    if forced:
        return [d.strip() for d in forced.split(",") if d.strip()]
    devices = ["cpu"]
    if "strict" in backends.available():
        devices.append("strict")
    try:
        backends.for_device("cuda:0")
    except Exception:  # CuPy missing, no driver or no GPU: the cuda backend says which on use
        pass
    else:
        devices.append("cuda")
    return devices
