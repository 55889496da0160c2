"""Regenerate the committed figures in docs/assets/ from the pages' own code blocks.

    python docs/gen_figures.py

Each page listed below is run exactly as tests/test_docs.py runs it (blocks in order, one namespace),
but with docs/assets/ as the working directory, so the figures its blocks save with
``plt.savefig("name.png")`` land there. The graph drawing of the autograd page is rendered from the
DOT text that page prints (it needs Graphviz's ``dot`` program, which CI does not: CI checks the text).
Keep every image under 200 KB (tests/test_docs.py checks it).
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ASSETS = DOCS / "assets"
sys.path.insert(0, str(DOCS.parent))  # the repository's tinytensor, installed or not


def _load_test_module():
    spec = importlib.util.spec_from_file_location("test_docs", DOCS.parent / "tests" / "test_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    td = _load_test_module()
    ASSETS.mkdir(exist_ok=True)

    namespace = td.run_page(DOCS / "autograd.md", ASSETS)
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=namespace["dot"], capture_output=True, text=True,
                             check=True).stdout
        (ASSETS / "autograd_graph.svg").write_text(svg, encoding="utf-8")
    else:
        print("Graphviz `dot` not found: autograd_graph.svg left as it is")

    for page in ("transformer.md",):
        if (DOCS / page).exists():
            td.run_page(DOCS / page, ASSETS)

    for f in sorted(ASSETS.iterdir()):
        if f.suffix in (".png", ".svg"):
            print(f"{f.name:32s} {f.stat().st_size / 1024:7.1f} KB")


if __name__ == "__main__":
    main()
