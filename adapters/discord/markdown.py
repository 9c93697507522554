"""Standard Markdown → what Discord's client can show. Pure and linear in the text's length.

Discord renders most of what models write (bold, italics, lists, quotes, code, headings up to
``###``, masked links) but shows some constructs as raw characters. Those are rewritten:

- tables become an aligned monospace block when they are narrow enough to read on a phone,
  and a bullet list per row otherwise;
- ``####``–``######`` headings and setext headings become bold lines (``=`` underlines: ``#``);
- thematic breaks (``---``) become a line of box-drawing characters;
- images become links (Discord does not inline them in bot text).

Code fences are copied untouched: their content is code, whatever it looks like.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Wider tables wrap on phones and stop lining up: they become bullet lists instead.
MAX_TABLE_WIDTH = 56
RULE = "─" * 12

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_DEEP_HEADING = re.compile(r"^ {0,3}#{4,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_DELIMITER_CELL = re.compile(r"^:?-+:?$")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)(?:\s+\"[^\"\n]*\")?\)")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|~~|`)")
_BLOCK_START = re.compile(r"^ {0,3}(?:[-*+>]|\d{1,9}[.)]|#)")


def to_discord(markdown: str) -> str:
    lines = markdown.split("\n")
    out: list[str] = []
    fence: tuple[str, int] | None = None  # marker character and length of the open fence
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        fence_match = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if fence_match and _closes(fence_match, fence):
                fence = None
            i += 1
            continue
        if fence_match and not (fence_match.group(1)[0] == "`" and "`" in fence_match.group(2)):
            fence = (fence_match.group(1)[0], len(fence_match.group(1)))
            out.append(line)
            i += 1
            continue
        table_end = _table_end(lines, i)
        if table_end is not None:
            out.extend(_table(lines[i:table_end]))
            i = table_end
            continue
        out.append(_line(line, out, lines[i - 1] if i else ""))
        i += 1
    return "\n".join(out)


def _closes(match: re.Match[str], fence: tuple[str, int]) -> bool:
    run = match.group(1)
    return run[0] == fence[0] and len(run) >= fence[1] and not match.group(2).strip()


def _line(line: str, out: list[str], previous: str) -> str:
    """One line outside code and tables; may rewrite the line before it (setext headings)."""
    heading = _DEEP_HEADING.match(line)
    if heading:
        text = (heading.group(1) or "").strip()
        return f"**{text}**" if text else ""
    setext = _SETEXT.match(line)
    if setext and out and _is_paragraph(previous) and out[-1] == previous:
        # "Title\n---" is a heading in CommonMark; Discord shows the underline literally.
        out[-1] = f"**{previous.strip()}**"
        return ""
    if _THEMATIC.match(line):
        return RULE
    if "![" in line:
        line = _IMAGE.sub(lambda m: f"[{m.group(1) or 'image'}]({m.group(2)})", line)
    return line


def _is_paragraph(line: str) -> bool:
    return bool(line.strip()) and not _BLOCK_START.match(line) and not _FENCE.match(line)


# -- tables --------------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    """Split a table row on unescaped pipes outside code spans; outer pipes are optional."""
    cells: list[str] = []
    current: list[str] = []
    in_code = False
    escaped = False
    for ch in line.strip():
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == "`":
            in_code = not in_code
            current.append(ch)
        elif ch == "|" and not in_code:
            cells.append("".join(current))
            current = []
        else:
            current.append(ch)
    cells.append("".join(current))
    stripped = line.strip()
    if stripped.startswith("|"):
        cells = cells[1:]
    if stripped.endswith("|") and not stripped.endswith("\\|") and len(cells) > 1:
        cells = cells[:-1]
    return [c.strip().replace("\\|", "|") for c in cells]


def _table_end(lines: Sequence[str], start: int) -> int | None:
    """If a GFM table starts at ``start`` (header row + delimiter row), the index after its last row."""
    if start + 1 >= len(lines) or "|" not in lines[start] or "-" not in lines[start + 1]:
        return None
    header = _cells(lines[start])
    delimiter = _cells(lines[start + 1])
    if len(header) != len(delimiter) or not all(_DELIMITER_CELL.match(c) for c in delimiter):
        return None
    end = start + 2
    while end < len(lines) and lines[end].strip() and "|" in lines[end] and not _FENCE.match(lines[end]):
        end += 1
    return end


def _plain(cell: str) -> str:
    """A cell's text without inline Markdown, for the monospace block (where it would show raw)."""
    return _EMPHASIS.sub("", _LINK.sub(r"\1", cell))


def _table(rows: Sequence[str]) -> list[str]:
    header = _cells(rows[0])
    aligns = ["right" if c.endswith(":") and not c.startswith(":") else "left" for c in _cells(rows[1])]
    width = len(header)
    body = [(_cells(r) + [""] * width)[:width] for r in rows[2:]]
    plain = [[_plain(c) for c in row] for row in [header, *body]]
    widths = [max(len(row[k]) for row in plain) for k in range(width)]
    if sum(widths) + 3 * (width - 1) <= MAX_TABLE_WIDTH:
        return _as_block(plain, widths, aligns)
    return _as_bullets(header, body)


def _as_block(rows: list[list[str]], widths: list[int], aligns: list[str]) -> list[str]:
    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(w) if a == "right" else c.ljust(w) for c, w, a in zip(row, widths, aligns, strict=True)
        ]
        return " | ".join(cells).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return ["```", fmt(rows[0]), rule, *(fmt(r) for r in rows[1:]), "```"]


def _as_bullets(header: list[str], body: list[list[str]]) -> list[str]:
    out: list[str] = []
    for row in body:
        first = _plain(row[0]) or "—"
        rest = [f"{h}: {c}" if h else c for h, c in zip(header[1:], row[1:], strict=True) if c]
        out.append(f"- **{first}**" + (" — " + " · ".join(rest) if rest else ""))
    if not body:
        out.append(" · ".join(f"**{h}**" for h in header if h))
    return out
