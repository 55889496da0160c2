"""One seeded host generator for every backend: the same seed gives the same numbers everywhere."""
from __future__ import annotations

import numpy as np

_state = {"gen": np.random.default_rng(0)}


def manual_seed(seed: int) -> None:
    """Seed the generator behind rand, randn, randint, dropout and nn.init."""
    _state["gen"] = np.random.default_rng(int(seed))


def host_generator() -> np.random.Generator:
    return _state["gen"]


def get_rng_state() -> dict:
    """The generator's state (a plain dict; save it in checkpoints)."""
    return _state["gen"].bit_generator.state


def set_rng_state(state: dict) -> None:
    gen = np.random.default_rng()
    gen.bit_generator.state = state
    _state["gen"] = gen
