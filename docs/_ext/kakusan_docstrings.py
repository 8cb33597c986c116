"""Sphinx extension: kakusan's docstrings, written for ``help()``, made into valid reStructuredText.

The docstrings are plain text with Unicode maths (``|x|``, ``(n, *shape)``, ``θ_J``), hanging indents and
indented formula displays, plus some reST (````literal````, ``:func:`…```, numpydoc sections). Parsed as
reST unchanged they give "Undefined substitution", "Inline emphasis start-string without end-string" and
"Unexpected indentation" errors. Before napoleon reads a docstring (``autodoc-process-docstring``, priority
400 < napoleon's 500) this extension

- escapes inline markup characters outside ````literals```` and roles (``*``, ``|``, lone backticks, a
  trailing ``_``, backslashes), keeping well-formed ``*emphasis*`` and ``**strong**``;
- turns an indented block after a blank line (a formula display) into a literal block, as ``help()``
  shows it;
- joins hanging-indent continuation lines to the line they continue, and puts blank lines where a list
  starts or ends;
- writes ``name : description`` lines of prose as a bullet list;
- turns section headings that napoleon does not know (``API``, ``Precision and recall``) into rubrics, so
  they neither collide nor enter the page's table of contents.

Napoleon's own sections (Parameters, Returns, …) keep their layout; only their text is escaped.
"""

from __future__ import annotations

import re

from docutils.utils import column_width

#: Sections napoleon parses as fields: their layout is kept.
FIELD_SECTIONS = {"parameters", "params", "returns", "return", "yields", "yield", "raises", "raise",
                  "attributes", "other parameters", "receives", "receive", "warns", "warn",
                  "keyword arguments", "keyword args", "methods"}
#: Sections napoleon knows whose content is prose.
PROSE_SECTIONS = {"notes", "note", "examples", "example", "see also", "references", "warnings", "warning",
                  "todo"}

UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")
BULLET = re.compile(r"^([-*+•]|\d+[.)]|#\.)\s+(?=\S)")
TABLE_BORDER = re.compile(r"^\s*=+( +=+)+\s*$")
FIELD_NAME = re.compile(r"^\**[A-Za-z_]\w*(\s*,\s*\**[A-Za-z_]\w*)*\s*(\s:(\s.*)?)?$")
FIELD = re.compile(r"^([A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)*)\s+:\s+(\S.*)$")

# Protected spans: ``literal`` (across lines), :role:`target`, `text`_ links, `text` (default role).
PROTECTED = re.compile(r"``(?:(?!``).)+?``(?!`)|:[\w.:+-]+:`[^`]+`|`[^`]+`__?|`[^`\n]+`", flags=re.S)
# Well-formed emphasis / strong: start-string after whitespace or opening punctuation and before
# non-whitespace; end-string after non-whitespace and before whitespace, punctuation or the end.
_BEFORE = r"(?:(?<=^)|(?<=[\s(\[{<'\"/:\-]))"
_AFTER = r"(?=$|[\s)\]}>'\".,;:!?/\-])"
STRONG = re.compile(_BEFORE + r"\*\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*\*" + _AFTER)
EMPHASIS = re.compile(_BEFORE + r"\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*" + _AFTER)
TRAILING_UNDERSCORE = re.compile(r"(?<=[\w\]`])_(?=$|[^\w])")
END_OF_INLINE_OK = re.compile(r"[\s)\]}>'\".,;:!?/\-]")


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def escape_plain(text: str) -> str:
    """Escape reST inline markup in text that holds no literal or role."""
    keep: list[str] = []

    def stash(match: re.Match) -> str:
        marker = "**" if match.group(0).startswith("**") else "*"
        keep.append(marker + plain(match.group(0)[len(marker):-len(marker)]) + marker)
        return f"\0{len(keep) - 1}\0"

    def plain(s: str) -> str:
        s = s.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|").replace("`", "\\`")
        return TRAILING_UNDERSCORE.sub(r"\\_", s)

    text = STRONG.sub(stash, text)
    text = plain(EMPHASIS.sub(stash, text))
    return re.sub(r"\0(\d+)\0", lambda m: keep[int(m.group(1))], text)


def escape_inline(text: str) -> str:
    """Escape inline markup outside the protected spans; a single-backtick span becomes a literal."""
    out, pos = [], 0
    for match in PROTECTED.finditer(text):
        out.append(escape_plain(text[pos:match.start()]))
        span = match.group(0)
        if span.startswith("`") and not span.startswith("``") and not span.endswith("_"):
            span = f"`{span}`"  # `x` → ``x``: code, as the author meant
        if out and out[-1] and not re.search(r"(^|[\s(\[{<'\"/:\-])$", out[-1]) and not out[-1].endswith("\\ "):
            out.append("\\ ")  # an inline start-string must follow whitespace or punctuation
        out.append(span)
        pos = match.end()
        if pos < len(text) and not END_OF_INLINE_OK.match(text[pos]):
            out.append("\\ ")  # … and its end-string must be followed by one
    out.append(escape_plain(text[pos:]))
    return "".join(out)


def escape_paragraphs(lines: list[tuple[str, bool]]) -> list[str]:
    """``lines`` as (line, is_text); runs of text lines between blank lines are escaped as one paragraph
    (a literal may span lines); other lines are kept as they are."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            text = escape_inline("\n".join(run))
            text = re.sub(r"(?m)^(\s*)\\\*(?=\s)", r"\1*", text)  # a "* " bullet stays a bullet
            out.extend(text.split("\n"))
            run.clear()

    for line, is_text in lines:
        if is_text and line.strip():
            run.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return out


def split_row(row: str, starts: list[int]) -> list[str] | None:
    """A simple-table row cut into cells: each cut is the start of a word nearest to its column's start
    (text may run a little into the margin); None if some column has no word near its start."""
    cuts = [0]
    for start in starts[1:]:
        near = [i for i in range(max(cuts[-1] + 1, start - 6), min(len(row), start + 7))
                if row[i] != " " and row[i - 1] == " "]
        if not near:
            return None
        cuts.append(min(near, key=lambda i: abs(i - start)))
    return [row[a:b].strip() for a, b in zip(cuts, cuts[1:] + [len(row)])]


def simple_table(rows: list[str]) -> list[str]:
    """A reST simple table whose text runs into the column margins, rebuilt with columns wide enough for
    their escaped cells; a literal block if a row cannot be cut into the columns."""
    indent = indent_of(rows[0])
    rows = [r[indent:] for r in rows]
    starts = [m.start() for m in re.finditer(r"=+", rows[0])]
    cells = []
    for r in rows:
        if TABLE_BORDER.match(r):
            cells.append(None)
            continue
        cut = split_row(r, starts)
        if cut is None:
            return [" " * indent + "::", "", *(" " * (indent + 4) + r for r in rows)]
        cells.append([escape_inline(c) for c in cut])
    widths = [max([column_width(c[j]) for c in cells if c is not None] + [1]) for j in range(len(starts))]
    out = []
    for c in cells:
        if c is None:
            out.append(" " * indent + "  ".join("=" * w for w in widths))
        else:
            out.append(" " * indent + "  ".join(x + " " * (w - column_width(x)) for x, w in zip(c, widths)).rstrip())
    return out


def normalise_prose(lines: list[str]) -> list[str]:
    """Block structure of plain-text prose made into reST (see the module docstring)."""
    out: list[tuple[str, bool]] = []  # (line, is_text)
    literal_base: int | None = None  # inside a literal block: lines indented deeper than this
    doctest = False
    blank = True
    content = 0              # where continuation lines of the current paragraph or list item start
    bullet_indent: int | None = None  # indent of the bullet of the current list item, if any
    in_fields = False

    def last_text() -> int | None:
        for i in range(len(out) - 1, -1, -1):
            if out[i][0].strip():
                return i
        return None

    table: list[str] = []
    for raw in lines + [""]:
        line = raw.rstrip()
        if table:
            if line.strip():
                table.append(line)
                continue
            out.extend((t, False) for t in simple_table(table))
            table = []
        if blank and literal_base is None and TABLE_BORDER.match(line):
            table = [line]
            continue
        if not line.strip():
            blank = True
            doctest = False
            out.append(("", False))
            continue
        k = indent_of(line)
        stripped = line.strip()
        if literal_base is not None:
            if k > literal_base:
                out.append((line, False))
                blank = False
                continue
            literal_base = None
            if not blank:
                out.append(("", False))
                blank = True
        if doctest or (stripped.startswith(">>>") and blank):
            doctest = True
            out.append((line, False))
            blank = False
            continue
        i = last_text()
        if blank and i is not None and out[i][0].rstrip().endswith("::"):
            literal_base = indent_of(out[i][0]) if bullet_indent is None else content
            out.append((line, False))
            blank = False
            continue
        if blank and i is not None and k >= content + 4:
            # an indented display after a blank line: show it as help() does, as a literal block
            prior = out[i][0]
            if prior.rstrip().endswith(":") and out[i][1]:
                out[i] = (prior.rstrip() + ":", True)
            else:
                if out and out[-1][0].strip():
                    out.append(("", False))
                out.append((" " * content + "::", False))
                out.append(("", False))
            literal_base = content
            out.append((line, False))
            blank = False
            continue

        field = FIELD.match(stripped)
        if field and (blank or in_fields) and k <= content and len(field.group(1)) <= 40:
            names = ", ".join(f"``{name.strip()}``" for name in field.group(1).split(","))
            stripped, line = f"- {names}: {field.group(2)}", " " * k + f"- {names}: {field.group(2)}"
            in_fields = True
        elif blank:
            in_fields = False
        marker = BULLET.match(stripped)
        if not blank:
            if marker:
                if bullet_indent != k:  # a list starts (or a nested one) after text: reST needs a blank line
                    out.append(("", False))
            elif k > content:
                j = last_text()
                out[j] = (out[j][0] + " " + stripped, out[j][1])  # a hanging indent: one logical line
                continue
            elif k < content:
                out.append(("", False))  # the end of a list item or quote
                in_fields = False
        if marker:
            bullet_indent, content = k, k + marker.end()
        elif blank or k < content or bullet_indent is None:
            bullet_indent, content = (bullet_indent if (bullet_indent is not None and k == content) else None), k
        out.append((line, True))
        blank = False
    return escape_paragraphs(out[:-1])  # the blank line that closed a table at the end


def normalise_fields(lines: list[str]) -> list[str]:
    """A napoleon field section (Parameters, Returns, …): ``name : type`` lines keep their name, and each
    description (the lines indented under it) is normalised as prose."""
    out: list[str] = []
    description: list[str] = []

    def flush() -> None:
        if any(d.strip() for d in description):
            base = min(indent_of(d) for d in description if d.strip())
            body = normalise_prose([d[base:] if d.strip() else "" for d in description])
            out.extend(" " * base + b if b.strip() else "" for b in body)
        else:
            out.extend(description)
        description.clear()

    for n, line in enumerate(lines):
        if (line.strip() and indent_of(line) == 0 and out and n > 0 and not lines[n - 1].strip()
                and not FIELD_NAME.match(line.strip())):
            # prose after the fields: napoleon would read it as more fields, so it becomes a Notes section
            flush()
            return out + ["", "Notes", "-----", *normalise_prose(lines[n:])]
        if line.strip() and indent_of(line) == 0:
            flush()
            name, sep, kind = line.partition(" : ")
            out.append(name + sep + escape_inline(kind) if sep else escape_inline(line)
                       if not re.match(r"^\**\w+$", line.strip()) else line)
        else:
            description.append(line)
    flush()
    return out


def sanitise(lines: list[str]) -> list[str]:
    """The docstring ``lines`` (dedented, as autodoc hands them over) as valid reStructuredText."""
    segments: list[tuple[str, list[str]]] = [("prose", [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        if (i + 1 < len(lines) and line.strip() and indent_of(line) == 0 and UNDERLINE.match(lines[i + 1])
                and len(lines[i + 1].strip()) >= len(line.strip()) - 1):
            title = line.strip()
            if title.lower() in FIELD_SECTIONS:
                segments.append(("fields", [line, lines[i + 1]]))
            elif title.lower() in PROSE_SECTIONS:
                segments.append(("prose", [line, lines[i + 1]]))
            else:
                segments.append(("prose", [f".. rubric:: {escape_inline(title)}", ""]))
            i += 2
            continue
        segments[-1][1].append(line)
        i += 1
    out: list[str] = []
    for kind, seg in segments:
        head: list[str] = []
        if seg and (seg[0].startswith(".. rubric::") or (len(seg) > 1 and UNDERLINE.match(seg[1]))):
            head, seg = seg[:2], seg[2:]
            if out and out[-1].strip():
                out.append("")
        out += head + (normalise_fields(seg) if kind == "fields" else normalise_prose(seg))
    return out


def process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = sanitise(lines)


def setup(app):
    app.connect("autodoc-process-docstring", process_docstring, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
