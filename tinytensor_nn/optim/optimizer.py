"""``Optimizer``: parameter groups, per-parameter state, zero_grad and state_dict (PyTorch's layout).

A step updates every parameter in place with its backend's array ops (``p.array`` is written, never
replaced), so state and parameters keep their dtype and device and no graph is recorded.
"""
from __future__ import annotations

import copy

from tinytensor import Tensor


def _modified(*tensors: Tensor) -> None:
    """Record that the arrays of ``tensors`` were updated in place: bumps their versions, so that a
    graph that saved one of them notices (as in PyTorch)."""
    for t in tensors:
        t._version[0] += 1


class Optimizer:
    """Base class: ``param_groups`` (dicts of "params" and hyper-parameters) and ``state[p]``."""

    @classmethod
    def _one_implementation(cls, foreach, fused, capturable: bool, differentiable: bool) -> None:
        """PyTorch's implementation switches. tinytensor has one implementation, which already updates
        each parameter with whole-array operations: ``foreach`` and ``fused`` (PyTorch's faster ways to
        the same update) choose nothing here and are accepted; ``capturable`` (CUDA graphs) and
        ``differentiable`` (a graph through the step) mean what tinytensor cannot do, so they raise."""
        name = cls.__name__
        for flag, value in (("foreach", foreach), ("fused", fused)):
            if value not in (None, True, False):
                raise TypeError(f"{name}: {flag} must be None, True or False, got {value!r}")
        if capturable:
            raise NotImplementedError(f"{name}(capturable=True) is for CUDA graph capture, which tinytensor "
                                      f"does not have; leave it False")
        if differentiable:
            raise NotImplementedError(f"{name}(differentiable=True): tinytensor's step does not record a "
                                      f"graph; differentiate through an update written with Tensor ops")

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}  # parameter -> dict of its state (keyed by identity)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, got a Tensor; "
                f"pass [tensor] or model.parameters()"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters, with hyper-parameters that default to the optimizer's."""
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf tensor (shape {p.shape})")
            if not p.dtype.is_floating_point:
                raise TypeError(f"{type(self).__name__}: parameters must be floating point, got {p.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one group")
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set to None, or fill with zeros when set_to_none=False)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = p.grad.detach()
                    p.grad.zero_()

    def step(self):
        """Update every parameter that has a gradient, once (each optimizer writes its rule)."""
        raise NotImplementedError

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.backend is not p.backend or tuple(p.grad.shape) != p.shape:
                raise RuntimeError(
                    f"{type(self).__name__}: the gradient ({p.grad.shape} on {p.grad.device}) does not "
                    f"match its parameter ({p.shape} on {p.device})"
                )
            yield p, p.grad.array, self.state.setdefault(p, {})

    # ---- state_dict --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"state": {index: {name: Tensor or number}}, "param_groups": [{..., "params": [index, ...]}]}
        with parameters numbered in group order (PyTorch's layout). Tensors are not copied."""
        index, groups, i = {}, [], 0
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = list(range(i, i + len(g["params"])))
            for p in g["params"]:
                index[id(p)] = i
                i += 1
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index and s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state, all or nothing: the whole state is checked first (groups,
        every parameter's state names, shapes and dtypes) and on any error nothing has changed. State
        tensors are copied to each parameter's device, and floating ones to its dtype."""
        self._prepare_load(state_dict)()

    def _expected_state(self, group: dict) -> dict:
        """{name: type} that a parameter's state must hold once it has any (``step`` int, the running
        averages Tensor); subclasses say which, for the hyper-parameters in ``group``."""
        return {}

    def _prepare_load(self, state_dict: dict, source: str | None = None, entry=None):
        """Check ``state_dict``; return a function that installs it (and cannot fail).

        Raises ValueError naming the parameter and the state entry, as ``entry(index, name)`` spells it
        (default ``state[index]['name']``); ``source`` (a file) is named too."""
        name = f"{type(self).__name__}.load_state_dict" + (f" from {source!r}" if source is not None else "")
        entry = entry or (lambda idx, key: f"state[{idx}][{key!r}]")

        def bad(msg):
            return ValueError(f"{name}: {msg} (nothing was loaded)")

        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise bad("expected a dict with 'state' and 'param_groups' (from Optimizer.state_dict())")
        groups, states = state_dict["param_groups"], state_dict["state"]
        if len(groups) != len(self.param_groups):
            raise bad(f"the state has {len(groups)} parameter groups, the optimizer {len(self.param_groups)}")
        merged_groups = []
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise bad(f"param group {i} is not a dict with 'params'")
            if len(saved["params"]) != len(own["params"]):
                raise bad(f"group {i} has {len(saved['params'])} parameters in the state but "
                          f"{len(own['params'])} in the optimizer")
            merged = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            merged_groups.append(dict(own, **merged))
        known = {str(i) for saved in groups for i in saved["params"]}
        unknown = [i for i in states if str(i) not in known]
        if unknown:
            raise bad(f"the state holds parameters {unknown} that no param group lists")
        new_state = {}
        for i, (saved, group) in enumerate(zip(groups, merged_groups)):
            expected = self._expected_state(group)
            for idx, p in zip(saved["params"], group["params"]):
                s = states.get(idx, states.get(str(idx)))
                if not s:
                    continue  # no state yet: the next step starts it, as for a fresh optimizer
                if not isinstance(s, dict):
                    raise bad(f"the state of parameter {idx} is a {type(s).__name__}, expected a dict")
                for key, kind in expected.items():
                    where = f"{entry(idx, key)} (group {i}, parameter of shape {p.shape})"
                    if key not in s:
                        raise bad(f"{where} is missing; the state holds {sorted(s)}")
                    v = s[key]
                    if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                        raise bad(f"{where} must be a non-negative int, got {v!r}")
                    if kind is Tensor and not (isinstance(v, Tensor) and v.dtype.is_floating_point):
                        raise bad(f"{where} must be a floating-point Tensor, got "
                                  f"{v.dtype if isinstance(v, Tensor) else type(v).__name__}")
                new_state[p] = {}
                for key, v in s.items():
                    if isinstance(v, Tensor) and tuple(v.shape) != p.shape:
                        raise bad(f"{entry(idx, key)} has shape {v.shape}, its parameter {p.shape}")
                    new_state[p][key] = _cast_state(v, p)

        def install():
            for own, merged in zip(self.param_groups, merged_groups):
                own.update(merged)
            self.state = new_state

        return install


def _cast_state(value, p: Tensor):
    """A state tensor as a fresh array on the parameter's device (floating ones in its dtype)."""
    if not isinstance(value, Tensor):
        return value
    host = value.numpy()
    if value.dtype.is_floating_point:
        host = host.astype(p.dtype.name)
    # always a fresh array on the parameter's device (the state must not alias the loaded dict)
    return Tensor(p.backend.from_host(host.copy()), p.backend)
