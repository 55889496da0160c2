"""A Griffe extension for the API reference (loaded by mkdocstrings, see mkdocs.yml).

Three things Griffe does not do the way this reference needs:

* **Built-in names in annotations.** Griffe resolves a name that a module does not define in the
  enclosing *packages* too, which Python never does. ``tinytensor`` defines ``bool``, ``int``,
  ``float`` ... (PyTorch's dtype names), so ``flag: bool`` in ``tinytensor.ops.sorting`` would be shown
  as the dtype ``bool_`` and linked to it. A built-in name that the annotation's own module does not
  define is made the built-in again.
* **Internal Functions.** The autograd Function subclasses behind the ops (``TanhBackward``,
  ``LinearFn`` ...) are not API: they are marked non-public, and the reference's ``filters: public``
  leaves them out (their code is on the source pages).
* **Helpers of the op modules.** ``tinytensor.ops`` and ``tinytensor_nn.functional`` list their public
  functions in ``__all__``; the other functions of their modules (``cast``, ``sum_to``, ``getitem`` ...)
  are the library's internals, reached through ``Tensor.to``, broadcasting and ``x[i]``.
* **Parameter tables.** A public function or constructor with more than two parameters whose
  docstring has no ``Args:`` section gets one built from its signature, with the description of the
  parameters whose meaning is the same everywhere in the library (``dtype``, ``device``,
  ``requires_grad`` ...); the others keep an empty description.
"""
from __future__ import annotations

import builtins
import re

import griffe

FUNCTION = "tinytensor.autograd.function.Function"
FUNCTION_NAMES = {FUNCTION, "tinytensor.autograd.Function", "tinytensor.Function"}  # and its re-exports
PACKAGES = ("tinytensor", "tinytensor_nn")
EXPORTING = ("tinytensor.ops", "tinytensor_nn.functional")  # packages whose __all__ is their API
BUILTIN_NAMES = frozenset(dir(builtins))

# parameters that mean one thing throughout the library
COMMON = {
    "dtype": "The dtype of the result (None: the function's default).",
    "device": 'Where the result lives: "cpu", "cuda", "cuda:1" ... (None: the default device).',
    "requires_grad": "Whether autograd records the ops on the result.",
    "generator": "The `tt.Generator` to draw from (None: the global generator, `tt.manual_seed`).",
    "keepdim": "Keep the reduced dimensions, with size 1.",
    "reduction": 'How the per-element losses combine: "mean", "sum" or "none".',
    "size_average": "PyTorch's deprecated flag; use `reduction`.",
    "reduce": "PyTorch's deprecated flag; use `reduction`.",
    "lr": "The learning rate.",
    "last_epoch": "The index of the last epoch, -1 to start fresh (PyTorch's convention).",
    "verbose": "Accepted for PyTorch compatibility; nothing is printed.",
}
# ... and in the constructor of a Module
MODULE_COMMON = {
    "dtype": "The dtype of the parameters and buffers (None: the default float dtype).",
    "device": 'Where the parameters and buffers live: "cpu", "cuda" ... (None: the default device).',
}
_ARGS = re.compile(r"^\s*(Args|Arguments|Parameters|Params):\s*$", re.M)


def _names(expr):
    if isinstance(expr, griffe.Expr):
        yield from (e for e in expr.iterate(flat=True) if isinstance(e, griffe.ExprName))


def _builtin_again(expr, obj) -> None:
    module = obj.module
    scopes = [obj if obj.is_class else obj.parent, module]
    for name in _names(expr):
        if (name.name in BUILTIN_NAMES and isinstance(name.parent, griffe.Object)
                and not any(s is not None and name.name in s.members for s in scopes)):
            name.parent = None


def _is_function_subclass(cls: griffe.Class, depth: int = 0) -> bool:
    """By the bases' names, so that it needs no other package loaded (tinytensor_nn's Functions)."""
    for base in cls.bases:
        path = base.canonical_path if isinstance(base, griffe.Expr) else str(base)
        if path in FUNCTION_NAMES:
            return True
        try:
            target = cls.modules_collection[path]
            target = target.final_target if target.is_alias else target
        except Exception:  # a base from outside the loaded packages
            continue
        if target.is_class and depth < 20 and _is_function_subclass(target, depth + 1):
            return True
    return False


def _params_section(func: griffe.Function, common: dict) -> str | None:
    params = [p for p in func.parameters if p.name not in ("self", "cls")]
    if len(params) <= 2:
        return None
    lines = ["Args:"]
    for p in params:
        star = "*" if p.kind is griffe.ParameterKind.var_positional else (
            "**" if p.kind is griffe.ParameterKind.var_keyword else "")
        lines.append(f"    {star}{p.name}: {common.get(p.name, '')}".rstrip())
    return "\n".join(lines)


def _add_params_table(obj, func: griffe.Function) -> None:
    """Give ``obj`` (a function, or a class with its ``__init__`` as ``func``) an Args section."""
    docstrings = [d for d in (obj.docstring, func.docstring) if d is not None]
    if not obj.docstring or any(_ARGS.search(d.value) for d in docstrings):
        return
    common = {**COMMON, **MODULE_COMMON} if obj.is_class and obj.path.startswith("tinytensor_nn") else COMMON
    section = _params_section(func, common)
    if section:
        obj.docstring.value = f"{obj.docstring.value.rstrip()}\n\n{section}"


class ReferenceExtension(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        if pkg.name not in PACKAGES:
            return
        for path in EXPORTING:
            if path.split(".")[0] == pkg.name:
                _hide_unexported(pkg[path.partition(".")[2]])
        for obj in _walk(pkg):
            if obj.is_function:
                for p in obj.parameters:
                    _builtin_again(p.annotation, obj)
                _builtin_again(obj.returns, obj)
                if not obj.name.startswith("_") and not (obj.parent and obj.parent.is_class
                                                         and obj.name == "__init__"):
                    _add_params_table(obj, obj)
            elif obj.is_attribute:
                _builtin_again(obj.annotation, obj)
            elif obj.is_class:
                if _is_function_subclass(obj) and obj.path != FUNCTION:
                    obj.public = False
                init = obj.members.get("__init__")
                if init is not None and not init.is_alias and init.is_function:
                    _add_params_table(obj, init)


def _hide_unexported(package: griffe.Module) -> None:
    exported = {e if isinstance(e, str) else e.name for e in package.exports or ()}
    for module in package.modules.values():
        for member in module.members.values():
            if not member.is_alias and not member.is_module and member.name not in exported:
                member.public = False


def _walk(obj):
    for member in list(obj.members.values()):
        if member.is_alias:
            continue
        yield member
        if member.is_module or member.is_class:
            yield from _walk(member)
