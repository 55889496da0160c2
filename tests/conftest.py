"""Every test taking a ``device`` argument runs on every available device (cpu, strict, cuda)."""
from tinytensor.testing import register_strict_backend

register_strict_backend()

pytest_plugins = ["tinytensor.testing.pytest_plugin"]
