"""The tour's HTML report in a real browser: headless Chromium, driven over the DevTools protocol on a pipe
(:class:`browser.Browser`, tests/browser.py). The test skips without Chromium ("sudo apt-get install chromium")
and fails then under CI=true (see tests/conftest.py).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from browser import Browser

from kakusan.cli import main
from kakusan.report import figures
from kakusan.report.html import git_commit
from kakusan.tour import CHAPTERS, PLANNED

DESKTOP, PHONE = 1280, 390


# What the page looks like from inside: images, widths, contents, captions, header.
INSPECT = """
(async () => {
  await Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const root = document.documentElement;
  const links = [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href'));
  const followed = [];
  for (const href of links) {   // follow each contents link: its target must exist and come to the top
    const target = href.startsWith('#') ? document.getElementById(href.slice(1)) : null;
    if (target) {
      document.querySelector(`nav a[href="${href}"]`).click();
      const top = target.getBoundingClientRect().top;
      const atBottom = window.scrollY + window.innerHeight >= root.scrollHeight - 2;
      followed.push({href, found: true, top, ok: location.hash === href && (Math.abs(top) < 2 || atBottom)});
    } else {
      followed.push({href, found: false, ok: false});
    }
  }
  window.scrollTo(0, 0);
  const wide = [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map(e => e.tagName + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right));
  return {
    innerWidth: window.innerWidth, scrollWidth: root.scrollWidth, wide: wide.slice(0, 10),
    images: [...document.images].map(i => ({alt: i.alt, naturalWidth: i.naturalWidth, width: i.width})),
    tocItems: [...document.querySelectorAll('nav > ol > li, nav > ul > li')].map(li => li.textContent.trim()),
    tocLinks: links, followed,
    planned: [...document.querySelectorAll('nav li.planned')].map(li => li.textContent.trim()),
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    captions: [...document.querySelectorAll('figcaption')].map(f => ({text: f.textContent, html: f.innerHTML})),
    header: document.querySelector('header') ? document.querySelector('header').innerText : '',
  };
})()
"""


@pytest.fixture(scope="module")
def tiny_tour(tmp_path_factory):
    run = tmp_path_factory.mktemp("browser") / "tour"
    assert main(["tour", "--size", "tiny", "--seed", "3", "--run-dir", str(run)]) == 0
    return run / "report.html"


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path / "profile")
    yield b
    b.close()


@pytest.mark.requires("chromium")
def test_tour_report_in_headless_chromium(browser, tiny_tour, tmp_path):
    url = tiny_tour.as_uri()
    seen = {}
    for width, mobile in ((DESKTOP, False), (PHONE, True)):
        browser.open(url, width, mobile=mobile)
        seen[width] = page = browser.evaluate(INSPECT)
        shot = browser.screenshot(tmp_path / f"report-{width}px.png")
        assert shot.stat().st_size > 10_000
        assert page["innerWidth"] == width, "the viewport meta tag makes the page as wide as the screen"
        assert page["scrollWidth"] <= width, f"horizontal scroll at {width} px; too wide: {page['wide']}"
        assert page["images"] and all(i["naturalWidth"] > 0 for i in page["images"]), \
            [i["alt"] for i in page["images"] if i["naturalWidth"] == 0]
        assert all(0 < i["width"] <= width for i in page["images"])
        assert all(f["ok"] for f in page["followed"]), [f for f in page["followed"] if not f["ok"]]
    page = seen[DESKTOP]

    # contents: a list of working links, one per chapter, then the chapters not yet built, greyed, no link
    assert page["tocLinks"] == [f"#{s}" for s in page["sections"]] and len(page["sections"]) == len(CHAPTERS)
    assert len(page["tocItems"]) == len(CHAPTERS) + len(PLANNED)
    assert page["planned"] == [f"{name} (not yet built)" for name in PLANNED]
    assert PLANNED == () and page["planned"] == []  # the road is built to its end: prompt → image is the last chapter
    assert CHAPTERS[-1] == "prompt"

    # captions are HTML, shown as text: no tags or entities on screen
    captions = page["captions"]
    assert len(captions) == len(page["images"])
    for c in captions:
        assert "<" not in c["text"] and "&lt;" not in c["text"] and "&gt;" not in c["text"], c["text"]
    assert any("<sub>" in c["html"] for c in captions), "the KL gap caption's subscripts are rendered as HTML"

    # the header says what made the report
    header = page["header"]
    for needle in ("kakusan tour --size tiny --seed 3", "size", "tiny", "seed", "3", "version", "kakusan 0.1.0",
                   "machine", "torch", "device", "cpu", "Python"):
        assert needle in header, (needle, header)
    commit = git_commit()  # None where kakusan is installed, not run from a checkout
    assert f"(git {commit})" in header if commit else "(git commit unknown)" in header


def test_line_plot_legends_sit_outside_the_axes(tmp_path, monkeypatch):
    """A legend below the axes cannot cover data; one line needs no legend."""
    closed, real_close = [], plt.close
    monkeypatch.setattr(figures.plt, "close", closed.append)
    long = {f"a long series name number {k}": [k, k + 1, k + 3] for k in range(3)}
    figures.line_plot(long, tmp_path / "a.png", hlines={"target": 2.0}, title="t")
    figures.line_plot({"x": [1, 2], "y": [2, 1]}, tmp_path / "b.png", logy=True)
    names = ("naive mean field", "TAP", "pseudo-likelihood", "minimum probability flow", "exact maximum likelihood")
    figures.line_plot({k: [3, 2, 1] for k in names}, tmp_path / "c.png", x=[10, 100, 1000], logx=True, logy=True)
    figures.line_plot({"only": [1, 2]}, tmp_path / "d.png")
    try:
        for fig in closed[:3]:
            fig.canvas.draw()
            (ax,) = fig.axes
            (legend,) = fig.legends
            assert not ax.get_legend()
            box, axes_box = legend.get_window_extent(), ax.get_tightbbox()
            assert box.y1 <= axes_box.y0 + 1, "the legend sits below the axes and their labels"
            assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1), "the legend fits"
        assert not closed[3].legends and not closed[3].axes[0].get_legend()
    finally:
        for fig in closed:
            real_close(fig)
