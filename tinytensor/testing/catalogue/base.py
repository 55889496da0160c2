"""What a catalogue entry is (``OpSpec``, ``Sample``) and the helpers several op families share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..draw import Draw


@dataclass
class Sample:
    """One set of inputs: arrays (tensors-to-be) and keyword options shared by all callables."""

    inputs: tuple
    params: dict = field(default_factory=dict)
    diff: tuple | None = None  # which inputs need gradients; default: every float input

    def differentiable(self) -> tuple:
        """Which inputs the gradient checks differentiate: ``diff`` if given, else every float input."""
        if self.diff is not None:
            return tuple(self.diff)
        return tuple(a.dtype.kind == "f" for a in self.inputs)

    def describe(self) -> str:
        """The inputs' dtypes and shapes and the params, for failure messages."""
        ins = ", ".join(f"{a.dtype.name}{list(a.shape)}" for a in self.inputs)
        return f"inputs=({ins}) params={self.params}"


@dataclass(frozen=True)
class OpSpec:
    """What one op must do, on every backend.

    ``op`` is the public name the entry exercises: an entry of ``tinytensor.ops.__all__`` or a
    ``Tensor.`` attribute (``"Tensor.T"``, ``"Tensor.__getitem__"``); it defaults to ``name``. Several
    entries may exercise one op (``gelu`` and ``gelu_tanh`` both check ``tt.gelu``).
    """

    name: str
    fn: Callable  # (*tensors, **params) -> Tensor | tuple of Tensors
    ref: Callable  # (*numpy arrays, **params) -> ndarray | tuple of ndarrays
    sample: Callable[[Draw], Sample]
    torch_ref: Callable | None = None  # (torch, *torch tensors, **params)
    differentiable: bool = True  # False: forward only (argmax, one_hot), and the result has no graph
    second_order: bool = True  # the op claims a correct double backward
    dtypes: tuple = ("float32", "float64")
    optional: bool = False  # a backend may declare it unsupported by raising NotImplementedError
    rtol: float = 1e-5  # float32 forward tolerances (float64 is always checked to ~1e-10)
    atol: float = 1e-6
    parity_rtol: float = 1e-5  # float32 tolerances against PyTorch
    parity_atol: float = 1e-6
    op: str = ""  # the public op (see above); "" means the same as name

    def __post_init__(self):
        if not self.op:
            object.__setattr__(self, "op", self.name)

    def __repr__(self) -> str:
        return f"OpSpec({self.name!r})"


# float32 tolerances for long sums and products (forward and against PyTorch)
LOOSE = dict(rtol=1e-4, atol=1e-5, parity_rtol=1e-4, parity_atol=1e-5)


def same(f):
    """A torch_ref for expressions that read the same on torch tensors (operators, indexing)."""
    return lambda torch, *xs, **kw: f(*xs, **kw)


def functional(torch):
    """torch.nn.functional, for torch_refs."""
    return torch.nn.functional


def np_axis(dim, ndim):
    """NumPy axis for a tinytensor/PyTorch dim: 0-d tensors accept dim 0 / -1 as 'all'."""
    return None if ndim == 0 else dim


def np_logsumexp(x, axis, keepdims):
    """log Σ e^x along axis, shifted by the max (also used by log_softmax's reference)."""
    x = np.asarray(x)
    if x.ndim == 0:
        return x.copy()
    m = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def unary_sample(domain="real", min_dims=0):
    """One array of a drawn shape from ``domain``."""

    def sample(d: Draw) -> Sample:
        return Sample((d.array(d.shape(min_dims), domain),))

    return sample
