"""A self-contained HTML report: sections of prose, key numbers and figures embedded as base64 PNG.

The page reads on a phone as on a desktop (no horizontal scroll at 390 px: images and tables shrink), its
table of contents is a numbered list of links, chapters not yet built are named there, and its header
says what made it: the command, its settings, the kakusan version (git commit where known) and the machine.
"""

from __future__ import annotations

import base64
import html
import os
import platform
import re
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kakusan.report.run_dir import atomic_write_bytes

_CSS = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;line-height:1.5;color:#222;
overflow-wrap:break-word}
h1{border-bottom:2px solid #446;font-size:1.7rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc;font-size:1.35rem}
img{max-width:100%;height:auto}
table{border-collapse:collapse;max-width:100%}td,th{padding:.2rem .8rem;border-bottom:1px solid #eee;
vertical-align:top;text-align:left}
.numbers td:first-child,.meta th{color:#555;font-weight:normal}.numbers td:last-child{white-space:nowrap}
.meta td{overflow-wrap:anywhere}
.meta{font-size:.85rem;margin:.5rem 0 1rem}.meta th{white-space:nowrap}
.figures{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin:1rem 0}
figure{margin:0;flex:0 1 27rem;max-width:100%;min-width:0}figure img{display:block;border:1px solid #ddd}
figcaption{font-size:.85rem;color:#555}
nav ol{padding-left:1.8rem}nav li{margin:.15rem 0}
.planned{color:#999}.planned em{font-size:.85rem}
@media (max-width:30rem){body{margin:.8rem auto;padding:0 .6rem}td,th{padding:.2rem .4rem}h1{font-size:1.4rem}}
"""

_TAG = re.compile(r"<[^>]*>")


def plain_text(fragment: str) -> str:
    """The text of a trusted HTML fragment: tags dropped, entities decoded (``q<sub>t</sub>`` -> ``qt``)."""
    return html.unescape(_TAG.sub("", fragment))


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def render_section(title: str, paragraphs: Sequence[str], figures: Sequence[tuple[Path, str]],
                   numbers: dict[str, Any], anchor: str) -> str:
    """One ``<section id=anchor>``.

    Paragraphs and figure captions are trusted HTML written by the library (``q<sub>t</sub>``, ``&lt;``);
    the title and the numbers' names and values are escaped.
    """
    parts = [f'<section id="{html.escape(anchor)}"><h2>{html.escape(title)}</h2>']
    parts += [f"<p>{p}</p>" for p in paragraphs]
    if numbers:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_format_number(v)}</td></tr>" for k, v in numbers.items())
        parts.append(f'<table class="numbers">{rows}</table>')
    if figures:
        parts.append('<div class="figures">')
        for path, caption in figures:
            data = base64.b64encode(Path(path).read_bytes()).decode()
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(plain_text(caption))}">'
                         f"<figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


# -- what made the report --------------------------------------------------------------------------


def git_commit() -> str | None:
    """Short SHA of the git checkout kakusan runs from, ``+changes`` if tracked files have uncommitted changes;
    None when kakusan is an installed copy, not a checkout, or git is missing."""
    folder = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if git("ls-files", "--error-unmatch", "--", Path(__file__).name) is None:  # an installed copy, not a checkout
        return None
    sha = git("rev-parse", "--short=12", "HEAD")
    if not sha:
        return None
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}+changes" if changed else sha


def provenance(device: str | None = None) -> dict[str, str]:
    """kakusan's version (and git commit) and the machine: host, platform, Python, torch, device, threads."""
    import torch

    import kakusan

    commit = git_commit()
    version = kakusan.__version__ + (f" (git {commit})" if commit else " (git commit unknown)")
    if device is None:
        device = "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return {
        "version": f"kakusan {version}",
        "machine": f"{socket.gethostname()}: {platform.platform()}, {platform.machine()}",
        "software": f"Python {platform.python_version()}, torch {torch.__version__}",
        "device": f"{device}, {torch.get_num_threads()} torch threads on {cores} cores",
    }


def render_header(items: Mapping[str, Any]) -> str:
    """The report's header block: a two-column table of what made it (values escaped)."""
    rows = "".join(f"<tr><th scope='row'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in items.items())
    return f'<table class="meta">{rows}</table>'


def write_report(path: Path, title: str, sections: Sequence[tuple[str, ...]], intro: str = "", *,
                 header: Mapping[str, Any] | None = None, planned: Sequence[str] = ()) -> Path:
    """Write the page.

    Parameters
    ----------
    sections : sequence of (title, html) or (anchor, title, html)
        Rendered sections (:func:`render_section`) in order; with pairs, the i-th section's anchor is ``s{i}``.
    intro : str
        Trusted HTML for the paragraph under the title.
    header : mapping, optional
        What made the report (command, settings, version, machine), shown under the title; "written" (the
        time) is added.
    planned : sequence of str
        Chapters not yet built: listed, greyed and without links, after the built ones in the contents.
    """
    entries = [(f"s{i}", *s) if len(s) == 2 else tuple(s) for i, s in enumerate(sections)]
    toc = [f'<li><a href="#{html.escape(a)}">{html.escape(t)}</a></li>' for a, t, _ in entries]
    toc += [f'<li class="planned">{html.escape(name)} <em>(not yet built)</em></li>' for name in planned]
    meta = {**(header or {}), "written": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    body = "\n".join(s for _, _, s in entries)
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1>{render_header(meta)}</header>"
            + (f"<p>{intro}</p>" if intro else "")
            + f"<nav aria-label='contents'><h2>Contents</h2><ol>{''.join(toc)}</ol></nav>\n{body}</body></html>")
    atomic_write_bytes(Path(path), page.encode())
    return Path(path)
