"""``Optimizer``: parameter groups, per-parameter state, zero_grad and state_dict (PyTorch's layout).

A step updates every parameter in place with its backend's array ops (``p.data`` is written, never
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
            yield p, p.grad.data, self.state.setdefault(p, {})

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
        """Restore hyper-parameters and state; state tensors are copied to each parameter's device,
        and floating ones to its dtype."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(groups)} parameter groups, "
                f"the optimizer {len(self.param_groups)}"
            )
        for saved, own in zip(groups, self.param_groups):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: a group has {len(saved['params'])} parameters "
                    f"in the state but {len(own['params'])} in the optimizer"
                )
        new_state = {}
        for saved, own in zip(groups, self.param_groups):
            for idx, p in zip(saved["params"], own["params"]):
                s = state_dict["state"].get(idx, state_dict["state"].get(str(idx)))
                if s is not None:
                    new_state[p] = {k: _cast_state(v, p, k) for k, v in s.items()}
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = copy.deepcopy(v)
        self.state = new_state


def _cast_state(value, p: Tensor, name: str):
    if not isinstance(value, Tensor):
        return value
    if tuple(value.shape) != p.shape:
        raise ValueError(f"load_state_dict: state {name!r} has shape {value.shape}, its parameter {p.shape}")
    host = value.numpy()
    if value.dtype.is_floating_point:
        host = host.astype(p.dtype.name)
    # always a fresh array on the parameter's device (the state must not alias the loaded dict)
    return Tensor(p.backend.from_host(host.copy()), p.backend)
