"""Word, PowerPoint and Excel files (OOXML) as Markdown, with python-docx, python-pptx and openpyxl.

The containers are checked first (:mod:`bot.files.containers`). The XML parsers are the
libraries' own, and none expands entities: python-docx and python-pptx parse with lxml and
``resolve_entities=False`` (lxml never loads a DTD or touches the network by default), and
openpyxl parses with defusedxml whenever it is installed, which Parley requires.

python-docx and python-pptx load the whole package, so they are imported only here, when such
a file arrives, and only after its unpacked size has been checked.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from bot.files.tables import MAX_COLUMNS, TableWriter, TextBudget, cell_text, write_table

# openpyxl warns about every unknown extension and style it skips.
logging.getLogger("openpyxl").setLevel(logging.ERROR)

_HEADING = re.compile(r"^(?:heading|überschrift|titre)\s*(\d)$", re.IGNORECASE)


def _stream(data: bytes) -> io.BufferedReader:
    # A reader in front of BytesIO keeps zipfile from asking for (and copying) its buffer.
    return io.BufferedReader(io.BytesIO(data))


# -- Word ------------------------------------------------------------------------------------------


def _paragraph_markdown(paragraph: Any) -> tuple[str, bool]:
    """(the paragraph as Markdown, whether it is a list item)."""
    text = paragraph.text.strip()
    if not text:
        return "", False
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    heading = _HEADING.match(style)
    if heading:
        return "#" * min(int(heading.group(1)), 6) + " " + text, False
    if style.lower() == "title":
        return "# " + text, False
    lowered = style.lower()
    if "list number" in lowered:
        return "1. " + text, True
    p_pr = paragraph._p.pPr
    if "list" in lowered or (p_pr is not None and p_pr.numPr is not None):
        level = 0
        if p_pr is not None and p_pr.numPr is not None and p_pr.numPr.ilvl is not None:
            level = min(int(p_pr.numPr.ilvl.val or 0), 8)
        return "  " * level + "- " + text, True
    return text, False


def _table_rows(table: Any) -> Iterator[list[str]]:
    for row in table.rows:
        yield [cell_text(cell.text) for cell in row.cells]


def docx_markdown(data: bytes, budget: TextBudget) -> None:
    import docx
    from docx.table import Table

    document = docx.Document(_stream(data))
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            writer = TableWriter(budget)
            for cells in _table_rows(block):
                if not writer.row(cells):
                    return
        else:
            text, is_item = _paragraph_markdown(block)
            if not (budget.item(text) if is_item else budget.block(text)):
                return


# -- PowerPoint ------------------------------------------------------------------------------------


def _shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    """Every shape, group members included, in the slide's order."""
    for shape in shapes:
        if getattr(shape, "shape_type", None) is not None and hasattr(shape, "shapes"):
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _text_frame_lines(frame: Any, bullets: bool) -> list[str]:
    lines = []
    for paragraph in frame.paragraphs:
        text = "".join(run.text for run in paragraph.runs).strip() or paragraph.text.strip()
        if text:
            indent = "  " * min(paragraph.level, 8)
            lines.append(f"{indent}- {text}" if bullets else f"{indent}{text}")
    return lines


def _slide_markdown(number: int, slide: Any, budget: TextBudget) -> bool:
    title_shape = slide.shapes.title
    title = title_shape.text_frame.text.strip() if title_shape is not None else ""
    if not budget.block(f"## Slide {number}" + (f": {title}" if title else "")):
        return False
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False):
            if not write_table(budget, ([c.text for c in row.cells] for row in shape.table.rows)):
                return False
        elif getattr(shape, "has_text_frame", False):
            bullets = bool(getattr(shape, "is_placeholder", False))
            if not budget.block("\n".join(_text_frame_lines(shape.text_frame, bullets))):
                return False
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            return budget.block("Speaker notes: " + " ".join(notes.text.split()))
    return not budget.full


def pptx_markdown(data: bytes, budget: TextBudget) -> None:
    from pptx import Presentation

    presentation = Presentation(_stream(data))
    for number, slide in enumerate(presentation.slides, 1):
        if not _slide_markdown(number, slide, budget):
            return


# -- Excel ------------------------------------------------------------------------------------------


def xlsx_markdown(data: bytes, budget: TextBudget) -> None:
    """Each sheet as a table under its name, read row by row (openpyxl's read-only mode streams
    the sheet XML), stopping once the budget is full. The sheet names come first, so the model
    knows of every sheet even when the text is cut."""
    import openpyxl

    workbook = openpyxl.load_workbook(_stream(data), read_only=True, data_only=True, keep_links=False)
    try:
        sheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]  # not charts
        names = ", ".join(sheet.title for sheet in sheets)
        budget.block(f"Workbook with {len(sheets)} sheet{'s' if len(sheets) != 1 else ''}: {names}")
        for sheet in sheets:
            title = f"## Sheet: {sheet.title}"
            # The declared dimension is a hint a file may get wrong: read the rows that are there.
            sheet.reset_dimensions()
            writer = TableWriter(budget, title)
            for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1):
                if not writer.row([cell_text(value) for value in row]):
                    return
            if writer.rows == 0 and not budget.block(f"{title}\n\n(empty)"):
                return
    finally:
        workbook.close()
