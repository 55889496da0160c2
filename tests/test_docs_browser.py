"""The documentation site as a reader sees it: every page opened in headless Chromium, offline.

The site is built with ``mkdocs build --strict`` and served from this machine under the path of its
``site_url`` (as it is published); the browser may reach nothing else. On every page (the prose
pages, the API reference, the generated source pages and the 404 page), at a 1400 px window:

* no TeX is left as text (``\\(``, ``\\[``, ``$$``) and MathJax reports no error,
* the console shows no error and no script throws,
* every image has loaded,
* no content block is wider than its container (nothing clipped, nothing to scroll sideways),
* no literal ```` ``` ```` in the text (a fence that Markdown did not take for one),
* every link into the site and every anchor resolves,
* no request leaves this machine.

A screenshot of every page is saved under ``site/screenshots/`` (ignored by git), or under
``$TINYTENSOR_DOCS_SCREENSHOTS``. The browser is Debian's ``chromium`` (``$CHROMIUM`` names another
binary) driven by Playwright's Python package. Without them the test skips, unless
``TINYTENSOR_REQUIRE_BROWSER=1`` (as in CI) turns that into a failure.
"""
from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import shutil
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("TINYTENSOR_DOCS_SCREENSHOTS", ROOT / "site" / "screenshots"))
WINDOW = {"width": 1400, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # offline: no name resolves but this machine's (requests are also refused one by one below)
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
CHECKS = ("raw TeX", "console errors", "images", "too wide", "literal fences", "links", "requests")


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (pip install -e '.[docs]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    for module in ("mkdocs", "mkdocstrings", "material"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[docs]')"
    return None


_why = _missing_browser()
if _why is not None:
    if os.environ.get("TINYTENSOR_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"TINYTENSOR_REQUIRE_BROWSER=1 but {_why}")
    pytest.skip(_why, allow_module_level=True)


# ---- the site, built and served --------------------------------------------------------------

def _base_path() -> str:
    """The path the site is published under, from mkdocs.yml's site_url ("/" without one)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    m = re.search(r"^site_url:\s*['\"]?([^'\"\s#]+)", text, re.M)
    path = urllib.parse.urlsplit(m.group(1)).path if m else "/"
    return path if path.endswith("/") else path + "/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The built site under ``base`` and a 404 page (as a static host serves one) elsewhere."""

    base = "/"

    def translate_path(self, path):
        path = urllib.parse.urlsplit(path).path
        if not path.startswith(self.base):
            return os.path.join(self.directory, "\0none")
        return super().translate_path("/" + path[len(self.base):])

    def send_error(self, code, message=None, explain=None):
        page = os.path.join(self.directory, "404.html")
        if code != 404 or not os.path.isfile(page):
            return super().send_error(code, message, explain)
        body = Path(page).read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_site):
    return built_site


@pytest.fixture(scope="module")
def server(site):
    base = _base_path()
    handler = type("Handler", (_Handler,), {"base": base})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{base}"
    httpd.shutdown()
    httpd.server_close()


# ---- what the pages link to ------------------------------------------------------------------

class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


def _target(site: Path, rel: str) -> Path | None:
    """The file a site-relative URL path is served from, or None."""
    path = site / urllib.parse.unquote(rel)
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def _pages(site: Path) -> list[str]:
    """Every page of the site as a URL path relative to its root ("" is the home page)."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        rel = index.parent.relative_to(site).as_posix()
        pages.append("" if rel == "." else rel + "/")
    # source pages last: the prose pages are the ones to look at first
    return sorted(pages, key=lambda p: (p.startswith("code/"), p)) + ["no-such-page/"]


# ---- in the browser --------------------------------------------------------------------------

_SETTLE = """async () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) await mj.startup.promise;
  await document.fonts.ready;
}"""

# what the reader sees on the page, checked in the page itself
_INSPECT = r"""() => {
  const out = {tex: [], fences: [], images: [], wide: [], links: []};
  const root = document.querySelector(".md-content__inner") || document.body;
  const snippet = (s) => s.replace(/\s+/g, " ").trim().slice(0, 90);
  const where = (el) => {
    const id = el.id ? "#" + el.id : "";
    const cls = el.classList.length ? "." + [...el.classList].join(".") : "";
    return el.tagName.toLowerCase() + id + cls;
  };

  // text outside code: TeX that was never typeset, fences that were never parsed
  const skip = "pre, code, script, style, textarea, mjx-container, .md-search, .md-clipboard";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const text = n.textContent;
    if (/\\\(|\\\[|\$\$/.test(text)) out.tex.push(snippet(text));
    if (text.includes("```")) out.fences.push(snippet(text));
  }
  for (const err of document.querySelectorAll("mjx-merror")) {
    out.tex.push("MathJax error: " + snippet(err.getAttribute("data-mjx-error") || err.textContent));
  }

  for (const img of document.images) {
    if (!(img.complete && img.naturalWidth > 0)) out.images.push(img.currentSrc || img.src);
  }

  // Nothing clipped: a box that clips or scrolls (overflow other than visible) holds no wider
  // content, and no block reaches out of the page's column (the content area with the margins
  // that Material's tables and code blocks reach into). Reported innermost first.
  const column = (document.querySelector(".md-content") || root).getBoundingClientRect();
  const blocks = "p, li, dd, dt, h1, h2, h3, h4, h5, h6, blockquote, pre, code, a, table, td, th, " +
                 ".md-typeset__scrollwrap, .md-typeset__table, .highlight, .arithmatex, mjx-container, " +
                 ".admonition, details, summary, img, svg, .doc-signature, .doc-contents, .source-listing";
  const wide = [];
  for (const el of root.querySelectorAll(blocks)) {
    if (el.closest("mjx-assistive-mml")) continue;  // MathML for screen readers, clipped to nothing
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;  // not shown (inside a closed <details>)
    const clips = getComputedStyle(el).overflowX !== "visible";
    const inner = clips ? el.scrollWidth - el.clientWidth : 0;
    const outer = Math.round(Math.max(r.right - column.right, column.left - r.left));
    if (inner > 1 || outer > 1) wide.push([el, inner > 1 ? `${inner} px inside` : `${outer} px out`]);
  }
  for (const [el, by] of wide) {
    if (wide.some(([other]) => other !== el && el.contains(other))) continue;
    out.wide.push(`${where(el)}, ${by}: ${snippet(el.textContent)}`);
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) {
    out.wide.push(`the page scrolls sideways by ${doc.scrollWidth - doc.clientWidth} px`);
  }

  for (const a of document.querySelectorAll("a[href]")) {
    out.links.push(a.href);
  }
  return out;
}"""


def _launch(pw, profile: Path):
    """Chromium with a fresh profile: no first-run work, no background traffic."""
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport=WINDOW, service_workers="block",
    )


def inspect_site(site: Path, server: str, pages: list[str], screenshots: Path, profile: Path):
    """Open each page (a URL path under ``server``); ({check: [finding, ...]}, pages visited)."""
    from playwright.sync_api import sync_playwright

    base = urllib.parse.urlsplit(server)
    findings: dict[str, list[str]] = {check: [] for check in CHECKS}
    visited: list[str] = []
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = _launch(pw, profile)
        current = {"page": ""}

        def route(r):
            url = urllib.parse.urlsplit(r.request.url)
            if url.scheme in ("data", "blob") or url.netloc == base.netloc:
                return r.continue_()
            findings["requests"].append(f"{current['page'] or '/'}: {r.request.url}")
            return r.abort()

        context.route("**/*", route)
        page = context.pages[0] if context.pages else context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(
            f"{m.text} ({m.location.get('url', '')})"))
        page.on("pageerror", lambda e: errors.append(f"uncaught {e}"))

        for rel in pages:
            name = rel or "/"
            current["page"] = name
            errors.clear()
            response = page.goto(server + rel, wait_until="load")
            status = response.status if response else None
            if status != 200 and rel != "no-such-page/":
                findings["links"].append(f"{name}: the page answered {status}")
            page.evaluate(_SETTLE)
            seen = page.evaluate(_INSPECT)
            visited.append(name)
            for check, key in (("raw TeX", "tex"), ("literal fences", "fences"),
                               ("images", "images"), ("too wide", "wide")):
                findings[check] += [f"{name}: {item}" for item in seen[key]]
            expected = f" 404 (Not Found) ({server + rel})" if rel == "no-such-page/" else None
            findings["console errors"] += [f"{name}: {e}" for e in errors
                                           if not (expected and e.endswith(expected))]
            for href in sorted(set(seen["links"])):
                problem = _broken(site, base, href)
                if problem:
                    findings["links"].append(f"{name}: {href} ({problem})")
            shot = screenshots / ((rel.strip("/").replace("/", "__") or "index") + ".png")
            _screenshot(page, shot, full=not rel.startswith("code/"))
        context.close()
    return findings, visited


@pytest.fixture(scope="module")
def report(site, server, tmp_path_factory):
    """{check: [finding, ...]} over every page of the site, and the pages visited."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    started = time.perf_counter()
    findings, visited = inspect_site(site, server, _pages(site), SCREENSHOTS,
                                     tmp_path_factory.mktemp("chromium-profile"))
    elapsed = time.perf_counter() - started
    counts = ", ".join(f"{check}: {len(items)}" for check, items in findings.items())
    summary = f"{len(visited)} pages in {elapsed:.0f} s; findings by check: {counts}"
    print("\n" + summary)
    (SCREENSHOTS / "findings.txt").write_text(
        summary + "\n" + "".join(f"\n## {check}\n" + "".join(f"{item}\n" for item in items)
                                  for check, items in findings.items()), encoding="utf-8")
    return {"findings": findings, "visited": visited}


def _screenshot(page, path: Path, full: bool, tallest: int = 12_000):
    """The whole page (up to ``tallest`` px; a source page: its first screen) as a PNG."""
    if not full:
        return page.screenshot(path=str(path))
    height = min(page.evaluate("document.documentElement.scrollHeight"), tallest)
    page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": WINDOW["width"],
                                                          "height": height})


def _broken(site: Path, base: urllib.parse.SplitResult, href: str) -> str | None:
    """Why a link into the site does not resolve, or None (links elsewhere are not followed)."""
    url = urllib.parse.urlsplit(href)
    if url.scheme not in ("http", "https") or url.netloc != base.netloc:
        return None
    if not url.path.startswith(base.path):
        return "outside the site"
    target = _target(site, url.path[len(base.path):])
    if target is None:
        return "no such page"
    fragment = urllib.parse.unquote(url.fragment)
    if fragment and target.suffix == ".html" and fragment not in _ids(target):
        return f"no anchor #{fragment}"
    return None


def _show(items: list[str], limit: int = 40) -> str:
    more = f"\n... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n".join(items[:limit]) + more


@pytest.mark.parametrize("check", CHECKS)
def test_every_page_in_a_browser(report, check):
    items = report["findings"][check]
    assert not items, f"{len(items)} finding(s) for {check!r}:\n{_show(items)}"


def test_every_page_was_opened_and_photographed(report, site):
    visited = report["visited"]
    for name in ("/", "getting-started/", "transformer/", "reference/tinytensor/",
                 "code/tinytensor/autograd/engine.py/", "no-such-page/"):
        assert name in visited
    assert len(visited) == len(_pages(site))
    assert len(list(SCREENSHOTS.glob("*.png"))) == len(visited)


# ---- what the checks above cannot see --------------------------------------------------------

_COPY = """(sel) => {  // what Copy copies (Material's extract()) from the first numbered code block
  const code = [...document.querySelectorAll(sel)].find(c => c.querySelector("[data-linenos], [data-n]"));
  code.setAttribute("data-md-copying", "");
  const text = code.innerText;
  code.removeAttribute("data-md-copying");
  return text.trimEnd();
}"""


def test_without_mathjax_a_page_keeps_its_tex_and_throws_nothing(site, server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = _launch(pw, tmp_path)
        context.route("**/*", lambda r: r.abort() if "/mathjax/" in r.request.url
                      or not r.request.url.startswith(server) else r.continue_())
        page = context.pages[0]
        thrown = []
        page.on("pageerror", lambda e: thrown.append(str(e)))
        page.goto(server + "transformer/", wait_until="load")
        page.evaluate(_SETTLE)
        text = page.inner_text(".md-content")
        typeset = page.query_selector("mjx-container")
        context.close()
    assert not thrown
    assert typeset is None and "\\(" in text  # the formulas, as written


def test_source_pages_copy_without_line_numbers_and_mark_the_linked_line(site, server, tmp_path):
    from playwright.sync_api import sync_playwright

    path = "tinytensor/autograd/engine.py"
    source = (ROOT / path).read_text(encoding="utf-8")
    with sync_playwright() as pw:
        context = _launch(pw, tmp_path)
        page = context.pages[0]
        page.goto(f"{server}code/{path}/#L-3", wait_until="load")
        copied = page.evaluate(_COPY, ".source-listing pre > code")
        marked = page.evaluate("""() => [...document.querySelectorAll(".source-listing .line")]
            .slice(0, 5).map(line => getComputedStyle(line).backgroundColor)""")
        # an excerpt on a prose page: its numbers are not copied either
        page.goto(server + "autograd/", wait_until="load")
        excerpt = page.evaluate(_COPY, "pre > code")
        context.close()
    assert copied == source.rstrip()
    assert marked[2] != marked[1] == marked[3]  # line 3, the target, and only it
    assert not re.match(r"\s*\d", excerpt)
