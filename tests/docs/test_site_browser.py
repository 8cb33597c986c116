"""The documentation site (``make docs``) in a real browser: every page of the built HTML, opened in headless
Chromium (tests/browser.py) as a 390 px wide phone, is checked for

- maths: no ``$$``, ``\\begin``, ``\\[`` or ``$\\x`` left as text (outside code), every ``.math`` element
  typeset by MathJax (an ``mjx-container`` inside it), no MathJax error box (``mjx-merror``), no MathJax
  font that failed to load, and the equations numbered (1), (2), … on each page;
- images: every ``img`` loaded (``naturalWidth > 0``);
- links: every same-site ``href`` names a built file, and its ``#anchor`` an element id of that file;
- width: the page does not scroll sideways (``scrollWidth <= innerWidth``): maths, tables and code scroll
  inside their own boxes;
- offline: the browser asks for nothing but ``file:`` and ``data:`` URLs (MathJax and the theme's fonts and
  icons come with the site).

The site is built by the test (warnings are errors, as in ``make docs``) unless docs/_build/html is newer
than everything it is built from. Without Chromium the test skips, and fails under CI=true (tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from browser import Browser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PHONE, DESKTOP = 390, 1280

pytestmark = [pytest.mark.slow, pytest.mark.requires("chromium", "docs")]


def newest_input() -> float:
    """The newest modification time among the files the site is built from."""
    inputs = [*DOCS.rglob("*"), *(ROOT / "src" / "kakusan").rglob("*.py"), *(ROOT / "benchmarks").glob("results_*.md")]
    return max(p.stat().st_mtime for p in inputs if p.is_file() and "_build" not in p.relative_to(ROOT).parts)


def build(out: Path) -> Path:
    """Build the site into ``out`` as ``make docs`` does (-W: a warning fails the test) and return the HTML."""
    html = out / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"),
           str(DOCS), str(html)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    assert done.returncode == 0, f"the docs build failed or warned:\n{done.stderr[-6000:]}"
    return html


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    built = DOCS / "_build" / "html"
    index = built / "index.html"
    if index.is_file() and index.stat().st_mtime > newest_input() and os.environ.get("CI", "") != "true":
        return built
    return build(tmp_path_factory.mktemp("site"))


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path / "profile")
    b.call("Network.enable", session=True)
    yield b
    b.close()


# What the page looks like from inside, once MathJax has typeset it and every image has loaded.
INSPECT = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await document.fonts.ready;
  await Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const root = document.documentElement;
  const prose = document.body.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, .math').forEach(e => e.remove());
  const text = prose.textContent;
  const math = [...document.querySelectorAll('.math')];
  const wide = [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > Math.min(window.innerWidth, screen.width) + 0.5 && e.offsetParent !== null)
    .map(e => e.tagName + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '')
              + ' ' + Math.round(e.getBoundingClientRect().right));
  return {
    innerWidth: window.innerWidth, scrollWidth: root.scrollWidth, wide: wide.slice(0, 8),
    leftovers: ['$$', '\\begin{', '\\[', '\\]'].filter(s => text.includes(s))
               .concat((text.match(/\$\\[A-Za-z]+/g) || []).slice(0, 3)),
    mathCount: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)).slice(0, 5),
    containers: document.querySelectorAll('mjx-container').length,
    equationNumbers: [...document.querySelectorAll('.math .eqno')].map(e => e.textContent.trim()),
    mathErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
    fontErrors: [...document.fonts].filter(f => f.status === 'error').map(f => f.family),
    images: [...document.images].map(i => ({src: i.getAttribute('src'), naturalWidth: i.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  };
})()
"""


def element_ids(page: Path, cache: dict[Path, set[str]]) -> set[str]:
    if page not in cache:
        cache[page] = set(re.findall(r"""\bid=["']([^"']+)["']""", page.read_text(encoding="utf-8", errors="replace")))
    return cache[page]


def broken_links(links: list[str], site: Path, ids: dict[Path, set[str]]) -> list[str]:
    """The same-site links (``file:`` URLs under ``site``) that name no built file, or no element id of it."""
    out = []
    for link in links:
        parts = urlsplit(link)
        if parts.scheme != "file":
            continue
        target = Path(unquote(parts.path))
        if site.resolve() not in (target.resolve(), *target.resolve().parents):
            out.append(f"{link}: outside the site")
        elif not target.is_file():
            out.append(f"{link}: no such file")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in element_ids(target, ids):
            out.append(f"{link}: no element with id {unquote(parts.fragment)!r}")
    return out


def inspect_page(browser: Browser, page: Path, site: Path, ids: dict[Path, set[str]]) -> tuple[dict, list[str]]:
    """Open ``page`` as a 390 px phone; return what INSPECT saw and one line per problem found."""
    browser.open(page.as_uri(), PHONE, mobile=True)
    seen = browser.evaluate(INSPECT)
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    found = []
    # A phone widens its layout viewport to fit content that overflows (innerWidth grows), or the page scrolls
    if seen["innerWidth"] != PHONE or seen["scrollWidth"] > PHONE:
        found.append(f"scrolls sideways at {PHONE} px: the page is {max(seen['innerWidth'], seen['scrollWidth'])} px "
                     f"wide; too wide: {seen['wide']}")
    if seen["leftovers"]:
        found.append(f"unrendered maths as text: {seen['leftovers']}")
    if seen["untypeset"]:
        found.append(f"maths MathJax did not typeset: {seen['untypeset']}")
    if seen["mathCount"] and not seen["containers"]:
        found.append("maths on the page but no mjx-container")
    numbers = [m.group(0) if (m := re.match(r"\(\d+\)", n)) else n for n in seen["equationNumbers"]]
    if numbers != [f"({k})" for k in range(1, len(numbers) + 1)]:
        found.append(f"equations not numbered (1), (2), … on the page: {numbers[:6]}")
    if seen["mathErrors"]:
        found.append(f"MathJax errors: {seen['mathErrors']}")
    if seen["fontErrors"]:
        found.append(f"fonts that failed to load: {sorted(set(seen['fontErrors']))}")
    found += [f"broken image {i['src']}" for i in seen["images"] if i["naturalWidth"] == 0]
    found += broken_links(seen["links"], site, ids)
    found += [f"network request {u}" for u in requests if not u.startswith(("file:", "data:", "about:"))]
    return seen, found


def test_every_page_of_the_site_in_headless_chromium(site, browser):
    pages = sorted(site.rglob("*.html"))
    pages = [p for p in pages if not p.relative_to(site).parts[0].startswith("_")]
    names = {p.relative_to(site).as_posix() for p in pages}
    for needed in ("index.html", "notation.html", "glossary.html", "references.html", "lecture-note.html",
                   "api/index.html", "divergence-gaussian.html", "diffusion.html"):
        assert needed in names, f"the site has no {needed}"
    assert len(pages) >= 30

    problems: dict[str, list[str]] = {}
    ids: dict[Path, set[str]] = {}
    typeset = 0
    for page in pages:
        seen, found = inspect_page(browser, page, site, ids)
        typeset += seen["containers"]
        if found:
            problems[page.relative_to(site).as_posix()] = found
    assert not problems, "\n".join(f"{name}: {p}" for name, found in problems.items() for p in found)
    assert typeset > 100, "the chapters' maths is typeset by MathJax"


BROKEN_PAGE = """<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<script>window.MathJax = {startup: {typeset: false}};</script></head><body>
<p>Left as text: $$x^2$$ and $\\alpha$ and \\begin{aligned}.</p>
<div class="math"><span class="eqno">(2)</span>\\[x\\]</div>
<img src="missing.png" alt="no such image">
<a href="nowhere.html">a missing page</a> <a href="#no-such-id">a missing anchor</a> <a href="#here" id="here">ok</a>
<div style="width: 600px">too wide for a phone</div>
<img src="https://example.org/x.png" alt="a request that leaves the site">
</body></html>"""


def test_the_checks_find_a_broken_page(browser, tmp_path):
    """Each check fails on a page made to break it (so a passing site test means something)."""
    page = tmp_path / "site" / "broken.html"
    page.parent.mkdir()
    page.write_text(BROKEN_PAGE, encoding="utf-8")
    _, found = inspect_page(browser, page, page.parent, {})
    text = "\n".join(found)
    for expected in ("scrolls sideways at 390 px", "unrendered maths as text: ['$$', '\\\\begin{', '$\\\\alpha']",
                     "maths MathJax did not typeset", "maths on the page but no mjx-container",
                     "equations not numbered", "broken image", "nowhere.html: no such file",
                     "no element with id 'no-such-id'", "network request https://example.org/x.png"):
        assert expected in text, (expected, found)
    assert "#here" not in text


def test_the_index_page_at_desktop_width(site, browser):
    browser.open((site / "index.html").as_uri(), DESKTOP, mobile=False)
    seen = browser.evaluate(INSPECT)
    assert seen["scrollWidth"] <= DESKTOP
    assert not broken_links(seen["links"], site, {})
    for page in ("divergence-gaussian.html", "notation.html", "glossary.html", "api/index.html"):
        assert any(link.endswith(page) for link in seen["links"]), f"the index links to {page}"
