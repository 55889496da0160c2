"""Every op of the catalogue on every available device (the conformance suite)."""
from tinytensor.testing.suite import *  # noqa: F401,F403
