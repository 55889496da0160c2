"""One seeded host generator for every backend: the same seed gives the same numbers everywhere."""
from __future__ import annotations

from contextvars import ContextVar

import numpy as np

_state = {"gen": np.random.default_rng(0)}

# func.vmap installs a check here, called before every draw: under randomness="error" it raises, under
# "different" it makes vmap run the function once per sample (each sample its own numbers)
draw_hook: ContextVar = ContextVar("tinytensor_draw_hook", default=None)


def manual_seed(seed: int) -> None:
    """Seed the generator behind rand, randn, randint, dropout and nn.init."""
    _state["gen"] = np.random.default_rng(int(seed))


class Generator:
    """PyTorch's ``torch.Generator``: a random stream of its own, for ``generator=`` arguments
    (``DataLoader(..., generator=tt.Generator().manual_seed(0))``). Its numbers are NumPy's PCG64,
    not PyTorch's: the same seed gives the same stream on every tinytensor device, but not torch's."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._gen = np.random.default_rng(0)

    def manual_seed(self, seed: int) -> "Generator":
        """Restart this stream from ``seed``; returns the generator (``tt.Generator().manual_seed(0)``)."""
        self._gen = np.random.default_rng(int(seed))
        return self

    def seed(self) -> int:
        """Seed from fresh entropy; returns the seed used."""
        seed = int(np.random.SeedSequence().entropy % 2**63)
        self._gen = np.random.default_rng(seed)
        return seed

    def get_state(self) -> dict:
        """The stream's state, a plain dict (restore it with `set_state`)."""
        return self._gen.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        """Restore a state from `get_state`; returns the generator."""
        self._gen.bit_generator.state = state
        return self


def host_generator(generator: Generator | None = None) -> np.random.Generator:
    """The NumPy generator behind ``generator`` (a tt.Generator), or the global seeded one."""
    hook = draw_hook.get()
    if hook is not None:
        hook()
    if generator is None:
        return _state["gen"]
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a tinytensor.Generator, got {type(generator).__name__}")
    return generator._gen


def get_rng_state() -> dict:
    """The generator's state (a plain dict; save it in checkpoints)."""
    return _state["gen"].bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the global generator's state from `get_rng_state`; ``torch.set_rng_state``."""
    gen = np.random.default_rng()
    gen.bit_generator.state = state
    _state["gen"] = gen
