"""What a fetched body says, as text for the model: a web page's main content, a PDF's text
layer, an office document or EPUB as Markdown, a text file as it is. Anything else is refused
with a sentence.

The kind comes from the bytes, as for uploads (a server's Content-Type is only a hint), and the
readers are the upload pipeline's (:mod:`bot.files`), with the same limits and refusals.
Everything here is synchronous and CPU-bound: :func:`read_body` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.files.errors import FileError
from bot.files.markup import main_text
from bot.files.sniff import Kind, Sniffed, looks_like_html, sniff
from bot.tools.base import ToolFailed
from bot.tools.output import CUT_MARK

READS = "web pages, PDFs, office documents, EPUBs and text files"


@dataclass(frozen=True, slots=True)
class PageText:
    kind: str  # how to name what was read: "a web page", "a PDF (3 pages)", "a Word document"
    text: str


def read_page(data: bytes, url: str, *, max_chars: int) -> PageText:
    """``data`` as text; raises :class:`ToolFailed` for what Parley cannot read as text."""
    # What a browser would render as a page is one, even a fragment starting <p> or <div>.
    if looks_like_html(data, fragments=True):
        text = main_text(data, url=url).headed()
        if not text:
            raise ToolFailed(
                f"{url} has no readable text (the page may build its content with JavaScript, "
                "which read_url does not run)."
            )
        return PageText("a web page", text)
    sniffed = sniff(data)
    if sniffed.kind is Kind.PDF:
        return _pdf_text(data, url, max_chars=max_chars)
    if sniffed.kind is Kind.DOCUMENT:
        return _document_text(data, url, sniffed, max_chars=max_chars)
    if sniffed.kind is Kind.TEXT:
        return PageText("a text file", sniffed.text or "")
    if sniffed.kind is Kind.IMAGE:
        raise ToolFailed(f"{url} is {sniffed.label}, not a page: read_url reads {READS}.")
    raise ToolFailed(f"{url} is not something read_url can read (it reads {READS}).")


def _pdf_text(data: bytes, url: str, *, max_chars: int) -> PageText:
    from bot.files.pdf import extract_text

    try:
        extracted = extract_text(data, max_chars=max_chars, name=url)
    except FileError as exc:
        raise ToolFailed(exc.sentence(url)) from None
    if extracted.empty:
        raise ToolFailed(f"{url} is a PDF with no text layer (scanned pages), so there is nothing to read.")
    pages = f"{extracted.pages} page{'s' if extracted.pages != 1 else ''}"
    return PageText(f"a PDF ({pages})", extracted.text)


def _document_text(data: bytes, url: str, sniffed: Sniffed, *, max_chars: int) -> PageText:
    """A Word, Excel, PowerPoint, OpenDocument or EPUB file as Markdown, checked like an upload
    (zip bombs, entity tricks, encryption and damage refused with the upload's sentence)."""
    from bot.files.documents import read_document

    try:
        document = read_document(data, sniffed.format, max_chars=max_chars, name=url, text=sniffed.text)
    except FileError as exc:
        raise ToolFailed(exc.sentence(url)) from None
    if not document.text.strip():
        raise ToolFailed(f"{url} is {sniffed.label} with no text in it.")
    text = f"{document.text}\n{CUT_MARK}" if document.truncated else document.text
    return PageText(sniffed.label, text)


async def read_body(data: bytes, url: str, *, max_chars: int) -> PageText:
    """:func:`read_page` in a worker thread: parsing a large page or document must not stall replies."""
    return await asyncio.to_thread(read_page, data, url, max_chars=max_chars)
