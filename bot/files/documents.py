"""Documents beyond PDF as Markdown text, locally: DOCX, XLSX, PPTX, ODT, ODS, ODP, EPUB, HTML, CSV.

:func:`read_document` is synchronous and CPU-bound (run it in a worker thread) and returns at
most ``max_chars`` of text. Containers are checked before any library opens them (zip bombs,
entity declarations, encryption: :mod:`bot.files.containers`); anything a library raises on a
damaged file becomes a :class:`~bot.files.errors.DocumentRefused` that names the file.

Which library reads what, and why (figures in docs/files.md):

- DOCX: python-docx · PPTX: python-pptx · XLSX: openpyxl in read-only mode (streams the sheets)
- ODT/ODS/ODP: a streaming reader of ``content.xml`` (:mod:`bot.files.odf`)
- HTML, and EPUB chapters: trafilatura (:mod:`bot.files.markup`) · CSV: the standard library
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass

from bot.files.containers import (
    DEFAULT_LIMITS,
    ZipLimits,
    check_xml_prologues,
    check_zip,
    is_encrypted_ooxml,
    open_zip,
    read_small,
)
from bot.files.errors import DocumentRefused, FileError
from bot.files.tables import TextBudget, csv_markdown

log = logging.getLogger("parley.files")

# Formats whose library loads every part of the package into memory (python-docx, python-pptx).
_WHOLE_PACKAGE = ("docx", "pptx")
_MANIFEST_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DocumentText:
    text: str  # Markdown
    truncated: bool  # stopped at the character budget


def _check_unpacked(archive: zipfile.ZipFile, fmt: str, name: str, limits: ZipLimits) -> None:
    """What the format's library will hold at once must fit ``limits.whole_part_bytes``."""
    infos = archive.infolist()
    if fmt in _WHOLE_PACKAGE:
        held = sum(info.file_size for info in infos)
    elif fmt == "xlsx":
        # Sheets are streamed; the shared strings, styles and workbook are loaded whole.
        held = max((i.file_size for i in infos if not i.filename.startswith("xl/worksheets/")), default=0)
    else:
        return  # ODF and EPUB are read part by part, each with its own cap
    if held > limits.whole_part_bytes:
        raise DocumentRefused("too_big", name=name, detail=f"{fmt}: {held} bytes to load at once")


def _zipped(data: bytes, fmt: str, budget: TextBudget, name: str, limits: ZipLimits) -> None:
    with open_zip(data, name, limits) as archive:
        check_zip(archive, name, limits)
        check_xml_prologues(archive, name)
        _check_unpacked(archive, fmt, name, limits)
        if fmt == "docx":
            from bot.files.office import docx_markdown

            docx_markdown(data, budget)
        elif fmt == "pptx":
            from bot.files.office import pptx_markdown

            pptx_markdown(data, budget)
        elif fmt == "xlsx":
            from bot.files.office import xlsx_markdown

            xlsx_markdown(data, budget)
        elif fmt in ("odt", "ods", "odp"):
            from bot.files.odf import odf_markdown

            manifest = read_small(archive, "META-INF/manifest.xml", _MANIFEST_BYTES) or b""
            if b"encryption-data" in manifest:  # ODF encrypts the parts, not the ZIP
                raise DocumentRefused("encrypted", name=name)
            odf_markdown(archive, fmt, budget)
        elif fmt == "epub":
            from bot.files.markup import epub_markdown

            epub_markdown(archive, budget, name)
        else:
            raise DocumentRefused("damaged", name=name, detail=f"no reader for {fmt}")


def read_document(
    data: bytes,
    fmt: str,
    *,
    max_chars: int,
    name: str = "",
    text: str | None = None,
    limits: ZipLimits = DEFAULT_LIMITS,
) -> DocumentText:
    """The Markdown text of a document of format ``fmt`` (as :func:`bot.files.sniff.sniff` named
    it); ``text`` is the decoded text when the sniffer already has it (CSV)."""
    budget = TextBudget(max_chars)
    try:
        if fmt == "csv":
            csv_markdown(text if text is not None else data.decode("utf-8-sig"), budget)
        elif fmt == "html":
            from bot.files.markup import html_document

            html_document(data, budget)
        elif fmt == "ole":
            raise DocumentRefused("encrypted" if is_encrypted_ooxml(data) else "legacy", name=name)
        else:
            _zipped(data, fmt, budget, name, limits)
    except FileError as exc:
        exc.name = exc.name or name
        raise
    except MemoryError:
        raise DocumentRefused("too_big", name=name, detail="out of memory") from None
    except Exception as exc:  # the libraries raise many kinds on damaged files
        raise DocumentRefused("damaged", name=name, detail=f"{fmt}: {type(exc).__name__}: {exc}") from None
    return DocumentText(budget.text(), budget.truncated)
