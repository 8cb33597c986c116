"""The tour's HTML report in a real browser: headless Chromium, driven over the DevTools protocol on a pipe.

No driver package is needed: Chromium started with ``--remote-debugging-pipe`` reads protocol commands
(JSON, each ending in a NUL byte) on file descriptor 3 and writes answers and events on 4. The test skips
without Chromium ("sudo apt-get install chromium") and fails then under CI=true (see tests/conftest.py).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import signal
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from kakusan.cli import main
from kakusan.report import figures
from kakusan.report.html import git_commit
from kakusan.tour import CHAPTERS, PLANNED

DESKTOP, PHONE = 1280, 390


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # copies above 10 (closed on exec), so that dup2 to 3 and 4 in the child cannot clobber one another
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        self._log = open(profile.parent / "chromium.log", "wb")
        argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--mute-audio", "about:blank"]
        # posix_spawn, not fork + Python code: safe beside the threads of a pytest-xdist worker
        self.pid = os.posix_spawn(binary, argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, self._log.fileno(), 1), (os.POSIX_SPAWN_DUP2, self._log.fileno(), 2),
            (os.POSIX_SPAWN_DUP2, child_r, 3), (os.POSIX_SPAWN_DUP2, child_w, 4)])
        self.exit_status: int | None = None
        for fd in (to_browser_r, from_browser_w, child_r, child_w):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Page.enable", session=True)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - it is going away anyway
            pass
        deadline = time.monotonic() + 10
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._log.close()

    def poll(self) -> int | None:
        """Chromium's exit status, or None while it runs."""
        if self.exit_status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = os.waitstatus_to_exitcode(status)
        return self.exit_status

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit status {self.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, *, session: bool = False, **params) -> dict:
        """Send one command and return its result (events seen meanwhile are kept in ``events``)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open(self, url: str, width: int, *, mobile: bool) -> None:
        """Load ``url`` in a viewport ``width`` CSS pixels wide (``mobile``: as a phone, honouring the
        page's viewport meta tag)."""
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=900 if mobile else 1000,
                  deviceScaleFactor=1, mobile=mobile)
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, top to bottom, as a PNG."""
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        shot = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


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
