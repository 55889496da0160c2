"""A differential fuzzer against PyTorch: short chains of public ops on hypothesis-drawn inputs.

One example is a ``Program``: a few leaf tensors (0-d, size-0, size-1 and broadcasting shapes; float32,
float64, int64 and bool; sometimes ties, zeros, inf and NaN) and one to three ``Step``s, each a public op
applied to the previous step's result (plus leaves and options it draws: dims, also out of range, shapes,
scalars). Every step is a line of Python source for tinytensor and one for PyTorch, and the example is
run by evaluating those lines, so a failure prints a reproducer that is exactly what ran::

    from tinytensor.testing.fuzz import OPS, draw_program, check_program
    prog = draw_program(data, device="cpu", first="softmax")   # data: hypothesis st.data()
    check_program(prog)                                         # AssertionError: a discrepancy

``check_program`` compares, step by step: which side raises (tinytensor must raise where PyTorch raises,
and succeed where it succeeds, unless a backend declares the op unsupported with NotImplementedError off
the cpu device; a dim out of range is an IndexError on both sides), then the outputs (shape, dtype,
requires_grad, values with NaN positions), then the gradients of every float leaf for a random upstream
gradient that sometimes holds inf/NaN entries (``autograd.grad``), then ``.grad`` after ``backward()``
(dtype, shape, values, and that each leaf owns a writable array of its own).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import warnings
from typing import Callable

import numpy as np

import tinytensor as tt

from .draw import prime_factors

F64_RTOL = 1e-10  # float64: relative, and absolute relative to the largest finite reference value
F32_RTOL = 1e-4
F16_RTOL = 1e-2
FLOATS = ("float32", "float64")
DTYPES = ("float64", "float32", "int64", "bool")


# ---- source code: the values a step is called with, rendered for tinytensor or torch -------------

class Code(str):
    """Python source for a value already bound in the namespace (a leaf, an earlier result)."""


@dataclasses.dataclass(frozen=True)
class DT:
    """A dtype, rendered as ``tt.int64`` or ``torch.int64``."""

    name: str


def render(v, lib: str) -> str:
    if isinstance(v, Code):
        return str(v)
    if isinstance(v, DT):
        return f"{lib}.{v.name}"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, slice):
        return f"slice({render(v.start, lib)}, {render(v.stop, lib)}, {render(v.step, lib)})"
    if v is Ellipsis:
        return "..."
    if isinstance(v, tuple):
        return "(" + ", ".join(render(e, lib) for e in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(render(e, lib) for e in v) + "]"
    return repr(v)


@dataclasses.dataclass
class Call:
    """What an op's ``draw`` returns: positional and keyword arguments, and optionally templates that
    replace the op's for this call (e.g. ``2.0 - x`` for a scalar first operand)."""

    args: tuple
    kwargs: dict = dataclasses.field(default_factory=dict)
    tt_src: str | None = None
    torch_src: str | None = None
    next_index: int = 0  # which output the next step continues from (split pieces, max's values)


def _fill(template: str, lib: str, call: Call) -> str:
    a = [render(v, lib) for v in call.args]
    kw = [f"{k}={render(v, lib)}" for k, v in call.kwargs.items()]
    return template.format(a=a, all=", ".join(a + kw), rest=", ".join(a[1:] + kw), kw=", ".join(kw))


# ---- the op table ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FuzzOp:
    """One public op: how to draw a call given the chain value ``x``, and its source on each side.

    Templates are ``str.format`` strings over ``a`` (rendered positional arguments), ``all`` (every
    argument), ``rest`` (all but the first) and ``kw``; the defaults call ``tt.<name>`` and
    ``torch.<name>`` with every argument."""

    name: str
    draw: Callable  # (Ctx, Value) -> Call
    tt_src: str = ""
    torch_src: str = ""
    inputs: tuple = FLOATS  # dtypes of the first leaf when this op starts a chain (mostly)
    terminal: bool = False  # its result is not a tensor: nothing can follow it
    # (exception type, text in its message) for a refusal that is a declared project decision
    may_refuse: tuple = ()

    def source(self, lib: str, call: Call) -> str:
        own = call.tt_src if lib == "tt" else call.torch_src
        default = f"{lib}.{self.name}({{all}})"
        return _fill(own or (self.tt_src if lib == "tt" else self.torch_src) or default, lib, call)


@dataclasses.dataclass
class Value:
    """The chain value a step is applied to: its source and what torch says it is."""

    code: Code
    shape: tuple
    dtype: str

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass
class Leaf:
    name: str
    array: np.ndarray  # its dtype is the leaf's dtype
    requires_grad: bool


@dataclasses.dataclass
class Step:
    op: FuzzOp
    call: Call
    out: str  # the name its result is bound to

    def source(self, lib: str) -> str:
        return f"{self.out} = {self.op.source(lib, self.call)}"


@dataclasses.dataclass
class Program:
    device: str
    leaves: list
    steps: list
    upstream: dict = dataclasses.field(default_factory=dict)  # output index -> upstream gradient array
    torch_env: dict | None = None  # filled by draw_program: torch's results, step by step
    torch_error: BaseException | None = None  # what the last step raised in torch, if anything

    def reproducer(self, lib: str) -> str:
        lines = ["import tinytensor as tt" if lib == "tt" else "import torch"]
        for leaf in self.leaves:
            lines.append(f"{leaf.name} = {_leaf_source(leaf, lib, self.device)}")
        lines += [s.source(lib) for s in self.steps]
        return "\n".join(lines)

    def describe(self) -> str:
        ups = "".join(f"\nupstream gradient of output {i}: {_array_source(g)}"
                      for i, g in self.upstream.items())
        return (f"device {self.device!r} (both sides: import numpy as np; from math import inf, nan; torch "
                f"also: from tinytensor.testing.fuzz import torch_topk)\n"
                f"--- tinytensor\n{self.reproducer('tt')}\n--- torch\n"
                f"{self.reproducer('torch')}{ups}")


def _array_source(a: np.ndarray) -> str:
    body = render(a.tolist(), "np") if a.ndim else render(a.item(), "np")
    src = f"np.array({body}, dtype='{a.dtype.name}')"
    return src if a.size or a.ndim <= 1 else f"{src}.reshape({a.shape})"


def _leaf_source(leaf: Leaf, lib: str, device: str) -> str:
    args = [_array_source(leaf.array)]
    if lib == "tt" and device != "cpu":
        args.append(f"device={device!r}")
    if leaf.requires_grad:
        args.append("requires_grad=True")
    return f"{lib}.tensor({', '.join(args)})"


# ---- drawing --------------------------------------------------------------------------------------

class Ctx:
    """Draws for one program: choices through hypothesis (so they shrink), numbers from a NumPy
    generator seeded by one drawn integer; ``leaf`` adds an input tensor to the program."""

    def __init__(self, data, prog: Program):
        import hypothesis.strategies as st

        self.st, self.data, self.prog = st, data, prog
        self.rng = np.random.default_rng(self.int(0, 2**32 - 1))

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, options):
        return self.data.draw(self.st.sampled_from(list(options)))

    def rare(self, percent: int) -> bool:
        """True with about ``percent``% chance; shrinks to False."""
        return self.int(0, 99) >= 100 - percent

    def side(self) -> int:
        """A dimension size: mostly 1-3, sometimes 0."""
        return 0 if self.rare(12) else self.int(1, 3)

    def shape(self, min_dims: int = 0, max_dims: int = 3) -> tuple:
        return tuple(self.side() for _ in range(self.int(min_dims, max_dims)))

    def dtype(self, preferred=FLOATS) -> str:
        return self.choice(DTYPES) if self.rare(25) else self.choice(preferred)

    def broadcast_partner(self, shape: tuple) -> tuple:
        """A shape broadcasting with ``shape`` (leading dims dropped or added, dims set to 1);
        rarely one that does not."""
        lead = self.int(0, len(shape))
        out = [1 if self.rare(30) else n for n in shape[lead:]]
        if self.rare(15):
            out = [self.int(1, 2)] * self.int(0, 1) + out
        if out and self.rare(5):
            i = self.int(0, len(out) - 1)
            out[i] = out[i] + 2  # not broadcastable unless that dim was 1 on the other side
        return tuple(out)

    def dim(self, ndim: int, extra: int = 0) -> int:
        """A dim of a tensor with ``ndim`` dims (``extra`` more: unsqueeze); rarely out of range."""
        n = ndim + extra
        if self.rare(10) or n == 0 and self.rare(50):
            return self.choice((n, -n - 1, n + 1))
        return self.int(-max(n, 1), max(n, 1) - 1)

    def dims(self, ndim: int, allow_tuple: bool = True, allow_none: bool = True):
        kind = self.int(0, 2 if allow_tuple else 1)
        if kind == 0 and allow_none:
            return None
        if kind == 2:  # () is rare: PyTorch reads dim=() as every dim, NumPy as none
            return tuple(self.dim(ndim) for _ in range(0 if self.rare(5) else self.int(1, max(ndim, 1))))
        return self.dim(ndim)

    def scalar(self, kinds=("float", "int")):
        kind = self.choice(kinds)
        if kind == "bool":
            return self.choice((False, True))
        if kind == "int":
            return self.int(-3, 3)
        return self.choice((0.0, 0.5, -1.5, 2.0, 2.7, -0.0)) if not self.rare(5) else self.choice(
            (math.inf, -math.inf, math.nan))

    def values(self, shape: tuple, dtype: str) -> np.ndarray:
        rng = self.rng
        if dtype == "bool":
            return rng.random(shape) < 0.5
        if dtype in ("int64", "int32"):
            return rng.integers(-3, 4, size=shape).astype(dtype)
        domain = self.choice(("normal", "normal", "lattice", "nonfinite" if self.rare(20) else "lattice"))
        if domain == "normal":
            v = rng.standard_normal(shape) * self.choice((1.0, 3.0))
        else:  # ties, zeros and kinks: relu/abs at 0, clamp at its bounds, max ties, 0 ** 0
            v = rng.choice([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], size=shape)
        if domain == "nonfinite":
            v = np.where(rng.random(shape) < 0.25, rng.choice([np.inf, -np.inf, np.nan], size=shape), v)
        return np.asarray(v, dtype=dtype)

    def leaf(self, shape: tuple, dtype: str | None = None, requires_grad: bool | None = None,
             array: np.ndarray | None = None) -> Code:
        dtype = self.dtype() if dtype is None else dtype
        a = np.asarray(self.values(tuple(shape), dtype) if array is None else array, dtype=dtype)
        if requires_grad is None:
            requires_grad = dtype in FLOATS + ("float16",) and not self.rare(15)
        name = f"x{len(self.prog.leaves)}"
        self.prog.leaves.append(Leaf(name, a, requires_grad))
        return Code(name)

    def int_leaf(self, shape: tuple, lo: int, hi: int) -> Code:
        """An int64 leaf with values in [lo, hi] (both included); rarely one value out of it."""
        a = self.rng.integers(lo, hi + 1, size=shape) if hi >= lo else np.zeros(shape, np.int64)
        if a.size and self.rare(8):
            a.flat[0] = self.choice((hi + 1, lo - 1))
        return self.leaf(shape, "int64", False, a)

    def upstream(self, shape: tuple, dtype: str) -> np.ndarray:
        """A random upstream gradient; sometimes with inf/NaN entries."""
        g = self.rng.standard_normal(shape)
        if self.rare(30):
            bad = self.rng.choice([np.inf, -np.inf, np.nan], size=shape)
            g = np.where(self.rng.random(shape) < 0.3, bad, g)
        return np.asarray(g, dtype=dtype)


def _other(ctx: Ctx, x: Value, scalars=("float", "int", "bool"), dtypes=None) -> Code | object:
    """A second operand for a binary op: a leaf of a broadcasting shape, or a scalar."""
    if scalars and ctx.rare(30):
        return ctx.scalar(scalars)
    return ctx.leaf(ctx.broadcast_partner(x.shape), ctx.dtype(dtypes or (x.dtype,) + FLOATS))


# ---- draws, one per op family ---------------------------------------------------------------------

def _binary(symbol: str | None, scalars=("float", "int", "bool")):
    def draw(ctx: Ctx, x: Value) -> Call:
        y = _other(ctx, x, scalars)
        if isinstance(y, Code) and ctx.rare(30):
            return Call((y, x.code))  # the leaf first
        if not isinstance(y, Code) and symbol and ctx.rare(40):  # a number first: 2.0 - x
            return Call((y, x.code), torch_src=f"({{a[0]}}) {symbol} {{a[1]}}")
        return Call((x.code, y))

    return draw


def _constant_other(scalars: bool):
    """A second operand that needs no gradient, for comparisons in place: with one that does, PyTorch
    records some (eq_: a zero gradient) and not others (logical_and_), and marks an integer result as
    requiring grad; tinytensor's comparison results never require grad. (PyTorch's logical_*_ take no
    numbers.)"""

    def draw(ctx: Ctx, x: Value) -> Call:
        if scalars and ctx.rare(30):
            return Call((x.code, ctx.scalar(("float", "int", "bool"))))
        return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), ctx.dtype((x.dtype,) + FLOATS), False)))

    return draw


def _pow(ctx: Ctx, x: Value) -> Call:
    if ctx.rare(40):  # exponents where PyTorch has conventions: x ** 0 at 0, x ** 0.5 at 0, x ** -1
        return Call((x.code, ctx.choice((0, 0.0, 1, 2, 3, 0.5, -1, -1.0, 2.5, True, False))))
    if ctx.rare(15):
        return Call((ctx.choice((2.0, 0.0, -1.0, 1)), x.code), torch_src="({a[0]}) ** {a[1]}")
    # no bool exponent tensor: PyTorch's own pow backward fails for one ("Subtraction ... bool tensor")
    base = x.dtype if x.dtype != "bool" else "int64"
    return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), ctx.choice((base,) + FLOATS))))


def _unary(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,))


def _gelu(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"approximate": ctx.choice(("none", "tanh", "none", "sigmoid"))})


def _softplus(ctx: Ctx, x: Value) -> Call:
    beta, threshold = ctx.choice(((1.0, 20.0), (2.0, 1.0), (0.5, 20.0), (1, 0)))
    return Call((x.code,), {"beta": beta, "threshold": threshold})


def _hardtanh(ctx: Ctx, x: Value) -> Call:
    lo, hi = ctx.choice(((-1.0, 1.0), (0.0, 6.0), (-0.5, 0.5), (-2, 3)))
    return Call((x.code,), {"min_val": lo, "max_val": hi})


def _activation_with(name: str, values: tuple):
    """An activation with one number parameter (leaky_relu's slope, elu's alpha) drawn from values."""
    return lambda ctx, x: Call((x.code,), {name: ctx.choice(values)})


def _threshold(ctx: Ctx, x: Value) -> Call:
    threshold, value = ctx.choice(((0.5, -2.0), (0, 0), (1.0, 3.5), (-1, 1)))
    return Call((x.code,), {"threshold": threshold, "value": value})


def _prelu(ctx: Ctx, x: Value) -> Call:
    """prelu(x, weight): one weight (0-d or 1 element) or one per channel (dim 1), x's dtype (PyTorch
    promotes neither), rarely a count that fits no channel dim."""
    channels = x.shape[1] if len(x.shape) > 1 else 1
    shape = ctx.choice(((), (1,), (channels,), (channels + 1,) if ctx.rare(10) else (channels,)))
    return Call((x.code, ctx.leaf(shape, x.dtype)))


def _glu(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"dim": ctx.dim(max(len(x.shape), 1))})


def _clamp(ctx: Ctx, x: Value) -> Call:
    lo = None if ctx.rare(30) else ctx.scalar(("float", "int"))
    hi = None if lo is not None and ctx.rare(40) else ctx.scalar(("float", "int"))
    if lo is not None and hi is not None and not ctx.rare(15):
        lo, hi = (hi, lo) if not (hi >= lo) else (lo, hi)  # mostly min <= max (NaN bounds stay as drawn)
    if lo is None and hi is None and not ctx.rare(20):
        hi = 1.0
    return Call((x.code,), {"min": lo, "max": hi})


def _where(ctx: Ctx, x: Value) -> Call:
    cond = ctx.leaf(ctx.broadcast_partner(x.shape), "bool", False)
    y = _other(ctx, x, ("float", "int"))
    a, b = (x.code, y) if not ctx.rare(40) else (y, x.code)
    if ctx.rare(10):
        a, b = ctx.scalar(("float", "int")), ctx.scalar(("float", "int"))
    return Call((cond, a, b))


def _masked_fill(ctx: Ctx, x: Value) -> Call:
    mask = ctx.leaf(ctx.broadcast_partner(x.shape), "bool", False)
    value = ctx.leaf((), ctx.dtype()) if ctx.rare(15) else ctx.scalar(("float", "int", "bool"))
    return Call((x.code, mask, value))


def _reduce(allow_tuple=True, keepdim=True, correction=False):
    def draw(ctx: Ctx, x: Value) -> Call:
        kw = {"dim": ctx.dims(x.ndim, allow_tuple)}
        if keepdim:
            kw["keepdim"] = ctx.choice((False, True))
        if correction:
            kw["correction"] = ctx.choice((0, 1, 1, 2))
            if kw["dim"] == ():  # PyTorch's var backward for dim=() uses n = 1, against its own forward
                kw["dim"] = None
        return Call((x.code,), kw)

    return draw


def _norm(ctx: Ctx, x: Value) -> Call:
    kw = {"p": ctx.choice((2, 2, 1, 3, 0.5, math.inf, "fro")), "dim": ctx.dims(x.ndim, True),
          "keepdim": ctx.choice((False, True))}
    if kw["dim"] == () or kw["p"] == "fro" and kw["dim"] is not None:  # (dim=(): every dim, as PyTorch's
        kw["dim"] = None  # vector_norm; torch.norm reads it otherwise; "fro" is p = 2 over every element)
    return Call((x.code,), kw)


def _torch_dim_none(template_all: str, template_none: str):
    """PyTorch spells 'every dim' by leaving dim out for some reductions (prod, max, amax ...)."""

    def pick(call: Call) -> Call:
        if call.kwargs.get("dim", 0) is None:
            kw = {k: v for k, v in call.kwargs.items() if k != "dim"}
            return dataclasses.replace(call, kwargs=kw, tt_src=None, torch_src=template_none)
        return dataclasses.replace(call, torch_src=template_all)

    return pick


def _with(draw, fix):
    return lambda ctx, x: fix(draw(ctx, x))


def _prod(ctx: Ctx, x: Value) -> Call:
    dim = ctx.dims(x.ndim, allow_tuple=False)
    if dim is None:  # torch.prod(x) has no keepdim
        return Call((x.code,), {"dim": None}, tt_src="tt.prod({a[0]})", torch_src="torch.prod({a[0]})")
    return Call((x.code,), {"dim": dim, "keepdim": ctx.choice((False, True))})


def _max(ctx: Ctx, x: Value) -> Call:
    if ctx.rare(25):
        return Call((x.code,))
    return Call((x.code,), {"dim": ctx.dim(x.ndim), "keepdim": ctx.choice((False, True))},
                next_index=ctx.int(0, 1))


def _logsumexp(ctx: Ctx, x: Value) -> Call:
    call = _reduce()(ctx, x)
    if call.kwargs["dim"] is None:  # torch.logsumexp needs dims: every dim
        kw = dict(call.kwargs, dim=tuple(range(x.ndim)))
        return dataclasses.replace(call, torch_src="torch.logsumexp({a[0]}, " + _kw_src(kw) + ")")
    return call


def _kw_src(kw: dict) -> str:
    return ", ".join(f"{k}={render(v, 'torch')}" for k, v in kw.items())


def _reshape_target(ctx: Ctx, x: Value) -> tuple:
    """A shape with x's number of elements (one side sometimes -1); rarely a random one."""
    n = x.numel
    if ctx.rare(8):
        return ctx.shape(0, 3)  # most likely the wrong number of elements
    ndim = ctx.int(0 if n == 1 else 1, 3)
    out = [1] * ndim
    for f in prime_factors(n) if n else [0]:
        out[ctx.int(0, ndim - 1)] *= f
    if out and ctx.rare(40):
        out[ctx.int(0, ndim - 1)] = -1
    return tuple(out)


def _reshape(ctx: Ctx, x: Value) -> Call:
    return Call((x.code, _reshape_target(ctx, x)))


def _flatten(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"start_dim": ctx.dim(x.ndim), "end_dim": ctx.dim(x.ndim)})


def _permute(ctx: Ctx, x: Value) -> Call:
    dims = [d - x.ndim if ctx.rare(30) else d for d in ctx.data.draw(ctx.st.permutations(range(x.ndim)))]
    if ctx.rare(10) and dims:
        dims[ctx.int(0, len(dims) - 1)] = ctx.dim(x.ndim)  # a repeat or out of range
    elif ctx.rare(5):
        dims.append(ctx.dim(x.ndim))
    return Call((x.code, tuple(dims)))


def _transpose(ctx: Ctx, x: Value) -> Call:
    return Call((x.code, ctx.dim(x.ndim), ctx.dim(x.ndim)))


def _unsqueeze(ctx: Ctx, x: Value) -> Call:
    return Call((x.code, ctx.dim(x.ndim, extra=1)))


def _squeeze(ctx: Ctx, x: Value) -> Call:
    if ctx.rare(30):
        return Call((x.code,))
    return Call((x.code, ctx.dims(x.ndim, allow_none=False)))


def _expand_sizes(ctx: Ctx, x: Value, minus_one: bool) -> tuple:
    sizes = [(ctx.int(0, 3) if ctx.rare(60) else 1) if n == 1 else n for n in x.shape]
    if minus_one:
        sizes = [-1 if ctx.rare(30) else s for s in sizes]
    lead = [ctx.int(0, 2) for _ in range(ctx.int(0, 2) if ctx.rare(40) or not sizes else 0)]
    if minus_one and lead and ctx.rare(10):
        lead[0] = -1  # -1 for a new dimension: PyTorch raises
    if sizes and ctx.rare(5):
        sizes[ctx.int(0, len(sizes) - 1)] += 1  # not expandable unless it was 1
    return tuple(lead + sizes)


def _expand(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,) + _expand_sizes(ctx, x, True), torch_src="{a[0]}.expand({rest})")


def _broadcast_to(ctx: Ctx, x: Value) -> Call:
    return Call((x.code, _expand_sizes(ctx, x, False)))


def _index_item(ctx: Ctx, n: int | None):
    """One component of an index for a dim of size n (None: past the last dim)."""
    kind = ctx.choice(("int", "slice", "slice", "none", "array", "list", "mask"))
    if kind == "none":
        return None
    size = 1 if n is None else n
    if kind == "int":
        return ctx.int(-size - 1, size) if ctx.rare(10) else ctx.int(-size, max(size - 1, -size))
    if kind == "slice":
        lo = None if ctx.rare(40) else ctx.int(-size - 1, size + 1)
        hi = None if ctx.rare(40) else ctx.int(-size - 1, size + 1)
        return slice(lo, hi, None if ctx.rare(60) else ctx.int(1, 2))
    if kind == "list":
        return [ctx.int(-size, size - 1) if size else 0 for _ in range(ctx.int(1, 2))]
    if kind == "mask":
        return ctx.leaf((size,), "bool", False)
    return ctx.int_leaf(ctx.shape(0, 2), -size, size - 1)


def _getitem(ctx: Ctx, x: Value) -> Call:
    items, dim = [], 0
    for _ in range(ctx.int(0, x.ndim + 1)):
        if ctx.rare(8) and Ellipsis not in items:
            items.append(Ellipsis)
            continue
        it = _index_item(ctx, x.shape[dim] if dim < x.ndim else None)
        items.append(it)
        dim += it is not None
    index = items[0] if len(items) == 1 and ctx.rare(50) else tuple(items)
    return Call((x.code, index), tt_src="{a[0]}[{a[1]}]", torch_src="{a[0]}[{a[1]}]")


def _cat_like(ctx: Ctx, x: Value, stack: bool) -> list:
    tensors = [x.code]
    d = ctx.dim(x.ndim, extra=1 if stack else 0)
    if not stack and x.shape == (0,):  # PyTorch's cat skips 1-d empty tensors, their dim check too (a
        d = ctx.int(-1, 0)  # legacy rule); tinytensor checks the dim of every tensor
    for _ in range(ctx.int(0, 2)):
        shape = list(x.shape)
        if not stack and shape and -len(shape) <= d < len(shape):
            shape[d] = ctx.side()
        if shape and ctx.rare(5):
            shape[ctx.int(0, len(shape) - 1)] += 1
        tensors.append(ctx.leaf(tuple(shape), ctx.dtype((x.dtype,) + FLOATS)))
    if ctx.rare(30):
        tensors.reverse()
    return tensors, d


def _cat(ctx: Ctx, x: Value) -> Call:
    tensors, d = _cat_like(ctx, x, stack=False)
    return Call((tensors,), {"dim": d})


def _stack(ctx: Ctx, x: Value) -> Call:
    tensors, d = _cat_like(ctx, x, stack=True)
    return Call((tensors,), {"dim": d})


def _split(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    n = x.shape[d] if -x.ndim <= d < x.ndim else 2
    if ctx.rare(40):
        sizes = []
        while sum(sizes) < n:
            sizes.append(ctx.int(0, n - sum(sizes)))
        if ctx.rare(10):
            sizes.append(1)
        arg = sizes
    else:
        arg = ctx.int(0 if ctx.rare(5) else 1, n + 1)
    return Call((x.code, arg), {"dim": d}, next_index=ctx.int(0, 3))


def _chunk(ctx: Ctx, x: Value) -> Call:
    chunks = ctx.int(0 if ctx.rare(5) else 1, 4)
    return Call((x.code, chunks), {"dim": ctx.dim(x.ndim)}, next_index=ctx.int(0, 3))


def _tri(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"diagonal": ctx.int(-3, 3)})


def _pad(ctx: Ctx, x: Value) -> Call:
    k = ctx.int(0, x.ndim + (1 if ctx.rare(10) else 0))
    pad = [ctx.int(-1, 2) if ctx.rare(10) else ctx.int(0, 2) for _ in range(2 * k)]
    if ctx.rare(5):
        pad.append(1)  # an odd length
    value = ctx.scalar(("float", "int"))
    return Call((x.code, tuple(pad)), {"value": value},
                torch_src="torch.nn.functional.pad({a[0]}, {a[1]}, mode='constant', {kw})")


def _broadcast_shapes(ctx: Ctx, x: Value) -> Call:
    shapes = [x.shape] + [ctx.broadcast_partner(x.shape) for _ in range(ctx.int(0, 2))]
    return Call(tuple(shapes))


def _matmul(ctx: Ctx, x: Value) -> Call:
    k = x.shape[-1] if x.ndim else 2
    shape = ctx.choice(((k,), (k, ctx.side()), (ctx.side(), k, ctx.side())))
    if x.ndim >= 3 and ctx.rare(40):
        shape = x.shape[:-2][-1:] + (k, ctx.side())
    if ctx.rare(8):
        shape = tuple(ctx.side() for _ in shape)  # most likely misaligned
    dtype = ctx.dtype((x.dtype,))
    if 0 in x.shape + shape:  # PyTorch refuses operands of two dtypes (an extension here) except when one
        dtype = x.dtype  # is empty: then it answers in one operand's dtype, not the promoted one
    y = ctx.leaf(shape, dtype)
    return Call((y, x.code) if ctx.rare(30) else (x.code, y))


def _einsum(ctx: Ctx, x: Value) -> Call:
    letters, sizes, term = "abcd", {}, ""
    for n in x.shape:  # a repeated letter (a diagonal) where sizes allow it
        same = [c for c, m in sizes.items() if m == n]
        c = ctx.choice(same) if same and ctx.rare(30) else letters[len(sizes)]
        sizes[c] = n
        term += c
    operands, terms = [x.code], [term]
    if ctx.rare(50):
        t2 = "".join(ctx.choice(list(sizes) + [letters[len(sizes)]]) if sizes else letters[0]
                     for _ in range(ctx.int(0, 2)))
        for c in t2:
            sizes.setdefault(c, ctx.side())
        # x's dtype: PyTorch's einsum raises for mixed dtypes on some contraction paths, not on others
        operands.append(ctx.leaf(tuple(sizes[c] for c in t2), x.dtype if x.dtype in FLOATS else "float64"))
        terms.append(t2)
    used = sorted(set("".join(terms)))
    out = [c for c in ctx.data.draw(ctx.st.permutations(used)) if not ctx.rare(40)]
    spec = ",".join(terms) + "->" + "".join(out)
    return Call((spec, *operands))


def _softmax(name: str):
    def draw(ctx: Ctx, x: Value) -> Call:
        if not x.dtype.startswith("float") and 0 in x.shape:
            # PyTorch refuses integer input (see EXTENSIONS) except when it is empty, where it keeps the
            # integer dtype; compare with the float32 promotion tinytensor makes for every integer input
            return Call((x.code,), {"dim": ctx.dim(x.ndim)},
                        torch_src=f"torch.{name}({{a[0]}}.detach().float(), {{kw}})")
        return Call((x.code,), {"dim": ctx.dim(x.ndim)})

    return draw


def _dropout(ctx: Ctx, x: Value) -> Call:
    # only what is deterministic: p = 0 or 1, eval mode, and invalid p (randomness is not compared)
    training = not ctx.rare(30)
    p = ctx.choice((0.0, 1.0, -0.1, 1.5)) if training else ctx.choice((0.0, 0.3, 1.0))
    return Call((x.code,), {"p": p, "training": training},
                torch_src="torch.nn.functional.dropout({all})")


def _one_hot(ctx: Ctx, x: Value) -> Call:
    index = x.code
    hi = 3
    if x.dtype != "int64" and not ctx.rare(20):
        index = ctx.int_leaf(x.shape, 0, hi)
    n = ctx.choice((-1, -1, hi + 1, hi + 3, 1, 0))
    return Call((index,), {"num_classes": n}, torch_src="torch.nn.functional.one_hot({all})")


def _embedding(ctx: Ctx, x: Value) -> Call:
    if x.dtype == "int64":
        weight = ctx.leaf((ctx.int(1, 4), ctx.side()), ctx.dtype())
        return Call((x.code, weight), torch_src="torch.nn.functional.embedding({all})")
    if x.ndim == 2 or ctx.rare(20):
        rows = x.shape[0] if x.ndim else 1
        return Call((ctx.int_leaf(ctx.shape(0, 2), 0, rows - 1), x.code),
                    torch_src="torch.nn.functional.embedding({all})")
    weight = ctx.leaf((ctx.int(1, 4), ctx.side()), ctx.dtype())
    return Call((ctx.int_leaf(x.shape, 0, 0), weight), torch_src="torch.nn.functional.embedding({all})")


# ---- indexing along a dim, rearranging, sorting, scans, sampling --------------------------------

def _index_like(ctx: Ctx, x: Value, dim: int, distinct: bool = False) -> Code:
    """An index for gather/scatter along dim: x's number of dims (a 0-d x counts as 1-d), no larger
    than x apart from dim, values in range; rarely a shape, dtype or value that PyTorch refuses.
    ``distinct``: no index repeats along dim (a scatter's writes then never collide)."""
    shape = x.shape or (1,)
    d = dim % len(shape) if -len(shape) <= dim < len(shape) else 0
    n = shape[d]
    ishape = [ctx.int(0, m) if k != d else ctx.int(0 if ctx.rare(10) else 1, 3) for k, m in enumerate(shape)]
    if distinct:
        ishape[d] = min(ishape[d], n)
    if ctx.rare(8):
        ishape = list(ctx.shape(0, 3))  # most likely the wrong number of dims or too large
    ishape = tuple(ishape) if x.shape or len(ishape) != 1 or ctx.rare(50) else ()
    if distinct and len(ishape) == len(shape) and ishape and ishape[d % len(ishape)] <= n:
        full = tuple(n if k == d else m for k, m in enumerate(ishape))
        a = np.argsort(ctx.rng.random(full), axis=d)[tuple(slice(0, m) for m in ishape)].astype(np.int64)
        return ctx.leaf(ishape, "int64", False, a)
    if ctx.rare(5):
        return ctx.leaf(ishape, ctx.choice(("int32", "float32", "bool")), False)
    return ctx.int_leaf(ishape, 0, n - 1)


def _gather(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    return Call((x.code, d, _index_like(ctx, x, d)))


def _src_like(ctx: Ctx, x: Value, index: Code, dtype: str | None = None) -> Code:
    """A src for scatter: the index's shape (rarely larger, then without a gradient: PyTorch's backward
    refuses a src larger than the index), x's dtype (rarely another)."""
    ishape = tuple(ctx.prog.leaves[int(index[1:])].array.shape)
    dtype = dtype or (x.dtype if not ctx.rare(5) else ctx.dtype())
    if ctx.rare(15):
        return ctx.leaf(tuple(n + ctx.int(0, 1) for n in ishape), dtype, False)
    return ctx.leaf(ishape, dtype)


def _scatter(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    reduce = ctx.choice(("add", "multiply")) if ctx.rare(15) else None
    index = _index_like(ctx, x, d, distinct=reduce is None)
    kw = {} if reduce is None else {"reduce": reduce}
    if ctx.rare(30):
        return Call((x.code, d, index), dict(kw, value=ctx.scalar(("float", "int"))))
    return Call((x.code, d, index, _src_like(ctx, x, index)), kw)


def _scatter_add(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    index = _index_like(ctx, x, d)
    return Call((x.code, d, index, _src_like(ctx, x, index)))


def _vector_index(ctx: Ctx, x: Value, dim: int, negative: bool = False) -> Code:
    n = x.shape[dim] if -x.ndim <= dim < x.ndim and x.ndim else 1
    shape = ctx.choice(((ctx.int(0, 3),), (ctx.int(0, 3),), ())) if not ctx.rare(5) else (1, 1)
    if ctx.rare(5):
        return ctx.leaf(shape, ctx.choice(("int32", "float32")), False)
    return ctx.int_leaf(shape, -n if negative else 0, n - 1)


def _index_select(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    return Call((x.code, d, _vector_index(ctx, x, d)))


def _index_add(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    index = _vector_index(ctx, x, d)
    k = math.prod(ctx.prog.leaves[int(index[1:])].array.shape)
    shape = tuple(k if i == d % max(x.ndim, 1) else n for i, n in enumerate(x.shape))
    if ctx.rare(8):
        shape = ctx.shape(0, 3)
    # (into an empty x the source gets no gradient: PyTorch's backward refuses one)
    grad = False if 0 in x.shape else None
    source = ctx.leaf(shape, x.dtype if not ctx.rare(5) else ctx.dtype(), grad)
    kw = {"alpha": ctx.choice((2, 0.5, -1))} if x.dtype.startswith("float") and ctx.rare(30) else {}
    return Call((x.code, d, index, source), kw)


def _index_fill(inplace: bool):
    """Indices count from the back too; then a tensor value gets no gradient: PyTorch's backward reads
    its gradient with index_select, which refuses them (and an empty index into a 0-d tensor). Into an
    integer or bool tensor in place, no value with a gradient either: PyTorch then lets that tensor
    require grad (the quirk spreads)."""

    def draw(ctx: Ctx, x: Value) -> Call:
        d = ctx.dim(x.ndim)
        index = _vector_index(ctx, x, d, negative=True)
        if not ctx.rare(25):
            return Call((x.code, d, index, ctx.scalar(("float", "int", "bool"))))
        a = ctx.prog.leaves[int(index[1:])].array
        refused = (a < 0).any() or not a.size and not x.ndim
        grad = False if refused or inplace and not x.dtype.startswith("float") else None
        return Call((x.code, d, index, ctx.leaf((), ctx.dtype(), grad)))

    return draw


def _masked_select(ctx: Ctx, x: Value) -> Call:
    mask = ctx.leaf(ctx.broadcast_partner(x.shape), "bool" if not ctx.rare(5) else "int64", False)
    return Call((x.code, mask))


def _nonzero(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"as_tuple": ctx.choice((False, True))}, next_index=ctx.int(0, 2))


def _flip(ctx: Ctx, x: Value) -> Call:
    dims = tuple(ctx.dim(x.ndim) for _ in range(ctx.int(0, max(x.ndim, 1))))
    return Call((x.code, dims))


def _roll(ctx: Ctx, x: Value) -> Call:
    if ctx.rare(35):
        return Call((x.code, ctx.int(-4, 4) if not ctx.rare(10) else (ctx.int(-4, 4),)))
    k = ctx.int(1, 2)
    dims = tuple(ctx.dim(x.ndim) for _ in range(k))
    shifts = tuple(ctx.int(-4, 4) for _ in range(k + (1 if ctx.rare(5) else 0)))
    if len(shifts) == 1 and ctx.rare(50):
        return Call((x.code, shifts[0], dims[0]))
    return Call((x.code, shifts, dims))


def _repeat(ctx: Ctx, x: Value) -> Call:
    sizes = tuple(ctx.int(0, 3) if ctx.rare(30) else ctx.int(1, 2) for _ in range(x.ndim + ctx.int(0, 1)))
    if sizes and ctx.rare(5):
        sizes = sizes[1:] if ctx.rare(50) else (-1,) + sizes[1:]  # too few, or negative
    return Call((x.code,) + (sizes if sizes or ctx.rare(50) else ((),)))


def _size_of(x: Value, dim: int) -> int:
    return x.shape[dim] if x.ndim and -x.ndim <= dim < x.ndim else 1


def _narrow(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    n = _size_of(x, d)
    start = ctx.int(-n, n) if not ctx.rare(10) else ctx.int(-n - 2, n + 2)
    return Call((x.code, d, start, ctx.int(0, max(n - start % max(n, 1), 0)) if not ctx.rare(10) else n + 1))


def _movedim(ctx: Ctx, x: Value) -> Call:
    if ctx.rare(3):
        return Call((x.code, ctx.dim(x.ndim), ctx.dim(x.ndim)))
    k = ctx.int(1, max(x.ndim, 1))
    return Call((x.code, tuple(ctx.dim(x.ndim) for _ in range(k)), tuple(ctx.dim(x.ndim) for _ in range(k))))


def _unflatten(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    n = _size_of(x, d)
    sizes = ctx.choice(((n,), (1, n), (n, 1), (-1,), (1, -1), (-1, 1), (2, -1), (n, 2)))
    return Call((x.code, d, sizes))


def _tile(ctx: Ctx, x: Value) -> Call:
    dims = tuple(ctx.int(0, 2) if ctx.rare(10) else ctx.int(1, 2) for _ in range(ctx.int(0, 4)))
    return Call((x.code, dims))


def _repeat_interleave(ctx: Ctx, x: Value) -> Call:
    dim = None if ctx.rare(3) else ctx.dim(x.ndim)
    n = math.prod(x.shape) if dim is None else _size_of(x, dim)
    if ctx.rare(2):
        return Call((x.code, ctx.int(0, 2) if not ctx.rare(15) else -1), {"dim": dim})
    return Call((x.code, ctx.int_leaf((n,) if not ctx.rare(10) else (n + 1,), 0, 2)), {"dim": dim})


def _meshgrid(ctx: Ctx, x: Value) -> Call:
    """meshgrid of the chain value (flattened to 1-d) and one or two 1-d leaves of its dtype."""
    others = tuple(ctx.leaf((ctx.int(0, 3),), x.dtype) for _ in range(ctx.int(1, 2)))
    indexing = ctx.choice(("ij", "xy"))
    src = "{lib}.meshgrid({a[0]}.reshape(-1), " + ", ".join(f"{{a[{i + 1}]}}" for i in range(len(others)))
    return Call((x.code, *others), {"indexing": indexing}, tt_src=(src + ", {kw})").replace("{lib}", "tt"),
                torch_src=(src + ", {kw})").replace("{lib}", "torch"), next_index=ctx.int(0, len(others)))


def _atan2(ctx: Ctx, x: Value) -> Call:
    """atan2(x, a leaf); the leaf needs no gradient when x is bool: PyTorch's backward negates the first
    operand for the second's gradient, and a bool one makes it raise."""
    dtype = ctx.dtype((x.dtype,) + FLOATS)
    grad = False if x.dtype == "bool" else None
    return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), dtype, grad)))


def _aminmax(ctx: Ctx, x: Value) -> Call:
    kw = {"keepdim": ctx.choice((False, True))}
    if ctx.choice((False, True)):
        kw["dim"] = ctx.dim(max(x.ndim, 1))
    return Call((x.code,), kw, torch_src="tuple(torch.aminmax({a[0]}, {kw}))")


def _plus_product(ndim: int):
    """addmm (ndim 2) and baddbmm (3) of x, as the added input, and two leaf matrices whose product x
    broadcasts to (rarely one it does not), with β and α."""
    def draw(ctx: Ctx, x: Value) -> Call:
        shape = list(x.shape[-ndim:]) if len(x.shape) >= ndim else [ctx.int(1, 3) for _ in range(ndim)]
        shape = [ctx.int(1, 3) if n == 1 and ctx.choice((False, True)) else n for n in shape]
        if ctx.rare(10):
            shape[-1] += 1
        k = ctx.int(0, 3)
        dtype = x.dtype if x.dtype in FLOATS else ctx.choice(FLOATS)
        a = ctx.leaf(tuple(shape[:-1]) + (k,), dtype)
        b = ctx.leaf(tuple(shape[:-2]) + (k, shape[-1]), dtype)
        beta, alpha = ctx.choice(((1, 1), (0.5, 2.0), (0, 1), (-1, 0.5)))
        return Call((x.code, a, b), {"beta": beta, "alpha": alpha})

    return draw


def _addc(divisor: bool):
    """addcmul, addcdiv: x plus value times two leaves broadcasting with it."""
    def draw(ctx: Ctx, x: Value) -> Call:
        dtype = x.dtype if x.dtype in FLOATS else ctx.choice(FLOATS)
        a, b = (ctx.leaf(ctx.broadcast_partner(x.shape), dtype) for _ in range(2))
        return Call((x.code, a, b), {"value": ctx.choice((1, 0.5, -2.0))})

    return draw


def _count_nonzero(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"dim": ctx.dims(x.ndim, True)})


def _logit(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"eps": ctx.choice((1e-6, 0.25, 0.0))} if ctx.rare(2) else {})


def _logaddexp(ctx: Ctx, x: Value) -> Call:
    """logaddexp(x, a leaf) with no bool beside an operand that needs a gradient: PyTorch's backward subtracts
    the operands, which it refuses for a bool."""
    if x.dtype == "bool":
        return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), ctx.dtype(("bool",) + FLOATS), False)))
    return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), ctx.choice(FLOATS))))


def _xlogy(ctx: Ctx, x: Value) -> Call:
    """xlogy(x, a leaf or a number), or xlogy(a number, x) now and then (PyTorch takes either)."""
    if ctx.rare(6):
        return Call((ctx.scalar(("float", "int")), x.code))
    if ctx.rare(6):
        return Call((x.code, ctx.scalar(("float", "int"))))
    return _atan2(ctx, x)


def _nan_to_num(ctx: Ctx, x: Value) -> Call:
    kw = {k: ctx.choice((0.0, 1.5, -2.0, 1e3)) for k in ("nan", "posinf", "neginf") if ctx.rare(40)}
    return Call((x.code,), kw)


def _diff(ctx: Ctx, x: Value) -> Call:
    """n differences along a dim, with prepend/append leaves of x's dims (rarely of other dims)."""
    n = ctx.int(0, 3) if not ctx.rare(5) else -1
    d = ctx.dim(x.ndim) if n else ctx.int(-max(x.ndim, 1), max(x.ndim, 1) - 1)  # (n = 0: PyTorch checks
    kw = {"n": n, "dim": d}  # some out-of-range dims and not others)
    for name in ("prepend", "append"):
        if ctx.rare(30):
            shape = list(x.shape)
            if shape and -len(shape) <= d < len(shape):
                shape[d] = ctx.int(0, 2)
            shape = shape if not ctx.rare(10) else shape + [1]
            kw[name] = ctx.leaf(tuple(shape), ctx.dtype((x.dtype,) + FLOATS))
    return Call((x.code,), kw)


def _atleast(ctx: Ctx, x: Value) -> Call:
    """x alone (a tensor back), or with one or two leaves (a tuple back); rarely as a list."""
    others = tuple(ctx.leaf(ctx.shape(0, 4), ctx.dtype()) for _ in range(ctx.int(0, 2)))
    if ctx.rare(15):
        return Call(([x.code, *others],), next_index=ctx.int(0, len(others)))
    return Call((x.code, *others), next_index=ctx.int(0, len(others)))


def _joining(ctx: Ctx, x: Value) -> Call:
    """x and zero to two leaves of its dims for hstack, vstack, dstack and column_stack: one size
    redrawn (the joined one, or another: an error), rarely an empty list."""
    if ctx.rare(3):
        return Call(([],))
    tensors = [x.code]
    for _ in range(ctx.int(0, 2)):
        shape = list(x.shape)
        if shape and ctx.rare(60):
            shape[ctx.int(0, len(shape) - 1)] = ctx.side()
        tensors.append(ctx.leaf(tuple(shape), ctx.dtype((x.dtype,) + FLOATS)))
    return Call((tensors,))


def _cuts(ctx: Ctx, n: int):
    """tensor_split's indices_or_sections for a dim of size n: sections (rarely 0 or -1), indices (also
    past either end), or either as an int64 tensor."""
    if ctx.rare(50):
        cuts = ctx.int(1, 4) if not ctx.rare(5) else ctx.int(-1, 0)
        return ctx.leaf((), "int64", False, np.array(cuts)) if ctx.rare(10) else cuts
    cuts = [ctx.int(-n - 2, n + 2) if ctx.rare(20) else ctx.int(0, n) for _ in range(ctx.int(0, 3))]
    if not ctx.rare(30):
        cuts.sort()
    return ctx.leaf((len(cuts),), "int64", False, np.array(cuts, np.int64)) if ctx.rare(10) else cuts


def _tensor_split(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    return Call((x.code, _cuts(ctx, _size_of(x, d))), {"dim": d}, next_index=ctx.int(0, 3))


def _split_along(dim_of):
    """hsplit, vsplit, dsplit: sections that mostly divide the dim (dim_of(ndim)), or indices."""

    def draw(ctx: Ctx, x: Value) -> Call:
        n = _size_of(x, dim_of(x.ndim))
        if ctx.rare(40):
            divisors = [k for k in range(1, n + 1) if n % k == 0] or [1]
            return Call((x.code, ctx.choice(divisors) if not ctx.rare(10) else ctx.int(-1, 4)),
                        next_index=ctx.int(0, 3))
        cuts = _cuts(ctx, n)
        return Call((x.code, cuts if isinstance(cuts, list) else [ctx.int(0, n)]), next_index=ctx.int(0, 3))

    return draw


def _rot90(ctx: Ctx, x: Value) -> Call:
    dims = tuple(ctx.dim(x.ndim) for _ in range(2 if not ctx.rare(5) else ctx.choice((1, 3))))
    return Call((x.code, ctx.int(-5, 5), dims))


def _diagonal(ctx: Ctx, x: Value) -> Call:
    """An offset (also past the matrix: an empty diagonal) and two dims (rarely the same one)."""
    return Call((x.code,), {"offset": ctx.int(-4, 4), "dim1": ctx.dim(x.ndim), "dim2": ctx.dim(x.ndim)})


def _diag(ctx: Ctx, x: Value) -> Call:
    return Call((x.code, ctx.int(-3, 3)))


def _diag_embed(ctx: Ctx, x: Value) -> Call:
    return Call((x.code,), {"offset": ctx.int(-3, 3), "dim1": ctx.dim(x.ndim, extra=1),
                            "dim2": ctx.dim(x.ndim, extra=1)})


def _take(ctx: Ctx, x: Value) -> Call:
    """Indices into the flattened x, from the back too; rarely an int32 or float index."""
    n = x.numel
    shape = ctx.shape(0, 2) if n else (0,)
    if ctx.rare(5):
        return Call((x.code, ctx.leaf(shape, ctx.choice(("int32", "float32")), False)))
    return Call((x.code, ctx.int_leaf(shape, -n, n - 1)))


def _take_along_dim(ctx: Ctx, x: Value) -> Call:
    """Indices of x's dims (rarely others), each of size 1 or x's (broadcasting), any size along dim;
    from the back too along a dim (PyTorch 2.13 wraps indices past either end: tinytensor refuses them),
    from the front only without one (where PyTorch refuses negative ones)."""
    if ctx.rare(30):
        return Call((x.code, ctx.int_leaf(ctx.shape(0, 2), 0, x.numel - 1)))
    d = ctx.dim(x.ndim)
    n = _size_of(x, d)
    shape = [1 if ctx.rare(30) else s for s in x.shape]
    if shape and -len(shape) <= d < len(shape):
        shape[d] = ctx.int(0, 3)
    if ctx.rare(5):
        shape = shape + [1] if ctx.rare(50) else shape[1:]
    if ctx.rare(5):
        return Call((x.code, ctx.leaf(tuple(shape), "int32", False), d))
    return Call((x.code, ctx.int_leaf(tuple(shape), -n, n - 1), d))


def _broadcast_tensors(ctx: Ctx, x: Value) -> Call:
    others = tuple(ctx.leaf(ctx.broadcast_partner(x.shape), ctx.dtype((x.dtype,) + FLOATS))
                   for _ in range(ctx.int(0, 2)))
    return Call((x.code, *others), next_index=ctx.int(0, len(others)))


def _cdist(ctx: Ctx, x: Value) -> Call:
    """x against a leaf of R rows with x's columns (rarely other columns), batch dims broadcasting."""
    lead = ctx.broadcast_partner(x.shape[:-2]) if x.ndim >= 2 else ()
    m = x.shape[-1] if x.ndim and not ctx.rare(5) else ctx.int(1, 3)
    other = ctx.leaf(lead + (ctx.side(), m), x.dtype)  # (PyTorch checks the dtypes only where it computes)
    return Call((x.code, other), {"p": ctx.choice((2.0, 2.0, 1.0, 0.0, 3.0, 0.5, math.inf))})


def _cosine_similarity(ctx: Ctx, x: Value) -> Call:
    # the default eps only: where a norm is clamped to eps, PyTorch's gradient treats it as unclamped (see
    # cosine_similarity) and an inf upstream gradient gives NaN there (tinytensor: ±inf)
    kw = {"dim": ctx.dim(x.ndim)}
    return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), ctx.dtype((x.dtype,) + FLOATS))), kw)


def _cartesian_prod(ctx: Ctx, x: Value) -> Call:
    """The chain value flattened to 1-d, with zero to two 1-d leaves of its dtype."""
    others = tuple(ctx.leaf((ctx.int(0, 3),), x.dtype) for _ in range(ctx.int(0, 2)))
    src = "{lib}.cartesian_prod({a[0]}.reshape(-1)" + "".join(f", {{a[{i + 1}]}}" for i in range(len(others)))
    return Call((x.code, *others), tt_src=src.replace("{lib}", "tt") + ")",
                torch_src=src.replace("{lib}", "torch") + ")")


def _sorted_leaf(ctx: Ctx, shape: tuple, dtype: str) -> Code:
    """A leaf sorted along its last dim, with ties and infinities; no NaN (PyTorch's answer for a NaN in
    the sequence depends on its binary search's path)."""
    a = ctx.values(shape, dtype if dtype != "bool" else "int64")
    a = np.sort(np.where(np.isnan(a), np.inf, a), axis=-1) if shape else None  # (searchsorted's docstring)
    return ctx.leaf(shape, dtype if dtype != "bool" else "int64", False, a)


def _searchsorted(ctx: Ctx, x: Value) -> Call:
    """x's values in a sorted leaf: 1-d, or with x's leading dims (rarely other ones); left or right."""
    n = ctx.int(0, 4)
    lead = () if ctx.rare(50) or not x.ndim else x.shape[:-1]
    seq = _sorted_leaf(ctx, (lead + (n,)) if not ctx.rare(5) else (), ctx.choice((x.dtype,) + FLOATS))
    kw = {}
    if ctx.rare(50):
        kw["right"] = ctx.choice((False, True))
    elif ctx.rare(30):
        kw["side"] = ctx.choice(("left", "right"))
    if ctx.rare(10):
        kw["out_int32"] = True
    return Call((seq, x.code), kw)


def _bucketize(ctx: Ctx, x: Value) -> Call:
    boundaries = _sorted_leaf(ctx, (ctx.int(0, 4),) if not ctx.rare(5) else (2, 2),
                              ctx.choice((x.dtype,) + FLOATS))
    return Call((x.code, boundaries), {"right": ctx.choice((False, True))})


def _unique(ctx: Ctx, x: Value) -> Call:
    """PyTorch marks unique's values as requiring grad (with a derivative that raises); tinytensor's have
    none, so both sides get x detached."""
    kw = {"return_inverse": ctx.choice((False, True)), "return_counts": ctx.choice((False, True))}
    if ctx.rare(40):
        kw["dim"] = ctx.dim(x.ndim)
    src = "{lib}.unique({a[0]}.detach(), {kw})"
    n_out = 1 + kw["return_inverse"] + kw["return_counts"]
    return Call((x.code,), kw, tt_src=src.replace("{lib}", "tt"), torch_src=src.replace("{lib}", "torch"),
                next_index=ctx.int(0, n_out - 1))


def _sort_like(kind: str):
    """sort/argsort; PyTorch's default sort is not stable, so its side asks for stable=True: the
    answer tinytensor gives either way."""

    def draw(ctx: Ctx, x: Value) -> Call:
        kw = {"dim": ctx.dim(x.ndim), "descending": ctx.choice((False, True))}
        if ctx.rare(50):
            kw["stable"] = ctx.choice((False, True))
        name = "sort" if kind == "sort" else "argsort"
        torch_src = f"torch.{name}({{a[0]}}, " + _kw_src(dict(kw, stable=True)) + ")"
        return Call((x.code,), kw, torch_src=torch_src, next_index=ctx.int(0, 1))

    return draw


def _topk(ctx: Ctx, x: Value) -> Call:
    d = ctx.dim(x.ndim)
    n = x.shape[d] if -x.ndim <= d < x.ndim and x.ndim else 1
    k = ctx.choice((n + 1, -1)) if ctx.rare(8) else ctx.int(0, n)
    return Call((x.code, k), {"dim": d, "largest": ctx.choice((True, False))},
                torch_src="torch_topk({all})", next_index=ctx.int(0, 1))


def torch_topk(x, k, dim=-1, largest=True, sorted=True):
    """torch.topk with ties broken as tinytensor's (a stable sort's: the first of equal values);
    PyTorch's own pick among equal values is unspecified. torch.topk runs first, for its errors."""
    torch = _torch()
    out = torch.topk(x, k, dim=dim, largest=largest, sorted=sorted)
    if x.ndim == 0:
        return out
    idx = torch.sort(x, dim=dim, descending=largest, stable=True).indices.narrow(dim, 0, k)
    return torch.return_types.topk((x.gather(dim, idx), idx))


def _scan(ctx: Ctx, x: Value) -> Call:
    kw = {"dtype": DT(ctx.choice(("float64", "float32", "int64", "bool")))} if ctx.rare(15) else {}
    return Call((x.code, ctx.dim(x.ndim)), kw)


def _multinomial(ctx: Ctx, x: Value) -> Call:
    """Only what is deterministic: one category of nonzero probability per row, drawn once without
    replacement or any number of times with; and the inputs PyTorch refuses."""
    replacement = ctx.choice((False, True))
    n = ctx.int(1, 3) if replacement else (1 if not ctx.rare(10) else ctx.choice((0, 2, 4)))
    if x.ndim not in (1, 2) or not x.dtype.startswith("float"):
        return Call((x.code, n, replacement))
    p = np.zeros(x.shape)
    if x.shape[-1]:
        rows = p.reshape(-1, x.shape[-1])
        rows[np.arange(len(rows)), ctx.rng.integers(0, x.shape[-1], len(rows))] = ctx.choice((1.0, 0.5, 3.0))
    if p.size and ctx.rare(10):
        p.flat[0] = ctx.choice((-1.0, math.nan, math.inf))
    return Call((ctx.leaf(x.shape, x.dtype, False, p), n, replacement))


def _bernoulli(ctx: Ctx, x: Value) -> Call:
    """Only what is deterministic: probabilities 0 and 1 (and those PyTorch refuses)."""
    if ctx.rare(40):  # x gives the shape and dtype only: its gradient is 0 in tinytensor, while
        # PyTorch has no derivative for bernoulli(x, p) (it raises in backward): compared without one
        return Call((Code(f"{x.code}.detach()"), ctx.choice((0.0, 1.0, 1.0, 1.5, -0.5))))
    p = ctx.rng.integers(0, 2, x.shape).astype(np.float64)
    if p.size and ctx.rare(10):
        p.flat[0] = ctx.choice((1.5, -0.5, math.nan))
    return Call((ctx.leaf(x.shape, x.dtype if x.dtype.startswith("float") else ctx.choice(FLOATS), None, p),))


def _bernoulli_(ctx: Ctx, x: Value) -> Call:
    if ctx.rare(30):  # (a p that requires grad for an integer x trips an internal assert in PyTorch)
        shape = ctx.broadcast_partner(x.shape)
        grad = None if x.dtype.startswith("float") else False
        return Call((x.code, ctx.leaf(shape, ctx.choice(FLOATS), grad, ctx.rng.integers(0, 2, shape))))
    return Call((x.code, ctx.choice((0.0, 1.0, 1.5))))


def _inplace_of(name: str, draw):
    """x.name(...) on a detached copy of x, with the arguments ``draw`` gives (see _inplace)."""
    src = f"(lambda t, *a, **k: t.{name}(*a, **k))({{a[0]}}.detach().clone(), {{rest}})"
    return FuzzOp(name, draw, tt_src=src, torch_src=src, inputs=DTYPES,
                  may_refuse=((RuntimeError, "in-place"),))


def _plain(draw):
    """``draw``'s calls without source templates of their own: for an op's in-place form, which must
    call the method (an out-of-place draw may spell torch's side differently)."""
    return lambda ctx, x: dataclasses.replace(draw(ctx, x), tt_src=None, torch_src=None)


def _bound(ctx: Ctx, x: Value) -> Call:
    return Call((x.code, ctx.scalar(("float", "int"))))


# ---- Tensor methods that are not ops --------------------------------------------------------------

def _cast(ctx: Ctx, x: Value) -> Call:
    dt = ctx.choice(DTYPES + ("int32", "float16"))
    return Call((x.code, DT(dt)), tt_src="{a[0]}.to({a[1]})", torch_src="{a[0]}.to({a[1]})")


def _method(name: str, torch_name: str | None = None):
    """x.name() on both sides (torch_name where PyTorch spells it differently)."""
    return FuzzOp(name, _unary, tt_src=f"{{a[0]}}.{name}()", torch_src=f"{{a[0]}}.{torch_name or name}()",
                  inputs=DTYPES)


def _attr(name: str):
    return FuzzOp(name, _unary, tt_src=f"{{a[0]}}.{name}", torch_src=f"{{a[0]}}.{name}")


def _as_other(kind: str):
    def draw(ctx: Ctx, x: Value) -> Call:
        if kind == "type_as":
            return Call((x.code, ctx.leaf(ctx.shape(), ctx.dtype(DTYPES), False)))
        shape = x.shape if kind == "view_as" else _expand_sizes(ctx, x, False)
        shape = ctx.shape() if ctx.rare(20) else shape
        if kind == "view_as" and not ctx.rare(20):
            shape = _reshape_target(ctx, x)
            shape = (x.numel,) if -1 in shape else shape
        return Call((x.code, ctx.leaf(shape, x.dtype, False)))

    return FuzzOp(kind, draw, tt_src=f"{{a[0]}}.{kind}({{a[1]}})",
                  torch_src=f"{{a[0]}}.{'reshape_as' if kind == 'view_as' else kind}({{a[1]}})")


def _inplace(name: str):
    """y = x.detach().clone(); y.name_(other): an in-place update of a tensor outside any graph with an
    operand that may require grad. PyTorch records it; tinytensor may refuse it with a RuntimeError
    that says so (issue 8 leaves that choice open: record it as PyTorch does, or raise; never drop it)."""

    def draw(ctx: Ctx, x: Value) -> Call:
        if name == "clamp_":
            return dataclasses.replace(_clamp(ctx, x), tt_src=None, torch_src=None)
        if name == "masked_fill_":
            mask = ctx.leaf(ctx.broadcast_partner(x.shape), "bool", False)
            return Call((x.code, mask, ctx.scalar(("float", "int", "bool"))))
        if name in ("fill_",):
            return Call((x.code, ctx.scalar(("float", "int", "bool"))))
        if name == "zero_":
            return Call((x.code,))
        if name == "copy_":
            return Call((x.code, ctx.leaf(ctx.broadcast_partner(x.shape), ctx.dtype((x.dtype,) + FLOATS))))
        return Call((x.code, _other(ctx, x, ("float", "int"), dtypes=(x.dtype,))))

    src = f"(lambda t, *a, **k: t.{name}(*a, **k))({{a[0]}}.detach().clone(), {{rest}})"
    return FuzzOp(name, draw, tt_src=src, torch_src=src,
                  may_refuse=((RuntimeError, "in-place"),))


def _setitem(ctx: Ctx, x: Value) -> Call:
    index = _getitem(ctx, x).args[1]
    # into an integer or bool tensor only values without gradients: PyTorch lets such a tensor "require
    # grad" after the write (tinytensor: differentiability follows dtype), and the quirk spreads
    grad = None if x.dtype.startswith("float") else False
    value = ctx.scalar(("float", "int")) if ctx.rare(50) else ctx.leaf((), ctx.dtype((x.dtype,) + FLOATS),
                                                                       grad)
    return Call((x.code, index, value))


_SETITEM_SRC = "(lambda t, i, v: (t.__setitem__(i, v), t)[1])({a[0]}.detach().clone(), {a[1]}, {a[2]})"


def _build_table() -> dict:
    ops = [
        FuzzOp("add", _binary("+")), FuzzOp("sub", _binary("-")), FuzzOp("mul", _binary("*")),
        FuzzOp("div", _binary("/")), FuzzOp("pow", _pow, inputs=DTYPES),
        FuzzOp("remainder", _binary(None)),  # (no number % tensor: PyTorch has no derivative for it)
        FuzzOp("norm", _norm),
        # torch.maximum/minimum take two tensors (a number is clamp's job): no scalars drawn
        FuzzOp("maximum", _binary(None, ())), FuzzOp("minimum", _binary(None, ())),
        FuzzOp("eq", _binary("=="), inputs=DTYPES), FuzzOp("ne", _binary("!="), inputs=DTYPES),
        FuzzOp("lt", _binary("<")), FuzzOp("le", _binary("<=")),
        FuzzOp("gt", _binary(">")), FuzzOp("ge", _binary(">=")),
        # torch.logical_* take two tensors
        FuzzOp("logical_and", _binary(None, ()), inputs=("bool",)),
        FuzzOp("logical_or", _binary(None, ()), inputs=("bool",)),
        FuzzOp("logical_xor", _binary(None, ()), inputs=("bool",)),
        FuzzOp("logical_not", _unary, inputs=("bool",)),
        FuzzOp("isfinite", _unary), FuzzOp("isnan", _unary),
        FuzzOp("gelu", _gelu, torch_src="torch.nn.functional.gelu({all})"),
        FuzzOp("silu", _unary, torch_src="torch.nn.functional.silu({all})"),
        *(FuzzOp(name, draw, tt_src=f"tt.{name}({{all}})", torch_src=f"torch.nn.functional.{name}({{all}})")
          for name, draw in (("softplus", _softplus), ("logsigmoid", _unary), ("hardswish", _unary),
                             ("mish", _unary), ("relu6", _unary), ("hardtanh", _hardtanh), ("glu", _glu),
                             ("leaky_relu", _activation_with("negative_slope", (0.01, 0.2, -0.5, 1))),
                             ("elu", _activation_with("alpha", (1.0, 0.5, 2))),
                             ("selu", _unary), ("celu", _activation_with("alpha", (1.0, 0.5, 2, 0.0))),
                             ("softsign", _unary), ("tanhshrink", _unary),
                             ("threshold", _threshold),
                             ("hardshrink", _activation_with("lambd", (0.5, 1, 0.0, -1.0))),
                             ("softshrink", _activation_with("lambd", (0.5, 1, 0.0, -1.0))),
                             ("prelu", _prelu))),
        # PyTorch's float64 hardsigmoid gradient multiplies by float32's 1/6 (tinytensor's by 1/6): compared
        # with relu6(x + 3) / 6, its same values and gradient selection
        FuzzOp("hardsigmoid", _unary, torch_src="torch.nn.functional.relu6({a[0]} + 3) / 6"),
        FuzzOp("clamp", _clamp), FuzzOp("clip", _clamp),
        FuzzOp("where", _where),
        FuzzOp("masked_fill", _masked_fill, torch_src="{a[0]}.masked_fill({a[1]}, {a[2]})"),
        FuzzOp("sum", _reduce(), inputs=DTYPES), FuzzOp("mean", _reduce()),
        FuzzOp("var", _reduce(correction=True)), FuzzOp("std", _reduce(correction=True)),
        FuzzOp("prod", _prod), FuzzOp("logsumexp", _logsumexp),
        FuzzOp("amax", _with(_reduce(), _torch_dim_none("", "torch.amax({a[0]}, {kw})"))),
        FuzzOp("amin", _with(_reduce(), _torch_dim_none("", "torch.amin({a[0]}, {kw})"))),
        FuzzOp("argmax", _reduce(allow_tuple=False)), FuzzOp("argmin", _reduce(allow_tuple=False)),
        FuzzOp("max", _max), FuzzOp("min", _max),
        FuzzOp("reshape", _reshape, inputs=DTYPES),
        # tinytensor has no strides: view is reshape, so it is compared with torch.reshape (PyTorch's
        # view refuses non-contiguous inputs, a difference the project chose)
        FuzzOp("view", _reshape, torch_src="torch.reshape({all})", inputs=DTYPES),
        FuzzOp("flatten", _flatten, inputs=DTYPES), FuzzOp("permute", _permute, inputs=DTYPES),
        FuzzOp("transpose", _transpose, inputs=DTYPES), FuzzOp("swapaxes", _transpose, inputs=DTYPES),
        FuzzOp("unsqueeze", _unsqueeze, inputs=DTYPES), FuzzOp("squeeze", _squeeze, inputs=DTYPES),
        FuzzOp("expand", _expand, inputs=DTYPES), FuzzOp("broadcast_to", _broadcast_to, inputs=DTYPES),
        FuzzOp("broadcast_shapes", _broadcast_shapes, terminal=True),
        FuzzOp("cat", _cat, inputs=DTYPES), FuzzOp("stack", _stack, inputs=DTYPES),
        FuzzOp("split", _split, inputs=DTYPES), FuzzOp("chunk", _chunk, inputs=DTYPES),
        FuzzOp("tril", _tri), FuzzOp("triu", _tri), FuzzOp("pad", _pad),
        FuzzOp("matmul", _matmul), FuzzOp("einsum", _einsum),
        FuzzOp("softmax", _softmax("softmax")), FuzzOp("log_softmax", _softmax("log_softmax")),
        FuzzOp("dropout", _dropout),
        FuzzOp("one_hot", _one_hot, torch_src="torch.nn.functional.one_hot({all})", inputs=("int64",)),
        FuzzOp("embedding", _embedding, inputs=("int64",) + FLOATS),
        # Tensor methods that are not ops
        FuzzOp("getitem", _getitem, inputs=DTYPES),
        FuzzOp("to", _cast, inputs=DTYPES),
        _method("float"), _method("double"), _method("long"), _method("int"), _method("bool"),
        _method("half"), _method("clone"), _method("detach"),
        *(FuzzOp(n, _reduce(), tt_src=f"{{a[0]}}.{n}({{kw}})", torch_src=f"{{a[0]}}.{n}({{kw}})",
                 inputs=DTYPES) for n in ("all", "any")),  # (dim=() reduces nothing here: PyTorch's)
        _attr("T"), _attr("mT"),
        _as_other("view_as"), _as_other("expand_as"), _as_other("type_as"),
        *(_inplace(n) for n in ("add_", "sub_", "mul_", "div_", "clamp_", "masked_fill_", "fill_",
                                "zero_", "copy_")),
        FuzzOp("setitem", _setitem, tt_src=_SETITEM_SRC, torch_src=_SETITEM_SRC, inputs=DTYPES,
               may_refuse=((RuntimeError, "in-place"),)),
        # indexing along a dim, rearranging, sorting, scans, sampling
        FuzzOp("gather", _gather, inputs=DTYPES), FuzzOp("scatter", _scatter, inputs=DTYPES),
        FuzzOp("scatter_add", _scatter_add, inputs=DTYPES),
        FuzzOp("index_select", _index_select, inputs=DTYPES), FuzzOp("index_add", _index_add, inputs=DTYPES),
        FuzzOp("index_fill", _index_fill(inplace=False), inputs=DTYPES),
        FuzzOp("masked_select", _masked_select, inputs=DTYPES),
        FuzzOp("nonzero", _nonzero, inputs=DTYPES),
        FuzzOp("t", _unary, inputs=DTYPES), FuzzOp("flip", _flip, inputs=DTYPES),
        FuzzOp("roll", _roll, inputs=DTYPES),
        FuzzOp("narrow", _narrow, inputs=DTYPES), FuzzOp("movedim", _movedim, inputs=DTYPES),
        FuzzOp("moveaxis", _movedim, inputs=DTYPES), FuzzOp("unflatten", _unflatten, inputs=DTYPES),
        FuzzOp("tile", _tile, inputs=DTYPES), FuzzOp("repeat_interleave", _repeat_interleave, inputs=DTYPES),
        FuzzOp("meshgrid", _meshgrid, inputs=DTYPES),
        FuzzOp("atan2", _atan2, inputs=DTYPES),
        *(FuzzOp(name, _unary, inputs=DTYPES)
          for name in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erfc",
                       "deg2rad", "rad2deg", "frac", "signbit", "isposinf", "isneginf")),
        # (PyTorch's sgn is sign for reals; its backward's zero gradient is a ZeroTensor numpy can't read)
        FuzzOp("sgn", _unary, torch_src="torch.sign({all})", inputs=DTYPES),
        FuzzOp("logit", _logit, inputs=DTYPES),
        FuzzOp("var_mean", _reduce(correction=True)), FuzzOp("std_mean", _reduce(correction=True)),
        FuzzOp("nansum", _reduce(), inputs=DTYPES), FuzzOp("nanmean", _reduce(), inputs=DTYPES),
        FuzzOp("aminmax", _aminmax, inputs=DTYPES), FuzzOp("count_nonzero", _count_nonzero, inputs=DTYPES),
        FuzzOp("addmm", _plus_product(2)), FuzzOp("baddbmm", _plus_product(3)),
        FuzzOp("addcmul", _addc(False)), FuzzOp("addcdiv", _addc(True)),
        _inplace_of("addmm_", _plus_product(2)), _inplace_of("baddbmm_", _plus_product(3)),
        FuzzOp("hypot", _atan2, inputs=DTYPES), FuzzOp("logaddexp", _logaddexp, inputs=DTYPES),
        FuzzOp("xlogy", _xlogy, inputs=DTYPES),
        FuzzOp("nan_to_num", _nan_to_num, inputs=DTYPES),
        FuzzOp("diff", _diff, inputs=DTYPES),
        *(FuzzOp(name, _atleast, inputs=DTYPES) for name in ("atleast_1d", "atleast_2d", "atleast_3d")),
        *(FuzzOp(name, _joining, inputs=DTYPES)
          for name in ("hstack", "vstack", "row_stack", "dstack", "column_stack")),
        FuzzOp("tensor_split", _tensor_split, inputs=DTYPES),
        FuzzOp("hsplit", _split_along(lambda nd: 1 if nd > 1 else 0), inputs=DTYPES),
        FuzzOp("vsplit", _split_along(lambda nd: 0), inputs=DTYPES),
        FuzzOp("dsplit", _split_along(lambda nd: 2), inputs=DTYPES),
        FuzzOp("ravel", _unary, inputs=DTYPES), FuzzOp("swapdims", _transpose, inputs=DTYPES),
        FuzzOp("fliplr", _unary, inputs=DTYPES), FuzzOp("flipud", _unary, inputs=DTYPES),
        FuzzOp("rot90", _rot90, inputs=DTYPES),
        FuzzOp("diagonal", _diagonal, inputs=DTYPES), FuzzOp("diag", _diag, inputs=DTYPES),
        FuzzOp("diag_embed", _diag_embed, inputs=DTYPES), FuzzOp("trace", _unary, inputs=DTYPES),
        FuzzOp("take", _take, inputs=DTYPES),
        FuzzOp("take_along_dim", _take_along_dim, inputs=DTYPES,
               may_refuse=((RuntimeError, "take_along_dim: index"),)),
        FuzzOp("broadcast_tensors", _broadcast_tensors, inputs=DTYPES),
        FuzzOp("cdist", _cdist), FuzzOp("cosine_similarity", _cosine_similarity, inputs=DTYPES),
        FuzzOp("cartesian_prod", _cartesian_prod, inputs=DTYPES),
        FuzzOp("searchsorted", _searchsorted, inputs=DTYPES), FuzzOp("bucketize", _bucketize, inputs=DTYPES),
        FuzzOp("unique", _unique, inputs=DTYPES),
        FuzzOp("repeat", _repeat, tt_src="{a[0]}.repeat({rest})", torch_src="{a[0]}.repeat({rest})",
               inputs=DTYPES),
        _method("contiguous"),
        FuzzOp("sort", _sort_like("sort"), inputs=DTYPES),
        FuzzOp("argsort", _sort_like("argsort"), inputs=DTYPES),
        FuzzOp("topk", _topk, inputs=DTYPES),
        FuzzOp("cumsum", _scan, inputs=DTYPES), FuzzOp("cumprod", _scan, inputs=DTYPES),
        # without replacement tinytensor refuses to draw more categories than have a nonzero probability;
        # PyTorch's CPU kernel then draws zero-probability ones (its documentation asks for enough)
        FuzzOp("multinomial", _multinomial,
               may_refuse=((RuntimeError, "not enough categories with nonzero probability"),)),
        FuzzOp("bernoulli", _bernoulli, inputs=DTYPES),
        _inplace_of("scatter_", _scatter), _inplace_of("scatter_add_", _scatter_add),
        _inplace_of("index_fill_", _index_fill(inplace=True)), _inplace_of("index_add_", _index_add),
        _inplace_of("bernoulli_", _bernoulli_),
        # the in-place forms of ops (tensor.py's _in_place)
        *(_inplace_of(f"{n}_", _unary) for n in (
            "abs", "absolute", "neg", "negative", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
            "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf", "reciprocal", "square", "sign",
            "floor", "ceil", "trunc", "fix", "round", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
            "acosh", "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "erfc", "frac",
            "sgn", "deg2rad", "rad2deg")),
        _inplace_of("logit_", _logit),
        *(_inplace_of(f"{n}_", _binary(None)) for n in (
            "pow", "remainder", "multiply", "subtract", "divide", "true_divide")),
        *(_inplace_of(f"{n}_", _atan2) for n in ("atan2", "arctan2", "hypot", "xlogy")),
        *(_inplace_of(f"{n}_", _constant_other(True)) for n in (
            "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
            "not_equal")),
        *(_inplace_of(f"{n}_", _constant_other(False)) for n in ("logical_and", "logical_or", "logical_xor")),
        _inplace_of("logical_not_", _unary), _inplace_of("nan_to_num_", _nan_to_num),
        _inplace_of("clamp_min_", _bound), _inplace_of("clamp_max_", _bound),
        _inplace_of("clip_", _plain(_clamp)), _inplace_of("tril_", _plain(_tri)),
        _inplace_of("triu_", _plain(_tri)), _inplace_of("cumsum_", _plain(_scan)),
        _inplace_of("cumprod_", _plain(_scan)),
    ]
    for name in ("abs", "neg", "sign", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
                 "relu", "erf", "log1p", "expm1", "reciprocal", "square", "floor", "ceil", "trunc", "round",
                 "isinf", "log2", "log10", "exp2"):
        ops.append(FuzzOp(name, _unary))
    table = {op.name: op for op in ops}
    assert len(table) == len(ops), "two fuzz entries with one name"
    return table


OPS: dict = _build_table()

# Public names of tinytensor.ops.__all__ / Tensor that have no fuzz entry, each with its reason.
# A public op that is in neither OPS nor this list fails tests/test_fuzz_torch.py.
EXCLUDED_OPS: dict = {
    # PyTorch records floor_divide in the graph with a derivative that raises when reached; tinytensor's has
    # no gradient at all (its result never requires grad), so every fuzzed output would differ in
    # requires_grad. Its values are checked against PyTorch by the catalogue (tests/test_ops.py)
    "floor_divide": "no gradient here, a raising one in PyTorch: values checked by the catalogue",
    # the matrix products with a dimension check: matmul is fuzzed, and mm/bmm's catalogue entries check
    # them against PyTorch on every device
    "mm": "matmul of two 2-D tensors (matmul is fuzzed)",
    "bmm": "matmul of two 3-D tensors (matmul is fuzzed)",
    "unbind": "x[i] along dim for each i (indexing is fuzzed); its catalogue entry checks it",
    "dot": "matmul of two vectors (matmul is fuzzed)", "outer": "a broadcast mul (mul is fuzzed)",
    "lerp": "add, mul and sub (fuzzed); its catalogue entry checks it against torch.lerp",
    "isclose": "comparisons, abs and isfinite (fuzzed); its catalogue entry checks it against torch.isclose",
    "allclose": "isclose(...).all() as a Python bool; its catalogue entry checks it",
}
EXCLUDED_TENSOR_ATTRS: dict = {
    # metadata and conversions out of the library: no computation to compare
    "backend": "tinytensor's backend object", "array": "the backend array",
    "data": "the same memory outside autograd", "device": "metadata",
    "dtype": "metadata", "ndim": "metadata", "shape": "metadata", "size": "metadata", "numel": "metadata",
    "dim": "metadata", "is_floating_point": "metadata", "is_leaf": "autograd metadata",
    "requires_grad": "compared on every output", "grad": "compared after every backward()",
    "grad_fn": "autograd metadata (names differ from PyTorch's)", "item": "conversion to Python",
    "numpy": "conversion to NumPy (used by every comparison)", "tolist": "conversion to Python",
    # autograd entry points: exercised by every example's gradient check
    "backward": "run on every example", "requires_grad_": "how leaves are made",
    "register_hook": "hooks: tests/test_autograd.py", "retain_grad": "hooks: tests/test_autograd.py",
    "register_post_accumulate_grad_hook": "hooks: tests/test_distributed.py",
    # devices: the fuzzer runs on each device; moving between them is tests/test_tensor.py's
    "cpu": "device transfer", "cuda": "device transfer",
    "type": "to(dtype) under PyTorch's type names: tests/test_pytorch_names.py",
    "clamp_min": "clamp(min=...) (clamp is fuzzed)", "clamp_max": "clamp(max=...) (clamp is fuzzed)",
    "new_zeros": "creation: tests/test_pytorch_names.py", "new_ones": "creation: tests/test_pytorch_names.py",
    "new_full": "creation: tests/test_pytorch_names.py", "nelement": "metadata",
    "new_tensor": "creation: tests/test_pytorch_names.py",
    "new_empty": "creation: tests/test_pytorch_names.py",
    "is_contiguous": "metadata", "reshape_as": "reshape(other.shape) (reshape is fuzzed)",
    "normal_": "a random fill: tests/test_pytorch_names.py",
    "uniform_": "a random fill: tests/test_pytorch_names.py",
    "addcmul_": "add and mul in place (add_ and mul are fuzzed): tests/test_pytorch_names.py",
    "addcdiv_": "add and div in place (add_ and div are fuzzed): tests/test_pytorch_names.py",
    "lerp_": "lerp in place (lerp is checked by its catalogue entry): tests/test_pytorch_names.py",
    "floor_divide_": "floor_divide in place: no gradient here, a raising one in PyTorch (see EXCLUDED_OPS)",
}


# ---- running a program ----------------------------------------------------------------------------

def _torch():
    import torch

    return torch


def _namespace(lib: str) -> dict:
    torch = _torch() if lib == "torch" else None
    return {"tt": tt, "torch": torch, "np": np, "inf": math.inf, "nan": math.nan, "torch_topk": torch_topk}


def _make_leaves(prog: Program, lib: str) -> dict:
    env = _namespace(lib)
    for leaf in prog.leaves:
        if lib == "tt":
            env[leaf.name] = tt.tensor(leaf.array, dtype=leaf.array.dtype.name, device=prog.device,
                                       requires_grad=leaf.requires_grad)
        else:
            torch = _torch()
            t = torch.from_numpy(leaf.array.copy())
            env[leaf.name] = t.requires_grad_(True) if leaf.requires_grad else t
    return env


def _run_step(step: Step, env: dict, lib: str):
    exec(compile(step.source(lib), f"<fuzz {lib} {step.op.name}>", "exec"), env)
    return env[step.out]


def _outputs(out, torch_side: bool = False) -> list:
    """A result as a list of outputs: a list, or a tuple of tensors, is several; anything else one."""
    if isinstance(out, list) or isinstance(out, tuple) and any(hasattr(o, "shape") for o in out):
        return list(out)
    if torch_side and type(out) is tuple and not out:  # torch.split into no pieces (a shape is a Size)
        return []
    return [out]


def _is_shape(out) -> bool:
    return isinstance(out, tuple) and all(isinstance(n, int) for n in out)


def _torch_dtype(t) -> str:
    return str(t.dtype).removeprefix("torch.")


@contextlib.contextmanager
def _quiet():
    """NaN, inf and degenerate reductions are drawn on purpose: no warnings for them."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def draw_program(data, device: str, first: str | None = None, max_steps: int = 3,
                 names: list | None = None) -> Program:
    """Draw a program whose first op is ``first`` (else any op of ``names`` or OPS), run its torch side
    while drawing (each step's draw sees the shape and dtype torch gives), and draw upstream gradients."""
    with _quiet():
        return _draw_program(data, device, first, max_steps, names)


def _draw_program(data, device, first, max_steps, names) -> Program:
    torch = _torch()
    names = sorted(names or OPS)
    prog = Program(device, [], [])
    ctx = Ctx(data, prog)
    op = OPS[first] if first else OPS[ctx.choice(names)]
    x = ctx.leaf(ctx.shape(), ctx.dtype(op.inputs))
    env = _make_leaves(prog, "torch")
    value = Value(x, tuple(env[x].shape), _torch_dtype(env[x]))
    n_steps = ctx.int(1, max_steps)
    for k in range(n_steps):
        if k:
            op = OPS[ctx.choice(names)]
        n_leaves = len(prog.leaves)
        call = op.draw(ctx, value)
        step = Step(op, call, f"y{k + 1}")
        prog.steps.append(step)
        env.update(_make_leaves(Program(device, prog.leaves[n_leaves:], []), "torch"))
        try:
            out = _run_step(step, env, "torch")
        except Exception as e:  # noqa: BLE001 - any failure of torch is what tinytensor must match
            prog.torch_error = e
            break
        outs = _outputs(out, torch_side=True)
        if op.terminal or not outs or not all(isinstance(o, torch.Tensor) for o in outs):
            break
        i = call.next_index % len(outs)
        code = Code(step.out if len(outs) == 1 and not isinstance(out, (tuple, list)) else f"{step.out}[{i}]")
        value = Value(code, tuple(outs[i].shape), _torch_dtype(outs[i]))
    prog.torch_env = env
    if prog.torch_error is None:
        outs = _outputs(env[prog.steps[-1].out], torch_side=True)
        for i, o in enumerate(outs):
            if isinstance(o, torch.Tensor) and o.requires_grad:
                prog.upstream[i] = ctx.upstream(tuple(o.shape), _torch_dtype(o))
    return prog


class Discrepancy(AssertionError):
    """tinytensor and PyTorch disagree; the message holds the kind, the details and the reproducer."""

    def __init__(self, kind: str, detail: str, prog: Program):
        self.kind, self.detail = kind, detail
        m = re.match(r"step \d+ \((\w+)\)", detail)
        self.op = m.group(1) if m else "/".join(s.op.name for s in prog.steps)  # where it went wrong
        super().__init__(f"{kind}: {detail}\n{prog.describe()}")


def _tolerance(dtype: str) -> float:
    return {"float64": F64_RTOL, "float16": F16_RTOL}.get(dtype, F32_RTOL)


def _program_rtol(prog: Program) -> float:
    """The loosest tolerance of any float dtype in the program: a float64 result computed through a
    float32 step carries float32 rounding."""
    torch = _torch()
    dtypes = {lf.array.dtype.name for lf in prog.leaves}
    for v in prog.torch_env.values():
        for o in _outputs(v, torch_side=True):
            if isinstance(o, torch.Tensor):
                dtypes.add(_torch_dtype(o))
    return max([_tolerance(d) for d in dtypes if d.startswith("float")] or [F64_RTOL])


def _compare_arrays(ours: np.ndarray, theirs: np.ndarray, rtol: float) -> str | None:
    """None when equal (floats: within the dtype's tolerance, NaN and inf in the same places)."""
    if ours.shape != theirs.shape:
        return f"shape {ours.shape} vs torch {theirs.shape}"
    if theirs.dtype.kind != "f":
        bad = ours != theirs
        return None if not bad.any() else f"values differ at {np.argwhere(bad)[:3].tolist()}: " \
            f"{ours[bad][:3].tolist()} vs torch {theirs[bad][:3].tolist()}"
    o, t = ours.astype(np.float64), theirs.astype(np.float64)
    nan_o, nan_t = np.isnan(o), np.isnan(t)
    if (nan_o != nan_t).any():
        where = np.argwhere(nan_o != nan_t)[:3].tolist()
        return f"NaN positions differ at {where}: {o[nan_o != nan_t][:3].tolist()} vs torch " \
            f"{t[nan_o != nan_t][:3].tolist()}"
    finite = np.isfinite(t)
    if (np.isinf(o) != np.isinf(t)).any() or (o[~finite & ~nan_t] != t[~finite & ~nan_t]).any():
        bad = ((np.isinf(o) != np.isinf(t)) | (~finite & ~nan_t & (o != t)))
        return f"inf differs at {np.argwhere(bad)[:3].tolist()}: {o[bad][:3].tolist()} vs torch " \
            f"{t[bad][:3].tolist()}"
    scale = max(1.0, float(np.abs(t[finite]).max())) if finite.any() else 1.0
    err = np.abs(o - t)[finite] > rtol * np.abs(t[finite]) + rtol * scale
    if err.any():
        idx = np.argwhere(finite)[err][:3].tolist()
        return (f"values differ at {idx}: {o[finite][err][:3].tolist()} vs torch "
                f"{t[finite][err][:3].tolist()} (rtol {rtol})")
    return None


def _compare_output(o, t, what: str, prog: Program):
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        ok = (not isinstance(o, tt.Tensor)) and (tuple(o) == tuple(t) if _is_shape(tuple(t)) else o == t)
        if not ok:
            raise Discrepancy("value", f"{what}: {o!r} vs torch {t!r}", prog)
        return
    if not isinstance(o, tt.Tensor):
        raise Discrepancy("type", f"{what}: a {type(o).__name__} vs torch a Tensor", prog)
    if o.shape != tuple(t.shape):
        raise Discrepancy("shape", f"{what}: shape {o.shape} vs torch {tuple(t.shape)}", prog)
    if o.dtype.name != _torch_dtype(t):
        raise Discrepancy("dtype", f"{what}: dtype {o.dtype.name} vs torch {_torch_dtype(t)}", prog)
    # (an integer result never requires grad in tinytensor; PyTorch lets an empty one after setitem)
    if o.requires_grad != t.requires_grad and (t.is_floating_point() or o.requires_grad):
        raise Discrepancy("requires_grad", f"{what}: requires_grad {o.requires_grad} vs torch "
                          f"{t.requires_grad}", prog)
    msg = _compare_arrays(o.numpy(), t.detach().numpy(), max(_program_rtol(prog), _tolerance(o.dtype.name)))
    if msg:
        raise Discrepancy("value", f"{what}: {msg}", prog)


def _is_dim_error(e: BaseException) -> bool:
    return isinstance(e, IndexError) and "Dimension out of range" in str(e)


# Inputs tinytensor accepts on purpose where PyTorch raises: {op name: (text of torch's error, why)}.
# Each is a deliberate superset: tinytensor answers where PyTorch refuses, and never answers differently
# where PyTorch answers. Anything else PyTorch refuses and tinytensor accepts is a discrepancy.
_PROMOTES = "integer and bool inputs are promoted to float32, as for exp or sqrt (PyTorch refuses them)"
EXTENSIONS: dict = {
    "mean": ("could not infer output dtype", _PROMOTES),
    "var": ("std and var only support floating point", _PROMOTES),
    "var_mean": ("var_mean only support floating point", _PROMOTES),
    "std_mean": ("std_mean only support floating point", _PROMOTES),
    "std": ("std and var only support floating point", _PROMOTES),
    "softmax": ("kernel_impl\" not implemented for", _PROMOTES),
    "log_softmax": ("kernel_impl\" not implemented for", _PROMOTES),
    "gelu": ("\"GeluKernelImpl\" not implemented for", _PROMOTES),
    "silu": ("\"silu_cpu\" not implemented for", _PROMOTES),
    "softplus": ("\"softplus_cpu\" not implemented for", _PROMOTES),
    "logsigmoid": ("\"log_sigmoid_cpu\" not implemented for", _PROMOTES),
    "hardswish": ("\"hardswish_cpu\" not implemented for", _PROMOTES),
    "mish": ("\"mish_cpu\" not implemented for", _PROMOTES),
    "leaky_relu": ("\"leaky_relu_cpu\" not implemented for", _PROMOTES),
    "elu": ("\"elu_cpu\" not implemented for", _PROMOTES),
    "glu": ("\"glu_cpu\" not implemented for", _PROMOTES),
    "selu": ("\"elu_cpu\" not implemented for", _PROMOTES),
    "hypot": ("\"hypot_cpu\" not implemented for", _PROMOTES),
    "logaddexp": ("\"logaddexp_cpu\" not implemented for", _PROMOTES),
    "celu": ("\"elu_cpu\" not implemented for", _PROMOTES),
    "hardshrink": ("\"hardshrink_cpu\" not implemented for", _PROMOTES),
    "softshrink": (("\"softshrink_cpu\" not implemented for", "\"softshrink_check\" not implemented for"),
                   _PROMOTES),
    "softsign": ("\"abs_cpu\" not implemented for 'Bool'", "x / (1 + |x|) with abs's bool extension (abs)"),
    "tanhshrink": ("with a bool tensor is not supported", _PROMOTES),
    "relu": ("Boolean inputs not supported for relu", "relu of a bool tensor is the tensor (max(x, False))"),
    "abs": ("not implemented for 'Bool'", "abs of a bool tensor is the tensor, as sign of one is in PyTorch"),
    "absolute": ("not implemented for 'Bool'", "abs's other name"),
    "argmax": ("does not support bool input", "bools are ordered False < True, as by max and sort"),
    "argmin": ("does not support bool input", "bools are ordered False < True, as by max and sort"),
    # PyTorch's words differ by path ("... the same dtype" for matrices and vectors, "expected scalar
    # type Float but found Double" for batches); both name a type. Two bool tensors raise on both sides.
    "matmul": (("type", "not implemented for 'Bool'"),
               "operands of different dtypes are promoted as by every binary op (PyTorch refuses)"),
    "addmm": ("must have the same dtype", "operands of different dtypes are promoted, as by matmul"),
    "baddbmm": (("must have the same dtype", "Input dtypes must be the same"),
                "operands of different dtypes are promoted, as by matmul"),
    "einsum": (("not implemented for 'Bool'", "expected scalar type"),
               "summed bools are contracted as int64, the dtype PyTorch gives where it can; operands of "
               "different dtypes are promoted, as by matmul"),
    "setitem": ("Index put requires the source and destination dtypes match",
                "x[index] = v converts v to x's dtype for every kind of index, as NumPy and basic indexing"),
}


# Ops whose PyTorch answer at a non-finite input depends on the kernel's path (the SIMD lane an element
# falls in, the dtype), not on the input: {op name: what PyTorch 2.13's CPU kernels do}. A program that
# feeds such an op an inf or NaN is compared up to that step (the answer after it is not PyTorch's to
# give); tests/test_elementwise_rules.py pins tinytensor's answers there.
TORCH_PATH_DEPENDENT: dict = {
    "hardtanh": "the gradient at NaN is 0 in a float64 vector lane and gy in the scalar tail",
    "relu6": "hardtanh(x, 0, 6): its gradient at NaN, the same",
    "hardshrink": "the gradient at NaN is 0 in a float64 vector lane and gy in the scalar tail",
    "softshrink": "its gradient at NaN, the same (and the sign of its zeros: +0 in a vector lane, x · 0 in "
                  "the scalar tail)",
    "gelu": "gelu(inf) is NaN in float32 (the vectorised erf) and inf in float64; tinytensor gives inf",
    # not path-dependent, but known differences at inf/NaN inputs, compared up to them the same way
    "cdist": "PyTorch's p = 0 counts a NaN difference as NaN (tinytensor: as nonzero); its inf gradients",
    "cosine_similarity": "PyTorch's gradient at an inf or NaN element (NaN everywhere along dim)",
    "var_mean": "PyTorch's mean here is Welford's running mean, NaN once an inf meets a finite value (its "
                "torch.mean gives inf); tinytensor's is mean's",
    "std_mean": "its mean, the same",
    "unique": "along a dim, PyTorch orders slices holding NaN by its sort's comparisons (NaN < x is False)",
}


def _nonfinite_input(step: Step, tenv: dict) -> bool:
    torch = _torch()
    for a in step.call.args:
        t = tenv.get(str(a)) if isinstance(a, Code) else None
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return True
    return False


def _extension(op: FuzzOp, torch_error: BaseException) -> bool:
    """Whether torch refused with (one of) the error texts of an extension listed for the op."""
    base = op.name[:-1] if op.name.endswith("_") and op.name[:-1] in EXTENSIONS else op.name  # abs_: abs's
    texts = EXTENSIONS.get(base, ((),))[0]
    return any(t in str(torch_error) for t in ((texts,) if isinstance(texts, str) else texts))


def _declared(e: BaseException, op: FuzzOp, device: str) -> bool:
    """A refusal that is a documented decision: NotImplementedError off cpu, or the op's may_refuse."""
    if isinstance(e, NotImplementedError) and device != "cpu":
        return True
    return any(isinstance(e, kind) and text in str(e) for kind, text in op.may_refuse)


def check_program(prog: Program) -> str:
    """Run the tinytensor side of a drawn program and compare it with torch's; raise Discrepancy.
    Returns "ok", "raised" (both sides raised), "unsupported" (declared unsupported) or "path-dependent"
    (an op of TORCH_PATH_DEPENDENT met a non-finite input: compared up to it)."""
    with _quiet():
        return _check_program(prog)


def _check_program(prog: Program) -> str:
    torch = _torch()
    try:
        env = _make_leaves(prog, "tt")
    except TypeError:  # a dtype the device does not hold (float16 on strict)
        if prog.device == "cpu":
            raise
        return "unsupported"
    tenv = prog.torch_env
    for k, step in enumerate(prog.steps):
        last = k == len(prog.steps) - 1
        if step.op.name in TORCH_PATH_DEPENDENT and _nonfinite_input(step, tenv):
            return "path-dependent"  # compared up to here (TORCH_PATH_DEPENDENT)
        try:
            out = _run_step(step, env, "tt")
        except Exception as e:  # noqa: BLE001
            if last and prog.torch_error is not None:
                if _is_dim_error(prog.torch_error) and not isinstance(e, IndexError):
                    raise Discrepancy("raises", f"step {k + 1} ({step.op.name}): torch raised IndexError "
                                      f"({prog.torch_error}), tinytensor {type(e).__name__}: {e}",
                                      prog) from e
                return "raised"
            if _declared(e, step.op, prog.device):
                return "unsupported"
            raise Discrepancy("raises", f"step {k + 1} ({step.op.name}): tinytensor raised "
                              f"{type(e).__name__}: {e}; torch did not", prog) from e
        if last and prog.torch_error is not None:
            if _extension(step.op, prog.torch_error):
                return "extension"
            raise Discrepancy("raises", f"step {k + 1} ({step.op.name}): torch raised "
                              f"{type(prog.torch_error).__name__}: {prog.torch_error}; tinytensor did not "
                              f"(gave {_summary(out)})", prog)
        outs, touts = _outputs(out), _outputs(tenv[step.out], torch_side=True)
        if len(outs) != len(touts):
            raise Discrepancy("outputs", f"step {k + 1} ({step.op.name}): {len(outs)} outputs vs torch "
                              f"{len(touts)}", prog)
        for i, (o, t) in enumerate(zip(outs, touts)):
            _compare_output(o, t, f"step {k + 1} ({step.op.name}) output {i}", prog)
    if not prog.upstream:
        return "ok"
    _check_gradients(prog, env, tenv, torch)
    return "ok"


def _summary(out) -> str:
    if isinstance(out, tt.Tensor):
        return f"shape {out.shape} {out.dtype.name}"
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_summary(o) for o in out) + "]"
    return repr(out)


def _check_gradients(prog: Program, env: dict, tenv: dict, torch):
    last = prog.steps[-1].out
    idx = sorted(prog.upstream)
    outs = [_outputs(env[last])[i] for i in idx]
    touts = [_outputs(tenv[last], torch_side=True)[i] for i in idx]
    leaves = [lf for lf in prog.leaves if lf.requires_grad]
    try:
        ups = [tt.tensor(prog.upstream[i], device=prog.device) for i in idx]
    except TypeError:  # a dtype the device does not hold (float16 on strict): nothing to compare
        if prog.device == "cpu":
            raise
        return
    tups = [torch.from_numpy(prog.upstream[i].copy()) for i in idx]
    terr = err = None
    try:
        tgrads = torch.autograd.grad(touts, [tenv[lf.name] for lf in leaves], tups, allow_unused=True,
                                     retain_graph=True, materialize_grads=True)
    except Exception as e:  # noqa: BLE001
        terr = e
    try:
        grads = tt.autograd.grad(outs, [env[lf.name] for lf in leaves], ups, allow_unused=True,
                                 retain_graph=True)
    except Exception as e:  # noqa: BLE001
        err = e
    if (terr is None) != (err is None):
        said = f"torch raised {terr!r}" if terr is not None else f"tinytensor raised {err!r}"
        raise Discrepancy("raises", f"autograd.grad: {said}, the other did not", prog) from (err or terr)
    if terr is not None:
        return
    for lf, g, tg in zip(leaves, grads, tgrads):
        _compare_grad(g, tg, env[lf.name], f"grad of {lf.name}", prog)
    _check_backward(prog, env, tenv, outs[0], touts[0], ups[0], tups[0], leaves)


def _compare_grad(g, tg, leaf, what: str, prog: Program):
    if g is None:
        g = tt.zeros(leaf.shape, dtype=leaf.dtype, device=prog.device)
    if g.shape != leaf.shape or g.dtype is not leaf.dtype:
        raise Discrepancy("grad", f"{what}: shape {g.shape} {g.dtype.name} for a leaf of shape "
                          f"{leaf.shape} {leaf.dtype.name}", prog)
    msg = _compare_arrays(g.numpy(), tg.detach().numpy(), _program_rtol(prog))
    if msg:
        raise Discrepancy("grad", f"{what}: {msg}", prog)


def _check_backward(prog, env, tenv, out, tout, up, tup, leaves):
    """backward() into .grad: the same values, and every .grad an array its leaf owns (writable, not
    shared with another leaf's .grad): doubling each .grad in place doubles only that one."""
    tout.backward(tup)
    try:
        out.backward(up)
    except Exception as e:  # noqa: BLE001
        raise Discrepancy("raises", f"backward(): tinytensor raised {e!r}; torch did not", prog) from e
    pairs = [(env[lf.name], tenv[lf.name], lf.name) for lf in leaves]
    for t, tt_, name in pairs:
        if tt_.grad is None:
            tt_.grad = _torch().zeros_like(tt_)
        if t.grad is None:
            continue  # allowed: PyTorch leaves .grad None for a leaf backward did not reach
        _compare_grad(t.grad, tt_.grad, t, f".grad of {name} after backward()", prog)
    before = {name: t.grad.numpy().copy() for t, _, name in pairs if t.grad is not None}
    with tt.no_grad():
        for t, _, name in pairs:
            if t.grad is None:
                continue
            try:
                t.grad.mul_(2.0)
            except Exception as e:  # noqa: BLE001
                raise Discrepancy("grad", f".grad of {name} cannot be updated in place: {e!r}", prog) from e
    for t, _, name in pairs:
        if t.grad is not None:
            msg = _compare_arrays(t.grad.numpy(), before[name] * 2.0, F64_RTOL)
            if msg:
                raise Discrepancy("grad", f".grad of {name} shares memory with another tensor: after "
                                  f"doubling each .grad once, {msg}", prog)


# ---- a survey: many examples, every distinct discrepancy once -------------------------------------

def signature(d: Discrepancy, prog: Program) -> tuple:
    """What makes two discrepancies the same finding: the kind, the ops, the detail without numbers."""
    detail = re.sub(r"\[[^\]]*\]|\([^)]*\)|-?\d+(\.\d+)?(e-?\d+)?|inf|nan", "#", d.detail)
    return d.kind, d.op, detail[:160]


def survey(device: str, examples_per_op: int, ops: list | None = None, seed: int = 0) -> dict:
    """Run the fuzzer without stopping at failures: {signature: [count, shortest description]}."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    found: dict = {}

    def one(data, name):
        prog = draw_program(data, device, first=name)
        try:
            check_program(prog)
        except Discrepancy as d:
            key = signature(d, prog)
            text = f"{d.kind}: {d.detail}\n{prog.describe()}"
            entry = found.setdefault(key, [0, text])
            entry[0] += 1
            if len(text) < len(entry[1]):
                entry[1] = text

    for name in ops or sorted(OPS):
        run = given(data=st.data(), name=st.just(name))(one)
        run = settings(max_examples=examples_per_op, deadline=None, database=None, phases=(Phase.generate,),
                       suppress_health_check=list(HealthCheck))(run)
        hseed(seed)(run)()
    return found
