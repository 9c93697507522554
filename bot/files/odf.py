"""OpenDocument text, spreadsheets and presentations (ODT, ODS, ODP) as Markdown.

A streaming reader of ``content.xml`` rather than odfpy: odfpy builds the whole document as
Python objects (a 4.7 MB spreadsheet took 1.3 GB and 53 s to load), while this reads element by
element, drops each one once written, and stops when the text budget is full. It parses with
defusedxml, which refuses any DTD, so no entity can be declared, let alone expanded.

What it keeps: headings (``text:h`` with their outline level), paragraphs, list items (nested),
tables (``table:table``: sheets of a spreadsheet, under their names, with repeated rows and
columns expanded up to a cap), and the slides of a presentation (``draw:page``) with their numbers.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from bot.files.tables import MAX_COLUMNS, TableWriter, TextBudget

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"

H = f"{{{_TEXT}}}h"
P = f"{{{_TEXT}}}p"
LIST = f"{{{_TEXT}}}list"
SPACE = f"{{{_TEXT}}}s"
TAB = f"{{{_TEXT}}}tab"
LINE_BREAK = f"{{{_TEXT}}}line-break"
NOTE = f"{{{_TEXT}}}note"  # footnotes: their text would land mid-sentence
TABLE = f"{{{_TABLE}}}table"
ROW = f"{{{_TABLE}}}table-row"
CELL = f"{{{_TABLE}}}table-cell"
COVERED = f"{{{_TABLE}}}covered-table-cell"
PAGE = f"{{{_DRAW}}}page"
NOTES = f"{{{_PRESENTATION}}}notes"

_REPEAT_ROWS = 100  # a repeated non-empty row is written at most this often
_BLOCKS = (H, P)


def inline_text(element: Any) -> str:
    """The text of a paragraph or heading: spans and links flattened, ``text:s`` as spaces."""
    parts: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == SPACE:
            parts.append(" " * min(int(child.get(f"{{{_TEXT}}}c", "1") or 1), 100))
        elif tag == TAB:
            parts.append("\t")
        elif tag == LINE_BREAK:
            parts.append("\n")
        elif tag != NOTE:
            parts.append(inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _repeat(element: Any, attribute: str, cap: int) -> int:
    try:
        return max(1, min(int(element.get(f"{{{_TABLE}}}{attribute}", "1")), cap))
    except ValueError:
        return 1


@dataclass
class _State:
    budget: TextBudget
    slide: int = 0
    lists: int = 0  # depth of text:list
    in_notes: bool = False
    table: TableWriter | None = None
    row: list[str] = field(default_factory=list)
    cell: list[str] = field(default_factory=list)
    cells: int = 0  # depth of table cells (tables nest in ODT)


class _Reader:
    """Turns start/end events into Markdown; ``stack`` holds the open elements."""

    def __init__(self, budget: TextBudget, kind: str) -> None:
        self.state = _State(budget)
        self.kind = kind
        self.stack: list[Any] = []

    def start(self, element: Any) -> None:
        tag, state = element.tag, self.state
        self.stack.append(element)
        if tag == LIST:
            state.lists += 1
        elif tag == NOTES:
            state.in_notes = True
        elif tag == PAGE:
            state.slide += 1
            name = element.get(f"{{{_DRAW}}}name", "")
            label = f": {name}" if name and not name.startswith("page") else ""
            state.budget.block(f"## Slide {state.slide}{label}")
        elif tag == TABLE and state.cells == 0:
            name = element.get(f"{{{_TABLE}}}name", "")
            title = f"## Sheet: {name}" if self.kind == "ods" else ""
            state.table = TableWriter(state.budget, title)
        elif tag in (CELL, COVERED):
            state.cells += 1
            if state.cells == 1:
                state.cell = []

    def end(self, element: Any) -> None:
        tag, state = element.tag, self.state
        self.stack.pop()
        if tag in _BLOCKS:
            self._block(element)
        elif tag == LIST:
            state.lists -= 1
        elif tag == NOTES:
            state.in_notes = False
        elif tag in (CELL, COVERED):
            self._cell(element)
        elif tag == ROW and state.cells == 0:
            self._row(element)
        elif tag == TABLE and state.cells == 0:
            state.table = None
        else:
            return
        if self.stack and len(self.stack[-1]) and self.stack[-1][-1] is element:
            del self.stack[-1][-1]  # written: let it go (the root would keep every row)

    def _block(self, element: Any) -> None:
        state = self.state
        text = inline_text(element).strip()
        if state.cells:
            if text:
                state.cell.append(text)
            return
        if not text:
            return
        if state.in_notes:
            state.budget.block(f"Speaker notes: {text}")
        elif element.tag == H:
            level = _heading_level(element)
            state.budget.block("#" * level + " " + text)
        elif state.lists:
            state.budget.item("  " * (state.lists - 1) + "- " + text)
        else:
            state.budget.block(text)

    def _cell(self, element: Any) -> None:
        state = self.state
        state.cells -= 1
        if state.cells:
            return  # a table inside a cell: its text is part of the outer cell
        text = " ".join(" ".join(state.cell).replace("|", "\\|").split())
        count = _repeat(element, "number-columns-repeated", MAX_COLUMNS + 1)
        if len(state.row) < MAX_COLUMNS + 1:
            state.row.extend([text] * min(count, MAX_COLUMNS + 1 - len(state.row)))

    def _row(self, element: Any) -> None:
        state = self.state
        cells, state.row = state.row, []
        if state.table is None or not any(cells):
            return
        for _ in range(_repeat(element, "number-rows-repeated", _REPEAT_ROWS)):
            if not state.table.row(cells):
                return


def _heading_level(element: Any) -> int:
    try:
        return max(1, min(int(element.get(f"{{{_TEXT}}}outline-level", "1")), 6))
    except ValueError:
        return 1


def _events(source: IO[bytes]) -> Iterator[tuple[str, Any]]:
    from defusedxml.ElementTree import iterparse

    yield from iterparse(source, events=("start", "end"), forbid_dtd=True)


def odf_markdown(archive: zipfile.ZipFile, kind: str, budget: TextBudget) -> None:
    """``content.xml`` of an ODT/ODS/ODP as Markdown into ``budget``."""
    reader = _Reader(budget, kind)
    with archive.open("content.xml") as source:
        for event, element in _events(source):
            if event == "start":
                reader.start(element)
            else:
                reader.end(element)
            if budget.full:
                return
