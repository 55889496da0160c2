"""``Module`` and ``Parameter``: the containers every layer is built from (PyTorch's API)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import tinytensor as tt
from tinytensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module registers as learnable (requires_grad=True by default)."""

    __slots__ = ()

    def __init__(self, data: Tensor, requires_grad: bool = True):
        super().__init__(data.data, data.backend)
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

    # ---- registration through attributes --------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        if name in self._buffers and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value  # re-assigning a buffer keeps it a buffer
            return
        if value is None and (name in self._parameters or name in self._modules):
            store = self._parameters if name in self._parameters else self._modules
            store[name] = None  # `self.bias = None` keeps the slot registered, as in PyTorch
            return
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, (Parameter, Module)):
            self.__dict__.pop(name, None)  # a plain attribute of that name would shadow the registration
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        else:
            object.__setattr__(self, name, value)

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
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that belongs to the module's state (moved by .to()) but is not learned."""
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def add_module(self, name: str, module: "Module | None") -> None:
        self.__dict__.pop(name, None)
        self._modules[name] = module

    # ---- calling ---------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
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
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator["Module"]:
        return (m for _, m in self.named_children())

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, mod in mods:
            for pname, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mname, mod in self.named_modules(prefix):
            for bname, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self) -> Iterator[Tensor]:
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
        """Copy tensors in by name. Shape mismatches always fail; missing/unexpected keys fail if strict."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [
            f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)
        ]
        problems = []
        if mismatched:
            problems.append("size mismatch for " + "; ".join(mismatched))
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if problems:
            raise RuntimeError(f"load_state_dict for {type(self).__name__}: " + " | ".join(problems))
        with tt.no_grad():
            for k, target in own.items():
                if k in state:
                    src = state[k]
                    if not isinstance(src, Tensor):
                        src = tt.tensor(src, dtype=target.dtype, device=target.device)
                    if src.device != target.device:
                        raise RuntimeError(
                            f"load_state_dict: {k} is on {src.device} but the model is on {target.device}; "
                            f"load with device= or move the state first"
                        )
                    target.copy_(src)
        return _IncompatibleKeys(missing, unexpected)

    # ---- modes, devices, dtypes ----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
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
                    p.data, p.backend = new.data, new.backend
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
        return self.to(tt.float32)

    def double(self):
        return self.to(tt.float64)

    # ---- printing --------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _is_dtype(a) -> bool:
    """Whether a .to() argument names a dtype (as Tensor.to reads it) rather than a device."""
    if isinstance(a, tt.DType) or a in (float, int, bool):
        return True
    return isinstance(a, str) and a.removeprefix("tinytensor.") in (
        "float16", "float32", "float64", "int32", "int64", "bool")


class _IncompatibleKeys(tuple):
    def __new__(cls, missing, unexpected):
        t = super().__new__(cls, (missing, unexpected))
        t.missing_keys, t.unexpected_keys = missing, unexpected
        return t


class Sequential(Module):
    """Modules applied in order."""

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
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
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
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
