"""The documentation runs: every Python code block of every page, and the site build.

Conventions (also described in docs/contributing.md):

* Every fenced block whose info string starts with ``python`` is executed. The blocks of one page run
  in order, in one namespace, like the cells of a notebook, with the working directory set to a
  temporary folder (figures saved there are thrown away; the committed ones come from
  ``docs/gen_figures.py``) and matplotlib on its Agg backend.
* A ``python`` block followed (blank lines allowed) by a block opened with ```` ```text title="Output" ````
  must print exactly that text: trailing spaces on each line and trailing blank lines are ignored,
  nothing else is.
* A block that must not run carries the class ``norun`` in braces after its language:
  ```` ```python {.norun title="conftest.py"} ```` (the one form that Markdown also reads as code;
  every fence header is checked to render as a code block). It is shown but not executed, for code
  that cannot run here (a file of the reader's own project, hardware CI lacks). Use it sparingly.
* ``python -m mkdocs build --strict`` must succeed: every link, reference and anchor resolves and
  every docstring renders.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# an info string: the language, then options (title="...") or attributes in braces ({.norun ...})
_INFO = re.compile(r"^(?P<lang>[^\s{]*)\s*(?:\{(?P<attrs>[^}]*)\}|(?P<options>.*))$")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    code: str
    expected: str | None  # the output the block must print, or None
    run: bool


def _fences(text: str):
    """(info, body, first_line) for each fenced block of a Markdown text, in order."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        if fence[0] == "`" and "`" in info:  # a code span at the start of a line, not a fence
            i += 1
            continue
        body, j = [], i + 1
        while j < len(lines):
            close = lines[j].strip()
            if close.startswith(fence[0] * len(fence)) and set(close) == {fence[0]}:
                break
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        yield info, "\n".join(body), i + 1, j
        i = j + 1


def _classes(info: str) -> set[str]:
    """The classes given in braces in a fence's info string: ``python {.norun}`` -> {"norun"}."""
    m = _INFO.match(info)
    attrs = (m["attrs"] or "") if m else ""
    return {word[1:] for word in attrs.split() if word.startswith(".")}


def collect_blocks(path: Path) -> list[Block]:
    """The Python blocks of one page with the output each must print."""
    name = path.relative_to(DOCS).as_posix() if path.is_relative_to(DOCS) else path.name
    text = path.read_text(encoding="utf-8")
    fences = list(_fences(text))
    lines = text.splitlines()
    blocks = []
    for k, (info, body, line, end) in enumerate(fences):
        lang = info.split()[0] if info else ""
        if lang != "python":
            continue
        expected = None
        if k + 1 < len(fences):
            nxt_info, nxt_body, nxt_line, _ = fences[k + 1]
            between = lines[end + 1 : nxt_line - 1]
            if (nxt_info.startswith("text") and 'title="Output"' in nxt_info
                    and all(not s.strip() for s in between)):
                expected = nxt_body
        blocks.append(Block(name, line, body, expected, run="norun" not in _classes(info)))
    return blocks


def _normalize(out: str) -> str:
    return "\n".join(line.rstrip() for line in out.strip("\n").splitlines())


def run_page(path: Path, workdir: Path) -> dict:
    """Run a page's blocks in order in one namespace (returned, for docs/gen_figures.py).

    Raises AssertionError naming the page and line of the first block that fails or prints
    something other than its shown output.
    """
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__docs__"}
    old = os.getcwd()
    os.chdir(workdir)
    try:
        for block in collect_blocks(path):
            if not block.run:
                continue
            buf = io.StringIO()
            where = f"{block.page}:{block.line}"
            try:
                with contextlib.redirect_stdout(buf):
                    exec(compile(block.code, where, "exec"), namespace)
            except Exception as e:
                raise AssertionError(f"code block at {where} raised {type(e).__name__}: {e}\n"
                                     f"--- printed so far ---\n{buf.getvalue()}") from e
            out = buf.getvalue()
            if block.expected is not None and _normalize(out) != _normalize(block.expected):
                raise AssertionError(
                    f"code block at {where} printed something other than the output shown under it\n"
                    f"--- shown ---\n{_normalize(block.expected)}\n--- printed ---\n{_normalize(out)}"
                )
    finally:
        os.chdir(old)
        import matplotlib.pyplot as plt

        plt.close("all")
    return namespace


PAGES = sorted(p for p in DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_code_blocks_run_and_print_what_the_page_shows(page, tmp_path):
    import tinytensor as tt
    from tinytensor import backends

    # pages seed the generator and register example backends: leave no trace for other tests
    state = tt.get_rng_state()
    registry = [dict(d) for d in (backends._registry, backends._device_types, backends._instances)]
    try:
        run_page(page, tmp_path)
    finally:
        tt.set_rng_state(state)
        for live, saved in zip((backends._registry, backends._device_types, backends._instances), registry):
            live.clear()
            live.update(saved)


def test_the_docs_have_checked_examples():
    blocks = [b for p in PAGES for b in collect_blocks(p)]
    assert len([b for b in blocks if b.run]) >= 40
    assert len([b for b in blocks if b.expected is not None]) >= 20
    for name in ("getting-started.md", "autograd.md", "backends.md", "transformer.md"):
        page = [b for b in blocks if b.page == name]
        assert any(b.expected is not None for b in page), f"{name} shows no checked output"


def test_output_blocks_follow_a_python_block():
    """A shown output that no block produces would never be checked."""
    for page in PAGES:
        fences = list(_fences(page.read_text(encoding="utf-8")))
        checked = {b.line for b in collect_blocks(page) if b.expected is not None}
        python_lines = [line for info, _, line, _ in fences if info.split()[:1] == ["python"]]
        for k, (info, _, line, _) in enumerate(fences):
            if info.startswith("text") and 'title="Output"' in info:
                prev = [pl for pl in python_lines if pl < line]
                assert prev and prev[-1] in checked and fences[k - 1][0].startswith("python"), \
                    f"{page.name}:{line}: an Output block must directly follow a python block"


def test_collector_understands_the_conventions(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# t\n\n```python\nx = 2\nprint(x + 1)\n```\n\n```text title=\"Output\"\n3\n```\n\n"
        "```python {.norun title=\"conftest.py\"}\nraise SystemExit\n```\n\n```python\nprint(x)\n```\n",
        encoding="utf-8",
    )
    blocks = collect_blocks(page)
    got = [(b.line, b.expected, b.run) for b in blocks]
    assert got == [(3, "3", True), (12, None, False), (16, None, True)]
    assert [(b.page, b.code) for b in blocks][0] == ("p.md", "x = 2\nprint(x + 1)")
    bad = tmp_path / "bad.md"
    bad.write_text("```python\nprint(1)\n```\n```text title=\"Output\"\n2\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="printed something other"):
        run_page(bad, tmp_path)


def test_every_fence_header_is_read_as_code_by_markdown():
    """A header Markdown does not take for a fence (```` ```python norun ````) shows the code as prose.

    Every fenced block of every page is rendered alone with the site's Markdown extensions; each
    must come out as a code block.
    """
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("pymdownx")
    from mkdocs.utils.yaml import yaml_load

    with open(ROOT / "mkdocs.yml", encoding="utf-8") as f:
        entries = yaml_load(f)["markdown_extensions"]
    names = [e if isinstance(e, str) else next(iter(e)) for e in entries]
    configs = {k: v for e in entries if isinstance(e, dict) for k, v in e.items()}
    md = markdown.Markdown(extensions=names, extension_configs=configs)
    bad = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lines = text.splitlines()
        for info, _, line, _ in _fences(text):
            if not info:
                continue
            fence = _FENCE.match(lines[line - 1])["fence"]
            html = md.reset().convert(f"{fence}{info}\nx = 1\n{fence}\n")
            if not html.lstrip().startswith(("<div", "<pre")):
                bad.append(f"{page.relative_to(DOCS).as_posix()}:{line}: {fence}{info}")
    assert not bad, ("Markdown shows these blocks as prose, not code (a block that must not run is "
                     "written ```python {.norun title=\"...\"}):\n" + "\n".join(bad))
    assert _classes('python {.norun title="conftest.py"}') == {"norun"}
    assert _classes('python title="conftest.py"') == set()


def test_mkdocs_build_strict(built_site):
    site = built_site  # the fixture fails the test if the strict build does
    for page in ("getting-started", "autograd", "backends", "transformer", "performance"):
        assert (site / page / "index.html").is_file()
    # the generated source pages exist and carry line anchors
    engine = (site / "code/tinytensor/autograd/engine.py/index.html").read_text(encoding="utf-8")
    assert 'id="L-1"' in engine


def test_committed_figures_are_small():
    for image in [*(DOCS / "assets").glob("*.png"), *(DOCS / "assets").glob("*.svg")]:
        size = image.stat().st_size
        assert size < 200_000, f"{image.name} is {size} bytes; keep figures under 200 KB"


def test_source_references_resolve_by_name_and_fail_loudly():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    first, last = hooks._locate(str(ROOT), "tinytensor/autograd/engine.py", "run_backward", "test")
    lines = (ROOT / "tinytensor/autograd/engine.py").read_text(encoding="utf-8").splitlines()
    assert lines[first - 1].startswith("def run_backward(") and first < last <= len(lines)
    first, _ = hooks._locate(str(ROOT), "tinytensor/autograd/function.py", "Function.apply", "test")
    source = (ROOT / "tinytensor/autograd/function.py").read_text(encoding="utf-8").splitlines()
    assert "def apply(" in "\n".join(source[first - 1 : first + 1])  # decorator line, then the def
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="no top-level definition"):
        hooks._locate(str(ROOT), "tinytensor/autograd/engine.py", "no_such_function", "test")
    with pytest.raises(PluginError, match="does not exist"):
        hooks._locate(str(ROOT), "tinytensor/no_such_file.py", None, "test")
