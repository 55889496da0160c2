"""Activation checkpointing: trade compute for memory.

    y = checkpoint(block, x)     # the same values and gradients as block(x)

The block runs once in forward and records its graph as usual; then every node it recorded lets go
of what it saved for backward (the block's activations). The first time backward needs one of
them, the block runs again on the same inputs, with the random state it had the first time (so
dropout draws the same mask), and each node takes back its saved tensors from its twin in the new
graph. Memory between forward and backward: the block's inputs and outputs, not its internals.
"""
from __future__ import annotations

from .. import random as tt_random
from ..autograd.function import Identity, recording
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..autograd.tensor_core import TensorCore

__all__ = ["checkpoint"]


class _Dropped:
    """What a checkpointed node holds instead of its saved tensors: how to get them back."""

    __slots__ = ("block", "index")

    def __init__(self, block, index: int):
        self.block, self.index = block, index

    def restore(self, node):
        return self.block.restore(node, self.index)

    def __iter__(self):  # graph tools (viz, memory_report) see nothing saved: nothing is
        return iter(())


class _Block:
    """One checkpointed call: the function, its inputs, its random state and the nodes it recorded."""

    def __init__(self, function, args, kwargs, rng_state):
        self.function, self.args, self.kwargs, self.rng_state = function, args, kwargs, rng_state
        self.nodes: list = []

    def run(self):
        """The function on fresh input nodes, recording the nodes it creates in self.nodes' order."""
        log: list = []
        token = recording.set(log)
        try:
            with enable_grad():
                args = [Identity.apply(a) if isinstance(a, TensorCore) else a for a in self.args]
                out = self.function(*args, **self.kwargs)
        finally:
            recording.reset(token)
        return out, log

    def drop(self, nodes):
        self.nodes = nodes
        for k, node in enumerate(nodes):
            node._saved = _Dropped(self, k)

    def restore(self, node, index: int):
        """Run the block again and give every node still waiting its saved tensors back."""
        current = tt_random.get_rng_state()
        if self.rng_state is not None:
            tt_random.set_rng_state(self.rng_state)
        try:
            out, twins = self.run()
        finally:
            tt_random.set_rng_state(current)
        if len(twins) != len(self.nodes) or any(type(a) is not type(b) for a, b in zip(self.nodes, twins)):
            raise RuntimeError(
                f"checkpoint: running {getattr(self.function, '__name__', 'the function')} again recorded a "
                f"different graph ({len(twins)} ops instead of {len(self.nodes)}); a checkpointed function "
                f"must compute the same ops from the same inputs (no Python state that changes between calls)"
            )
        for old, new in zip(self.nodes, twins):
            if type(old._saved) is _Dropped:  # (not yet released by this backward)
                old._saved = new._saved
        self.nodes = []
        return node._saved


def checkpoint(function, *args, use_reentrant: bool | None = None, preserve_rng_state: bool = True,
               **kwargs):
    """function(*args, **kwargs), keeping none of its intermediate tensors for backward: backward runs
    it again to get them (with the same random state when preserve_rng_state). ``use_reentrant`` is
    accepted for PyTorch's signature; both settings use this one (non-reentrant) mechanism."""
    if not callable(function):
        raise TypeError(f"checkpoint: expected a function to run, got {type(function).__name__}")
    if not is_grad_enabled():
        return function(*args, **kwargs)  # nothing is recorded, so nothing to drop
    block = _Block(function, args, kwargs, tt_random.get_rng_state() if preserve_rng_state else None)
    out, nodes = block.run()
    block.drop(nodes)
    return out
