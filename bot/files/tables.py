"""Markdown text within a character budget, Markdown tables, and CSV.

Every document reader writes into a :class:`TextBudget` and stops as soon as it is full: the
model gets at most ``PARLEY_FILE_TEXT_CHARS`` of a file anyway, and reading a 500-sheet workbook
to the end for its first hundred thousand characters would cost time and memory for nothing.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence

MAX_COLUMNS = 100  # of one table row; a sheet wider than this is cut (with a marker cell)
_SAMPLE = 16 * 1024


class TextBudget:
    """Text collected up to ``max_chars``; ``truncated`` once something did not fit."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.used = 0
        self.truncated = False
        self._parts: list[str] = []
        self._in_list = False

    @property
    def full(self) -> bool:
        return self.truncated or self.used >= self.max_chars

    def add(self, text: str) -> bool:
        """Append ``text`` (cut at the budget); False once nothing more fits."""
        if self.full:
            self.truncated = self.truncated or bool(text)
            return False
        room = self.max_chars - self.used
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self._parts.append(text)
        self.used += len(text)
        return not self.truncated

    def block(self, text: str) -> bool:
        """``text`` as a block of its own: separated from what came before by a blank line."""
        text = text.strip("\n")
        if not text:
            return not self.full
        self._in_list = False
        return self.add(("\n\n" if self.used else "") + text)

    def item(self, text: str) -> bool:
        """A list item: on the next line after another item, else a block of its own."""
        if not self._in_list:
            fits = self.block(text)
            self._in_list = True
            return fits
        return self.add("\n" + text.strip("\n"))

    def text(self) -> str:
        return "".join(self._parts)


def cell_text(value: object) -> str:
    """One table cell as Markdown: no pipes or line breaks that would break the row."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    return " ".join(text.replace("|", "\\|").split())


def table_row(cells: Sequence[str]) -> str:
    if len(cells) > MAX_COLUMNS:
        cells = [*cells[:MAX_COLUMNS], "…"]
    return "| " + " | ".join(cells) + " |"


def trimmed(cells: Sequence[str]) -> list[str]:
    """``cells`` without the empty ones at the end (sheets report every styled cell)."""
    out = list(cells[: MAX_COLUMNS + 1])
    while out and not out[-1]:
        out.pop()
    return out


class TableWriter:
    """Rows into a Markdown table in the budget: the first non-empty row is the header."""

    def __init__(self, budget: TextBudget, title: str = "") -> None:
        self.budget = budget
        self.title = title
        self.rows = 0

    def row(self, cells: Sequence[str]) -> bool:
        """Add one row of cell texts; empty rows are skipped. False once the budget is full."""
        cells = trimmed(cells)
        if not cells:
            return not self.budget.full
        if self.rows == 0:
            head = f"{self.title}\n\n" if self.title else ""
            rule = table_row(["---"] * min(len(cells), MAX_COLUMNS + 1))
            self.rows += 1
            return self.budget.block(f"{head}{table_row(cells)}\n{rule}")
        self.rows += 1
        return self.budget.add("\n" + table_row(cells))


def write_table(budget: TextBudget, rows: Iterable[Sequence[object]], title: str = "") -> bool:
    writer = TableWriter(budget, title)
    for row in rows:
        if not writer.row([cell_text(value) for value in row]):
            return False
    return True


def _dialect(sample: str) -> type[csv.Dialect] | None:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return None


def looks_tabular(text: str) -> bool:
    """Whether ``text`` parses as a table: at least two columns, the same in most rows."""
    sample = text[:_SAMPLE]
    dialect = _dialect(sample)
    if dialect is None:
        return False
    lines = sample.splitlines()
    if len(text) > _SAMPLE and len(lines) > 1:
        lines = lines[:-1]  # the sample may have cut the last line
    try:
        widths = [len(row) for row in itertools.islice(csv.reader(lines, dialect), 50) if row]
    except csv.Error:
        return False
    if not widths:
        return False
    width, count = Counter(widths).most_common(1)[0]
    return width >= 2 and count >= 0.8 * len(widths)


def csv_markdown(text: str, budget: TextBudget) -> None:
    """A CSV file's rows as one Markdown table (a broken row ends it: what came before stays)."""
    dialect = _dialect(text[:_SAMPLE]) or csv.excel
    try:
        write_table(budget, csv.reader(io.StringIO(text), dialect))
    except csv.Error:
        budget.truncated = True
