"""``Module`` and ``Parameter``: the containers every layer is built from (PyTorch's API)."""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Iterator

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.dtypes import DTYPES


class Parameter(Tensor):
    """A tensor that a Module registers as learnable (requires_grad=True by default)."""

    __slots__ = ()

    def __init__(self, data: Tensor, requires_grad: bool = True):
        super().__init__(data.array, data.backend)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class: assign Parameters, buffers and sub-Modules as attributes; write forward()."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration through attributes (PyTorch's rules) ---------------------------------
    def __setattr__(self, name, value):
        """``m.w = Parameter(...)`` registers a parameter, ``m.sub = Module()`` a submodule; a name that is
        registered keeps its kind: a parameter takes only a Parameter or None, a submodule only a Module
        or None, a buffer only a Tensor or None (TypeError otherwise, as in PyTorch)."""
        d = self.__dict__
        if isinstance(value, Parameter):
            self._register_by_assignment(name, value, self._parameters if "_parameters" in d else None)
        elif "_parameters" in d and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {_typename(value)!r} as parameter {name!r} "
                    f"(Parameter or None expected); wrap it (m.{name} = nn.Parameter(t)) or write in place "
                    f"(with tt.no_grad(): m.{name}.copy_(t))"
                )
            self._parameters[name] = None  # `self.bias = None` keeps the slot registered
        elif isinstance(value, Module):
            self._register_by_assignment(name, value, self._modules if "_modules" in d else None)
        elif "_modules" in d and name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {_typename(value)!r} as child module "
                                f"{name!r} (Module or None expected)")
            self._modules[name] = None
        elif "_buffers" in d and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: cannot assign {_typename(value)!r} as buffer "
                                f"{name!r} (Tensor or None expected)")
            self._buffers[name] = value  # re-assigning a buffer keeps it a buffer (and its persistence)
        else:
            object.__setattr__(self, name, value)

    def _register_by_assignment(self, name: str, value, store: dict | None) -> None:
        """``m.name = value`` for a Parameter or Module: it takes the name over from any other kind."""
        if store is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"{'parameters' if isinstance(value, Parameter) else 'submodules'}")
        self.__dict__.pop(name, None)
        for other in (self._parameters, self._buffers, self._modules):
            other.pop(name, None)
        self.__dict__.get("_non_persistent", set()).discard(name)
        store[name] = value

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self.__dict__.get("_non_persistent", set()).discard(name)
                return
        object.__delattr__(self, name)

    def _check_new_name(self, kind: str, name, store: dict) -> None:
        """PyTorch's checks on a name given to register_buffer/register_parameter/add_module."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before registering a {kind}"
            )
        if not isinstance(name, str):
            raise TypeError(
                f"{type(self).__name__}: {kind} name should be a string, got {_typename(name)}"
            )
        if name == "" or "." in name:
            raise KeyError(
                f"{type(self).__name__}: {kind} name {name!r} must be non-empty and contain no '.'"
            )
        if name not in store and hasattr(self, name):
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists; delete it first")

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that belongs to the module's state (moved by .to()) but is not learned."""
        self._check_new_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}: cannot assign {_typename(tensor)!r} as buffer {name!r} "
                            f"(Tensor or None expected)")
        self._buffers[name] = tensor
        non_persistent = self.__dict__.setdefault("_non_persistent", set())
        if persistent:
            non_persistent.discard(name)
        else:
            non_persistent.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a Parameter, or None for an empty slot) under ``name``."""
        self._check_new_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot assign {_typename(param)!r} as parameter "
                            f"{name!r} (Parameter or None expected)")
        self._parameters[name] = param

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register ``module`` (or None for an empty slot) as the submodule ``name``."""
        self._check_new_name("submodule", name, self._modules)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {_typename(module)} is not a Module subclass")
        self._modules[name] = module

    # ---- calling ---------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The module's computation, written by each subclass; call the module (``model(x)``), not forward."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module (name ``prefix``) and every submodule, depth first, each
        once."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, mod = stack.pop(0)
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            stack[0:0] = [
                (f"{name}.{n}" if name else n, m) for n, m in mod._modules.items() if m is not None
            ]

    def modules(self) -> Iterator["Module"]:
        """This module and every submodule, depth first, each once."""
        return (m for _, m in self.named_modules())

    def named_children(self):
        """(name, module) for each direct submodule."""
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator["Module"]:
        """The direct submodules."""
        return (m for _, m in self.named_children())

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter (shared ones once); only this module's with
        ``recurse=False``."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, mod in mods:
            for pname, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, shared ones once (pass it to an optimizer); only this module's with
        ``recurse=False``."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, tensor) for every buffer (running statistics, masks ...), non-persistent ones
        included."""
        for mname, mod in self.named_modules(prefix):
            for bname, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self) -> Iterator[Tensor]:
        """Every buffer of this module and its submodules."""
        return (b for _, b in self.named_buffers())

    # ---- state ------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by dotted name (detached, sharing memory)."""
        out = OrderedDict()
        for mname, mod in self.named_modules():
            skip = mod.__dict__.get("_non_persistent", set())
            for name, t in list(mod._parameters.items()) + list(mod._buffers.items()):
                if t is not None and name not in skip:
                    out[f"{mname}.{name}" if mname else name] = t.detach()
        return out

    def load_state_dict(self, state: dict, strict: bool = True):
        """Copy tensors in by name, all or nothing: every key, shape, dtype and device is checked first,
        and on any error no tensor has changed. Shape, dtype and device mismatches always fail; missing and
        unexpected keys fail if strict (else they are returned, as in PyTorch)."""
        return self._prepare_load(state, strict)()

    def _prepare_load(self, state: dict, strict: bool = True, source: str | None = None):
        """Check ``state`` against this module's; return a function that writes it (and cannot fail).

        Raises RuntimeError listing every problem; ``source`` (a file name) is named in the message."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems, writes = [], []
        for k, target in own.items():
            if k not in state:
                continue
            src, problem = _fit(k, state[k], target)
            if problem:
                problems.append(problem)
            else:
                writes.append((target, src))
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if problems:
            where = f" from {source!r}" if source is not None else ""
            raise RuntimeError(f"load_state_dict for {type(self).__name__}{where}: " + " | ".join(problems)
                               + " (nothing was loaded)")

        def write():
            with tt.no_grad():
                for target, src in writes:
                    target.copy_(src)  # same shape, dtype and device: cannot fail half-way
            return _IncompatibleKeys(missing, unexpected)

        return write

    # ---- modes, devices, dtypes ----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on this module and every submodule (dropout, batch norm read it); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """``train(False)``: dropout off, batch norm uses its running statistics; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` on every parameter (False freezes them); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: None, or zeros with ``set_to_none=False``."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = tt.zeros_like(p.grad)

    def apply(self, fn) -> "Module":
        """Call fn(module) on every submodule (children first) and on self."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move/convert every parameter and buffer in place: model.to("cuda"), model.to(tt.float64)."""
        for mod in self.modules():
            for p in mod._parameters.values():
                if p is not None:
                    new = p.detach().to(*args, **kwargs)
                    if not new.dtype.is_floating_point:
                        raise TypeError(f"Module.to: parameters must stay floating point, got {new.dtype}")
                    p.array, p.backend = new.array, new.backend
                    if p.grad is not None:
                        p.grad = p.grad.to(*args, **kwargs)
            for name, b in mod._buffers.items():
                if b is not None:
                    if b.dtype.is_floating_point:
                        conv = b.to(*args, **kwargs)
                    else:  # integer and bool buffers (indices, masks) move but keep their dtype
                        conv = b.to(*[a for a in args if not _is_dtype(a)],
                                    **{k: v for k, v in kwargs.items() if k != "dtype"})
                    mod._buffers[name] = conv
        return self

    def float(self):
        """``to(tt.float32)``: floating-point parameters and buffers become float32; returns self."""
        return self.to(tt.float32)

    def double(self):
        """``to(tt.float64)``: floating-point parameters and buffers become float64; returns self."""
        return self.to(tt.float64)

    # ---- printing --------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments shown in the module's repr (``Linear(in_features=4, ...)``); override it to add
        yours."""
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout: ``Name(extra)`` on one line, else one line per extra_repr line and child."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        children = [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items()]
        if len(extra_lines) == 1 and not children:
            return f"{type(self).__name__}({extra})"
        lines = extra_lines + children
        return f"{type(self).__name__}(" + ("\n  " + "\n  ".join(lines) + "\n" if lines else "") + ")"


def _fit(key: str, src, target: Tensor) -> tuple[Tensor | None, str | None]:
    """``src`` as a tensor of ``target``'s dtype on its device, or a description of why it cannot be.
    A floating target takes any floating or integer source (rounded as copy_ does, like PyTorch); an
    integer target only integers; a bool target only bools."""
    if not isinstance(src, Tensor):
        try:
            src = tt.tensor(src, device=target.device)
        except Exception as e:  # a user's value of any kind: report it with the others
            return None, f"{key}: expected a Tensor, got {_typename(src)} ({e})"
    if tuple(src.shape) != tuple(target.shape):
        return None, f"size mismatch for {key}: checkpoint {tuple(src.shape)} vs model {tuple(target.shape)}"
    have, want = src.dtype, target.dtype
    if want.is_floating_point:
        fits = have is not tt.bool
    else:
        fits = not have.is_floating_point and (have is tt.bool) == (want is tt.bool)
    if not fits:
        return None, f"{key}: dtype {have} cannot be loaded into a {want} tensor"
    if src.device != target.device:
        return None, (f"{key} is on {src.device} but the model is on {target.device}; load with device= "
                      f"or move the state first")
    with tt.no_grad():
        return (src.detach() if have is want else src.detach().to(want)), None


def _typename(value) -> str:
    return type(value).__name__


def _is_dtype(a) -> bool:
    """Whether a .to() argument names a dtype (as Tensor.to reads it) rather than a device."""
    if isinstance(a, tt.DType) or a in (float, int, bool):
        return True
    return isinstance(a, str) and a.removeprefix("tinytensor.") in DTYPES


class _IncompatibleKeys(tuple):
    def __new__(cls, missing, unexpected):
        t = super().__new__(cls, (missing, unexpected))
        t.missing_keys, t.unexpected_keys = missing, unexpected
        return t


class Sequential(Module):
    """Modules applied in order: ``Sequential(a, b)(x)`` is ``b(a(x))``; ``torch.nn.Sequential``.

    Built from modules (named "0", "1", ...) or from one OrderedDict of named modules.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> model(tt.randn(3, 4)).shape
        (3, 2)
        >>> [name for name, _ in model.named_parameters()]
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(OrderedDict(list(self._modules.items())[i]))
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        """Add each of ``modules`` at the end; returns self."""
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(list(self._modules.values())[i])
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules whose parameters are registered."""

    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        """The names, in insertion order."""
        return self._modules.keys()

    def values(self):
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self):
        """(name, module) pairs, in insertion order."""
        return self._modules.items()


def _tensor_lines(items, type_name) -> str:
    """PyTorch's extra_repr of ParameterList/ParameterDict: one ``(key): Parameter containing: [type of
    size AxB]`` line per entry (the device where it is not the CPU); ``type_name(p)`` names the type."""
    lines = []
    for k, p in items:
        if isinstance(p, Tensor):
            device = "" if p.device == "cpu" else f" ({p.device})"
            kind = "Parameter" if isinstance(p, Parameter) else "Tensor"
            size = "x".join(str(n) for n in p.shape)
            lines.append(f"  ({k}): {kind} containing: [{type_name(p)} of size {size}{device}]")
        else:
            lines.append(f"  ({k}): Object of type: {_typename(p)}")
    return "\n".join(lines)


def _as_parameter(value):
    """A plain Tensor becomes a Parameter (sharing its memory), as PyTorch's containers wrap it."""
    return Parameter(value) if isinstance(value, Tensor) and not isinstance(value, Parameter) else value


class ParameterList(Module):
    """A list of parameters that a Module registers (named "0", "1", ...); ``torch.nn.ParameterList``.

    Tensors put in (by the constructor, ``append``, ``extend`` or ``pl[i] = t``) become Parameters.

    Examples:
        >>> params = nn.ParameterList([tt.zeros(2, 3), nn.Parameter(tt.ones(4))])
        >>> [(name, p.shape) for name, p in params.named_parameters()]
        [('0', (2, 3)), ('1', (4,))]
    """

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _index(self, idx) -> str:
        """The entry's name: ``idx`` (negative counts from the end) checked against the length."""
        idx = operator.index(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"ParameterList: index {idx} is out of range for a list of length {len(self)}")
        return str(idx % len(self))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(self[i] for i in range(*idx.indices(len(self))))
        return getattr(self, self._index(idx))

    def __setitem__(self, idx, param) -> None:
        setattr(self, self._index(idx), _as_parameter(param))

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __iadd__(self, values) -> "ParameterList":
        return self.extend(values)

    def append(self, value) -> "ParameterList":
        """Add ``value`` at the end (a Tensor becomes a Parameter); returns self."""
        self._size += 1
        self[self._size - 1] = value
        return self

    def extend(self, values) -> "ParameterList":
        """Add each of ``values`` at the end; returns self."""
        if not isinstance(values, Iterable) or isinstance(values, Tensor):  # never unpack a tensor
            raise TypeError(f"ParameterList.extend should be called with an iterable, but got "
                            f"{_typename(values)}")
        for v in values:
            self.append(v)
        return self

    def extra_repr(self) -> str:
        return _tensor_lines(enumerate(self), lambda p: p.dtype)  # tinytensor.float32


class ParameterDict(Module):
    """A dict of parameters that a Module registers under their keys; ``torch.nn.ParameterDict``.

    Tensors put in become Parameters. A plain dict given to the constructor or ``update`` is added in
    sorted key order, an OrderedDict, ParameterDict or sequence of pairs in its own order (PyTorch's rule).

    Examples:
        >>> params = nn.ParameterDict({"scale": tt.ones(3), "shift": tt.zeros(3)})
        >>> list(params.keys()), params["scale"].requires_grad
        (['scale', 'shift'], True)
    """

    def __init__(self, parameters=None):
        super().__init__()
        self._keys: dict = {}
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str):
        return getattr(self, _key(key))

    def __setitem__(self, key: str, value) -> None:
        setattr(self, _key(key), _as_parameter(value))
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, key)

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def keys(self):
        """The keys, in insertion order."""
        return self._keys.keys()

    def values(self):
        """The parameters, in insertion order."""
        return (self[k] for k in self._keys)

    def items(self):
        """(key, parameter) pairs, in insertion order."""
        return ((k, self[k]) for k in self._keys)

    def get(self, key: str, default=None):
        """``self[key]``, or ``default`` where there is no such key."""
        return self[key] if key in self else default

    def pop(self, key: str):
        """Remove ``key`` and return its parameter."""
        value = self[key]
        del self[key]
        return value

    def update(self, parameters) -> None:
        """Add (or replace) the entries of a mapping or of an iterable of (key, value) pairs."""
        if not isinstance(parameters, Iterable):
            raise TypeError(f"ParameterDict.update should be called with an iterable of key/value pairs, "
                            f"but got {_typename(parameters)}")
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = parameters.items()
        elif isinstance(parameters, Mapping):
            pairs = sorted(parameters.items())
        else:
            pairs = list(parameters)
            for j, p in enumerate(pairs):
                if not isinstance(p, Iterable) or len(p) != 2:
                    raise ValueError(f"ParameterDict.update: sequence element #{j} must be a (key, value) "
                                     f"pair, got {p!r}")
        for k, v in pairs:
            self[k] = v

    def extra_repr(self) -> str:
        return _tensor_lines(self.items(), lambda p: p.type())  # torch.FloatTensor, as PyTorch's

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called.")


def _key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"ParameterDict: keys must be strings, got {key!r} ({_typename(key)})")
    return key
