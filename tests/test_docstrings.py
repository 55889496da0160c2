"""The API reference is complete: every public name has a docstring and a place on the reference pages.

What counts as public:

* **Public modules**: ``tinytensor``, ``tinytensor.autograd``, ``tinytensor.cuda``, ``tinytensor.nn``
  (``tinytensor_nn``) with ``nn.functional``, ``nn.init``, ``nn.utils`` (and ``nn.einops`` where einops is
  installed), ``tinytensor.optim`` with ``optim.lr_scheduler``, ``tinytensor.utils.data`` and
  ``tinytensor.testing``; ``tinytensor.func``, ``tinytensor.autograd.forward_ad``,
  ``tinytensor.distributed`` and ``tinytensor.nn.parallel`` as soon as they exist.
* **Public names** of a module: its ``__all__``, or, where it has none, every attribute whose name does
  not start with ``_``, imported modules (and ``from __future__`` features) excepted. A class or
  function needs its own docstring (the first public name an object is reached by is the one
  reported). Any other value (a dtype such as ``tt.float32``, a table such as
  ``default_collate_fn_map``) is named on a reference page instead.
* **Public members** of a public class defined in tinytensor or tinytensor_nn: the functions,
  class/static methods and properties of the class and of its tinytensor bases whose names do not
  start with ``_``. A member needs its own docstring, unless it overrides a documented member of a base
  class (``Linear.forward`` is documented by ``Module.forward`` and the class docstring), as
  ``inspect.getdoc`` reads it. A method that *is* a function of the library (``Tensor.sin`` is
  ``tt.sin``) is documented by that function.

The second half builds the site once and checks what a reader sees: each public object in the
reference's inventory, signatures that show ``bool`` (not the dtype ``bool_``), constructors merged into
their classes, parameter tables, examples rendered as code, and no internal Function classes on the
pages. The ``>>>`` examples of the public docstrings run as doctests.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import re
import types
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"

PUBLIC_MODULES = [
    "tinytensor", "tinytensor.autograd", "tinytensor.cuda",
    "tinytensor.nn", "tinytensor.nn.functional", "tinytensor.nn.init", "tinytensor.nn.utils",
    "tinytensor.optim", "tinytensor.optim.lr_scheduler", "tinytensor.utils.data", "tinytensor.testing",
]
# checked once they exist (or, for nn.einops, once its dependency is installed)
OPTIONAL_MODULES = {
    "tinytensor.func": None, "tinytensor.autograd.forward_ad": None, "tinytensor.distributed": None,
    "tinytensor.nn.parallel": "tinytensor_nn.parallel", "tinytensor.nn.einops": "einops",
}


def _modules() -> list[tuple[str, types.ModuleType]]:
    """(public name, module): ``tinytensor.nn.functional`` is tinytensor_nn.functional by that name."""
    names = PUBLIC_MODULES + [m for m, needs in OPTIONAL_MODULES.items()
                              if importlib.util.find_spec(needs or m) is not None]
    return [(m, importlib.import_module(m)) for m in names]  # an import error is a failure


def _ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] in ("tinytensor", "tinytensor_nn")


def public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [n for n in names if not isinstance(getattr(module, n), types.ModuleType)
            and type(getattr(module, n)).__module__ != "__future__"]  # `from __future__ import ...`


def _documentable(value) -> bool:
    return inspect.isclass(value) or inspect.isroutine(value)


def public_objects() -> dict[str, object]:
    """Every public class and function (first public name -> object), and every other public value."""
    found, seen = {}, set()
    for modname, module in _modules():
        for name in public_names(module):
            value = getattr(module, name)
            key = id(value) if _documentable(value) else (module.__name__, name)
            if key not in seen:
                seen.add(key)
                found[f"{modname}.{name}"] = value
    return found


def _own_doc(obj) -> str:
    return (getattr(obj, "__doc__", None) or "").strip()


def _unwrap(attr):
    """The function behind a class attribute (method, classmethod, staticmethod, property), or None."""
    if isinstance(attr, property):
        return attr.fget
    if isinstance(attr, (classmethod, staticmethod)):
        return attr.__func__
    return attr if inspect.isroutine(attr) else None


def public_members() -> list[tuple[str, type, str, object]]:
    """(public class name, the class defining the member, member name, function), once per definition."""
    members, seen = [], set()
    for qual, cls in public_objects().items():
        if not (inspect.isclass(cls) and _ours(cls)):
            continue
        for base in cls.__mro__:
            if not _ours(base):
                continue
            for name, attr in vars(base).items():
                func = _unwrap(attr)
                if name.startswith("_") or func is None or (base, name) in seen:
                    continue
                seen.add((base, name))
                members.append((qual, base, name, func))
    return members


def _needs_own_doc(cls: type, name: str, func) -> bool:
    """Whether this member must carry its own docstring (see the module docstring)."""
    if getattr(func, "__qualname__", "").split(".")[0] != cls.__name__ and _ours(func):
        return False  # a library function used as a method: its own check covers it
    later = cls.__mro__[cls.__mro__.index(cls) + 1:]
    return not any(_own_doc(_unwrap(vars(b)[name]) or vars(b)[name]) for b in later if name in vars(b))


def test_every_public_name_has_a_docstring():
    missing = [q for q, v in public_objects().items() if _documentable(v) and not _own_doc(v)]
    assert not missing, f"{len(missing)} public names have no docstring:\n  " + "\n  ".join(missing)


def test_every_public_member_has_a_docstring():
    missing = [f"{qual}.{name}  (defined in {base.__qualname__})"
               for qual, base, name, func in public_members()
               if _needs_own_doc(base, name, func) and not _own_doc(func)]
    assert not missing, f"{len(missing)} public members have no docstring:\n  " + "\n  ".join(missing)


def test_the_definition_finds_the_api():
    objects, members = public_objects(), public_members()
    for name in ("tinytensor.zeros", "tinytensor.Tensor", "tinytensor.nn.Linear", "tinytensor.optim.Adam",
                 "tinytensor.utils.data.DataLoader", "tinytensor.testing.run_conformance",
                 "tinytensor.nn.functional.scaled_dot_product_attention", "tinytensor.autograd.grad"):
        assert name in objects
    assert "tinytensor.creation" not in objects and "tinytensor.nn.functional" not in objects  # modules
    names = {(q, n) for q, _, n, _ in members}
    for qual, name in [("tinytensor.Tensor", "shape"), ("tinytensor.Tensor", "backward"),
                       ("tinytensor.nn.Module", "parameters"), ("tinytensor.optim.Adam", "step")]:
        assert (qual, name) in names
    assert len(objects) > 250 and len(members) > 250


# ---- doctests ------------------------------------------------------------------------------------
def _docstrings_with_examples():
    objs = [(q, v) for q, v in public_objects().items() if _documentable(v)]
    objs += [(f"{q}.{n}", f) for q, _, n, f in public_members()]
    seen = set()
    for qual, obj in objs:
        for target in (obj, getattr(obj, "__init__", None) if inspect.isclass(obj) else None):
            doc = _own_doc(target) if target is not None else ""
            if ">>>" in doc and id(target) not in seen and _ours(target) and _written_here(target, doc):
                seen.add(id(target))
                yield qual, inspect.getdoc(target)


def _written_here(obj, doc: str) -> bool:
    """Whether the docstring is in the object's own source (not copied from another library's)."""
    try:
        return doc.splitlines()[0] in inspect.getsource(obj)
    except (OSError, TypeError):
        return False


EXAMPLES = list(_docstrings_with_examples())


@pytest.mark.parametrize("qual,doc", EXAMPLES, ids=[q for q, _ in EXAMPLES])
def test_docstring_examples_run(qual, doc):
    import numpy as np

    import tinytensor as tt

    state = tt.get_rng_state()
    tt.manual_seed(0)
    try:
        globs = {"tt": tt, "np": np, "nn": tt.nn, "F": tt.nn.functional}
        test = doctest.DocTestParser().get_doctest(doc, globs, qual, None, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        out = []
        runner.run(test, out=out.append)
        assert runner.failures == 0, "".join(out)
    finally:
        tt.set_rng_state(state)


# ---- the built reference ---------------------------------------------------------------------------
def _inventory(path: Path) -> set[str]:
    """The object names of a Sphinx (v2) objects.inv, as mkdocstrings writes it."""
    raw = path.read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode("utf-8")
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def site(built_site):
    return built_site


def _path(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _reference_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(REFERENCE.glob("*.md")))


def test_every_public_name_is_in_the_reference(site):
    inventory = _inventory(site / "objects.inv")
    text = _reference_text()
    missing = []
    for qual, value in public_objects().items():
        if _documentable(value) and "<locals>" not in value.__qualname__:
            if _path(value) not in inventory and qual not in inventory:
                missing.append(f"{qual} ({_path(value)})")
        elif f"`{qual.rpartition('.')[2]}`" not in text:
            missing.append(f"{qual} (a value: name it on its reference page)")
    assert not missing, (f"{len(missing)} public names are not on the reference pages "
                         f"(docs/reference/*.md):\n  " + "\n  ".join(missing))


def test_every_public_member_is_in_the_reference(site):
    inventory = _inventory(site / "objects.inv")
    objects = public_objects()
    text = _reference_text()
    missing = []
    for qual, base, name, func in public_members():
        cls = objects[qual]
        if not _needs_own_doc(base, name, func):
            if _ours(func) and func.__qualname__.split(".")[0] != base.__name__:  # tt.sin as Tensor.sin
                if f"`{name}`" not in text and _path(func) not in inventory:
                    missing.append(f"{qual}.{name}")
            continue
        if not {f"{_path(cls)}.{name}", f"{_path(base)}.{name}"} & inventory:
            missing.append(f"{qual}.{name}")
    assert not missing, (f"{len(missing)} public members are not on the reference pages:\n  "
                         + "\n  ".join(missing))


def _page(site: Path, name: str) -> str:
    return (site / "reference" / name / "index.html").read_text(encoding="utf-8")


def _section(html: str, ident: str) -> str:
    """The HTML of one object's documentation, from its heading to the next heading of its level."""
    start = html.index(f'id="{ident}"')
    level = html.rfind("<h", 0, start)
    tag = html[level:level + 3]
    nxt = html.find(tag, start)
    return html[start:nxt if nxt != -1 else len(html)]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_signatures_show_builtin_bool(site):
    for page in sorted((site / "reference").glob("*/index.html")):
        html = page.read_text(encoding="utf-8")
        for sig in re.findall(r'class="doc-signature.*?</code>', html, re.S):
            assert "bool_" not in _text(sig), f"{page.parent.name}: {_text(sig)[:200]}"
    sort = _text(_section(_page(site, "tinytensor"), "tinytensor.ops.sorting.sort"))
    assert "descending: bool = False" in sort


def test_classes_show_their_constructor_and_a_parameter_table(site):
    nn_page = _page(site, "tinytensor_nn")
    linear = _section(nn_page, "tinytensor_nn.layers.Linear")
    sig = _text(re.search(r'class="doc-signature.*?</code>', linear, re.S).group(0))
    assert "in_features: int" in sig and "bias: bool = True" in sig, sig
    assert "<table>" in linear and "in_features" in _text(linear.split("<table>", 1)[1])
    attention = _text(_section(nn_page, "tinytensor_nn.attention.MultiheadAttention"))
    assert "embed_dim" in attention and "num_heads" in attention
    adam = _text(_section(_page(site, "optim"), "tinytensor_nn.optim.adam.Adam"))
    assert "betas" in adam and "Parameters:" in adam


def test_examples_render_as_code(site):
    html = _page(site, "tinytensor")
    blocks = re.findall(r'<span class="gp">&gt;&gt;&gt;', html)
    assert len(blocks) >= 5, "the docstring examples do not render as highlighted code"
    assert "&gt;&gt;&gt;" not in "".join(re.findall(r"<p>.*?</p>", html, re.S)), \
        "an example was rendered as a paragraph"


def test_internal_functions_stay_out_of_the_reference(site):
    from tinytensor.autograd.function import Function

    for page in sorted((site / "reference").glob("*/index.html")):
        for ident in re.findall(r'<h[2-6] id="([\w.]+)"', page.read_text(encoding="utf-8")):
            module, _, name = ident.rpartition(".")
            try:
                obj = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError, ValueError):
                continue
            assert not (inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function), \
                f"{page.parent.name}: the internal Function {ident} is on the page"
