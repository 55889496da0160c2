"""MkDocs hooks: a browsable page for every source file, and links and excerpts that name code by symbol.

Pages point at code by *name*, not by line number, so the links stay right when the code moves:

* ``[text](src:tinytensor/autograd/engine.py::run_backward)`` links to the line where
  ``run_backward`` starts on the generated page of ``engine.py`` (``src:path`` alone links to the file).
* A line ``<!-- code: tinytensor/autograd/engine.py::Node.release -->`` is replaced by that
  definition's source, shown with its real line numbers, under a link to it.

Symbols are top-level functions, classes and assignments, or ``Class.method``. An unknown file or
symbol stops the build, so a renamed function cannot leave a silently broken page behind.

The site needs no network: MathJax comes from the installed Python package
``django-static-mathjax`` (a docs dependency) and is copied into ``assets/mathjax/``, and the
header's repository link does not ask GitHub's API for star counts.
"""
from __future__ import annotations

import ast
import html
import importlib.util
import os
import posixpath
import re
from functools import lru_cache

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

SOURCE_ROOTS = ("tinytensor", "tinytensor_nn", "benchmarks", "examples")
CODE_DIR = "code"  # the generated pages live under docs/code/<path>.md (never on disk)
_PLACEHOLDER = "<!-- tinytensor-source-listing -->"
_LINK = re.compile(r"\]\(src:([\w./-]+\.py)(?:::([\w.]+))?\)")
# code is shown as written: links inside fenced blocks and `code spans` are left alone
_CODE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$|`[^`\n]+`", re.S | re.M)
_EXCERPT = re.compile(r"^<!-- code: ([\w./-]+\.py)::([\w.]+) -->[ \t]*$", re.M)
# a line of a generated source page: <span id="L-12">...</span> (pygments' linespans)
_LINE = re.compile(r'<span id="L-(\d+)">')

MATHJAX_DIR = "assets/mathjax"  # where the site serves MathJax from (mkdocs.yml's extra_javascript)
# MathJax's TeX-to-HTML component, the fonts it draws with, and what it loads on demand (TeX
# extensions autoloaded by a macro, the menu's accessibility tools)
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y", "sre", "ui")


def _repo_root(config) -> str:
    return os.path.dirname(os.path.abspath(config.config_file_path))


def _source_files(root: str) -> list[str]:
    out = []
    for top in SOURCE_ROOTS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    out.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return out


@lru_cache(maxsize=None)
def _definitions(path: str, mtime: float) -> dict[str, tuple[int, int]]:
    """{"name": (first_line, last_line)} for top-level definitions and methods of top-level classes."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    defs: dict[str, tuple[int, int]] = {}

    def span(node):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return first, node.end_lineno

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = span(node)
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        defs[f"{node.name}.{sub.name}"] = span(sub)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    defs[t.id] = span(node)
    return defs


def _locate(root: str, path: str, symbol: str | None, where: str) -> tuple[int, int]:
    full = os.path.join(root, path)
    if not os.path.isfile(full):
        raise PluginError(f"{where}: source file {path!r} does not exist")
    if symbol is None:
        return 1, 1
    defs = _definitions(full, os.path.getmtime(full))
    if symbol not in defs:
        raise PluginError(f"{where}: {path} has no top-level definition or method named {symbol!r}")
    return defs[symbol]


def _code_page(path: str) -> str:
    return f"{CODE_DIR}/{path}.md"


def _relative(page_src: str, target: str) -> str:
    return posixpath.relpath(target, posixpath.dirname(page_src) or ".")


def _mathjax_root() -> str:
    """MathJax's ``es5`` folder inside the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        es5 = os.path.join(folder, "static", "mathjax", "es5")
        if os.path.isfile(os.path.join(es5, MATHJAX_FILES[0])):
            return es5
    raise PluginError("MathJax is not installed: pip install -e '.[docs]' (django-static-mathjax)")


def _mathjax_files(config) -> list[File]:
    es5 = _mathjax_root()
    out = []
    for name in MATHJAX_FILES:
        full = os.path.join(es5, name)
        paths = [full] if os.path.isfile(full) else [
            os.path.join(d, f) for d, _, fs in sorted(os.walk(full)) for f in sorted(fs)]
        for path in paths:
            rel = os.path.relpath(path, es5).replace(os.sep, "/")
            out.append(File.generated(config, f"{MATHJAX_DIR}/{rel}", abs_src_path=path))
    return out


def _source_listing(code: str) -> str:
    """A file's code with a number and an anchor on every line, for the generated pages.

    Each line is a ``<span id="L-n" class="line">`` (the target of ``#L-n`` links, highlighted by
    ``:target`` in extra.css); its number is a link whose text is drawn by CSS from
    ``data-n``, so it is never copied with the code.
    """
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    listing = highlight(code, PythonLexer(), HtmlFormatter(linespans="L", wrapcode=True))

    def line(m):
        n = m[1]
        return f'<span id="L-{n}" class="line"><a class="linenos" href="#L-{n}" data-n="{n}"></a>'

    return _LINE.sub(line, listing)


# ---- hooks -------------------------------------------------------------------------------------

def on_files(files, config):
    root = _repo_root(config)
    for path in _source_files(root):
        # left out of the search index: every identifier of every file would drown the pages
        content = f"---\nsearch:\n  exclude: true\n---\n\n# `{path}`\n\n{_PLACEHOLDER}\n"
        files.append(File.generated(config, _code_page(path), content=content))
    for file in _mathjax_files(config):
        files.append(file)
    return files


def on_page_markdown(markdown, page, config, files):
    root = _repo_root(config)
    src = page.file.src_uri
    if src.startswith(CODE_DIR + "/"):
        return markdown

    def link(m):
        path, symbol = m.group(1), m.group(2)
        first, _ = _locate(root, path, symbol, src)
        anchor = f"#L-{first}" if symbol else ""
        return f"]({_relative(src, _code_page(path))}{anchor})"

    def excerpt(m):
        path, symbol = m.group(1), m.group(2)
        first, last = _locate(root, path, symbol, src)
        with open(os.path.join(root, path), encoding="utf-8") as f:
            lines = f.read().splitlines()[first - 1 : last]
        href = f"{_relative(src, _code_page(path))}#L-{first}"
        return (
            f"[`{path}`, lines {first}–{last}]({href})\n\n"
            f'```python linenums="{first}"\n' + "\n".join(lines) + "\n```"
        )

    markdown = _EXCERPT.sub(excerpt, markdown)
    out, pos = [], 0
    for m in _CODE.finditer(markdown):
        out.append(_LINK.sub(link, markdown[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_LINK.sub(link, markdown[pos:]))
    return "".join(out)


def on_page_content(content, page, config, files):
    src = page.file.src_uri
    if not (src.startswith(CODE_DIR + "/") and _PLACEHOLDER in content):
        return content
    path = src[len(CODE_DIR) + 1 : -len(".md")]
    with open(os.path.join(_repo_root(config), path), encoding="utf-8") as f:
        code = f.read()
    return content.replace(_PLACEHOLDER, f'<div class="source-listing">{_source_listing(code)}</div>'
                           f"<p><em>{html.escape(path)}</em>, {code.count(chr(10))} lines</p>")


def _plain_repository_link(output: str) -> str:
    # Material's header fetches the repository's stars and forks from GitHub's API; the site makes
    # no request to another host, so the link stays a plain link
    return output.replace('class="md-source" data-md-component="source"', 'class="md-source"')


def on_post_page(output, page, config):
    return _plain_repository_link(output)


def on_post_template(output_content, template_name, config):
    return _plain_repository_link(output_content)  # the 404 page
