"""A self-contained HTML report: sections of prose, key numbers and figures embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kakusan.report.run_dir import atomic_write_bytes

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
h1{border-bottom:2px solid #446}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}
table.numbers{border-collapse:collapse;margin:1rem 0}table.numbers td{padding:.2rem .8rem;border-bottom:1px solid #eee}
table.numbers td:first-child{color:#555}figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figure img{max-width:27rem;border:1px solid #ddd}figcaption{font-size:.85rem;color:#555;max-width:27rem}
nav a{margin-right:1rem}.meta{color:#777;font-size:.85rem}
"""


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def render_section(title: str, paragraphs: Sequence[str], figures: Sequence[tuple[Path, str]],
                   numbers: dict[str, Any], anchor: str) -> str:
    """One ``<section>``: paragraphs are trusted HTML written by the library; numbers and captions are escaped."""
    parts = [f'<section id="{anchor}"><h2>{html.escape(title)}</h2>']
    parts += [f"<p>{p}</p>" for p in paragraphs]
    if numbers:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_format_number(v)}</td></tr>" for k, v in numbers.items())
        parts.append(f'<table class="numbers">{rows}</table>')
    for path, caption in figures:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def write_report(path: Path, title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> Path:
    """Write the page; ``sections`` are (anchor title, rendered section HTML) pairs, in order."""
    nav = " ".join(f'<a href="#s{i}">{html.escape(t)}</a>' for i, (t, _) in enumerate(sections))
    body = "\n".join(s for _, s in sections)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='meta'>written {time.strftime('%Y-%m-%d %H:%M:%S')}</p><p>{intro}</p>"
            f"<nav>{nav}</nav>{body}</body></html>")
    atomic_write_bytes(Path(path), page.encode())
    return Path(path)
