"""Every relative link and image in README.md and docs/*.md points to a file of this checkout.

Users have the repository and nothing beside it, so a page may not link outside it (``../shared/…``).
Links into a Markdown page with ``#anchor`` must name a heading of that page (GitHub's anchor rule).
"""

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), an optional "title" after the target; reference definitions [x]: target
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", flags=re.M)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, …


def prose(text: str) -> str:
    """The page without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(page: Path) -> list[str]:
    text = prose(page.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(text) + REFERENCE.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    kept = "".join(c for c in heading if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def relative_links(page: Path) -> list[str]:
    return [t for t in links(page) if not EXTERNAL.match(t)]


def problems(page: Path, root: Path = ROOT) -> list[str]:
    """One line per relative link of ``page`` that leaves ``root``, names no file, or names no heading."""
    out = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / unquote(path)).resolve() if path else page
        if "shared/" in path or root not in (resolved, *resolved.parents):
            out.append(f"{target}: outside the repository")
        elif not resolved.exists():
            out.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            out.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return out


#: Pages whose missing files are known and expected to appear (not strict: the test passes once they exist).
PENDING: dict[str, str] = {}


def _param(page: Path):
    name = page.relative_to(ROOT).as_posix()
    marks = [pytest.mark.xfail(reason=PENDING[name], strict=False)] if name in PENDING else []
    return pytest.param(page, id=name, marks=marks)


@pytest.mark.parametrize("page", [_param(p) for p in PAGES])
def test_relative_links_point_to_files_in_the_checkout(page):
    found = problems(page)
    assert not found, f"{page.relative_to(ROOT)}: " + "; ".join(found)


def test_the_checker_sees_links_and_catches_bad_ones(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "other.md").write_text("# A title, with `code`\n", encoding="utf-8")
    (root / "docs" / "fig.png").write_bytes(b"")
    page = root / "docs" / "page.md"
    page.write_text("# Top\n\nSee [a](other.md#a-title-with-code), ![b](fig.png), [c](https://example.org), "
                    "[d](#top), [e](../../shared/DESIGN.md), [f](missing.md), [g](other.md#nowhere).\n\n"
                    "```python\nx[0](1)\n```\n\n[ref]: ../README.md\n", encoding="utf-8")
    assert relative_links(page) == ["other.md#a-title-with-code", "fig.png", "#top", "../../shared/DESIGN.md",
                                    "missing.md", "other.md#nowhere", "../README.md"]
    assert anchors(root / "docs" / "other.md") == {"a-title-with-code"}
    assert problems(page, root) == ["../../shared/DESIGN.md: outside the repository", "missing.md: no such file",
                                    "other.md#nowhere: no heading with anchor #nowhere in other.md",
                                    "../README.md: no such file"]
