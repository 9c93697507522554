"""What a fetched body says, as text for the model: a web page's main content, a PDF's text
layer, a text file as it is. Anything else is refused with a sentence.

The kind comes from the bytes, as for uploads (a server's Content-Type is only a hint).
Everything here is synchronous and CPU-bound: :func:`read_body` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.files.errors import FileError
from bot.files.sniff import Kind, sniff
from bot.tools.base import ToolFailed

log = logging.getLogger("parley.tools")

# trafilatura logs every page it finds little in; that is the page's business, not Parley's.
logging.getLogger("trafilatura").setLevel(logging.ERROR)

# The WHATWG MIME sniffing signatures for HTML: one of these tags (case-insensitive) first,
# after any whitespace or byte order mark, followed by a space or ">".
_HTML_SIGNATURES = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p", b"<!--",
)  # fmt: skip
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")


@dataclass(frozen=True, slots=True)
class PageText:
    kind: str  # how to name what was read: "a web page", "a PDF (3 pages)", "a text file"
    text: str


def looks_like_html(data: bytes) -> bool:
    head = data[:1024]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    head = head.lstrip(b" \t\n\r\x0c").lower()
    for signature in _HTML_SIGNATURES:
        if head.startswith(signature):
            rest = head[len(signature) : len(signature) + 1]
            if signature == b"<!--" or rest in (b" ", b">", b"\t", b"\n", b"\r", b"\x0c"):
                return True
    # <?xml …?> before <html>: XHTML.
    return head.startswith(b"<?xml") and b"<html" in head


def html_text(data: bytes, url: str) -> str:
    """The main text of a page as Markdown, headed by its title, author and date where known.

    trafilatura scores the page's blocks and keeps the article: menus, cookie banners, sidebars
    and footers stay out. It is imported here, not at start-up: it weighs about 25 MB.
    """
    import trafilatura

    document = trafilatura.extract_with_metadata(
        data,
        url=url,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        include_links=False,
    )
    body = (document.text or "") if document is not None else ""
    if body.startswith("---\n"):  # the metadata block; restated below in plain words
        body = body.split("\n---\n", 1)[-1]
    body = body.strip()
    if not body:
        return ""
    header = []
    if document is not None:
        for label, value in (("Title", document.title), ("Author", document.author), ("Date", document.date)):
            if value:
                header.append(f"{label}: {value}")
    return "\n".join(header) + ("\n\n" if header else "") + body


def read_page(data: bytes, url: str, *, max_chars: int) -> PageText:
    """``data`` as text; raises :class:`ToolFailed` for what Parley cannot read as text."""
    if looks_like_html(data):
        text = html_text(data, url)
        if not text:
            raise ToolFailed(
                f"{url} has no readable text (the page may build its content with JavaScript, "
                "which read_url does not run)."
            )
        return PageText("a web page", text)
    sniffed = sniff(data)
    if sniffed.kind is Kind.PDF:
        return _pdf_text(data, url, max_chars=max_chars)
    if sniffed.kind is Kind.TEXT:
        return PageText("a text file", sniffed.text or "")
    if sniffed.kind is Kind.IMAGE:
        raise ToolFailed(
            f"{url} is {sniffed.label}, not a page: read_url reads web pages, PDFs and text files."
        )
    raise ToolFailed(
        f"{url} is not something read_url can read (it reads web pages, PDFs and UTF-8 text files)."
    )


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


async def read_body(data: bytes, url: str, *, max_chars: int) -> PageText:
    """:func:`read_page` in a worker thread: parsing a large page or PDF must not stall replies."""
    return await asyncio.to_thread(read_page, data, url, max_chars=max_chars)
