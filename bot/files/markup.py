"""Web pages (HTML) and EPUB books as Markdown text.

A page's main text comes from :func:`main_text`, for uploads and for ``read_url`` alike:
trafilatura drops scripts, styles, menus, cookie banners and footers and keeps headings, lists
and tables as Markdown, and says the page's title, author and date where it finds them. An
uploaded page (:func:`html_markdown`) may be a document in its own right rather than an article
in boilerplate: when the main text is much shorter than everything visible, or empty, the whole
visible text is used instead, so an upload is never answered with nothing. trafilatura parses
with lxml's HTML parser, which knows no entity declarations.

An EPUB is a ZIP: ``META-INF/container.xml`` names the package document, whose spine lists the
chapters in reading order. A chapter has no boilerplate to drop and every heading matters (a
main-text extractor takes a chapter's first heading for a page title and drops it), so chapters
are walked element by element instead (:func:`xhtml_markdown`), with lxml's HTML parser too.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import zipfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from bot.files.containers import read_small
from bot.files.errors import DocumentRefused
from bot.files.tables import TextBudget, cell_text, table_row

# trafilatura logs every page it finds too short or too noisy; that is not Parley's problem to log.
logging.getLogger("trafilatura").setLevel(logging.ERROR)

HTML_MAX_BYTES = 8 * 1024 * 1024  # of one page or chapter: far more markup than 100k chars of text need
_PACKAGE_MAX_BYTES = 4 * 1024 * 1024
_FONTS = (".otf", ".ttf", ".woff", ".woff2")  # obfuscated fonts are not DRM: the text is readable
_CHAPTER_TYPES = ("application/xhtml+xml", "text/html")


@functools.cache
def _config() -> Any:
    from trafilatura.settings import use_config

    config = use_config()
    # A page may be short and its main text still all there is: keep it, rather than fall back
    # (below trafilatura's default of 250 characters) to extractors that keep the boilerplate.
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
    # The date from the page's markup (meta tags, bylines, structured data), not from regular
    # expressions run over all of its text: that search took 6 s of a 10 MB page's 7.
    config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")
    return config


@dataclass(frozen=True, slots=True)
class MainText:
    """A page's main text as Markdown, and what is known about the page."""

    body: str  # "" when the page has no main text
    title: str = ""
    author: str = ""
    date: str = ""  # YYYY-MM-DD, trafilatura's reading of the page's date

    def headed(self) -> str:
        """The body under ``Title:``, ``Author:`` and ``Date:`` lines for what is known (the title
        is often the page's first heading, which the body then leaves out)."""
        if not self.body:
            return ""
        known = (("Title", self.title), ("Author", self.author), ("Date", self.date))
        header = "\n".join(f"{label}: {value}" for label, value in known if value)
        return f"{header}\n\n{self.body}" if header else self.body


def main_text(html: bytes, *, url: str | None = None) -> MainText:
    """The main text of a page (``url``: where it came from, which helps date and title it)."""
    import trafilatura

    if not html.strip():
        return MainText("")
    document = trafilatura.extract_with_metadata(
        html,
        url=url,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        config=_config(),
    )
    if document is None:
        return MainText("")
    text = document.text or ""
    if text.startswith("---\n"):  # the metadata as YAML front matter; kept as fields instead
        text = text.split("\n---\n", 1)[-1]
    return MainText(text.strip(), _field(document.title), _field(document.author), _field(document.date))


def _field(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def html_markdown(html: bytes) -> str:
    """An uploaded page as Markdown: its main text, headed, or its whole visible text (see above);
    empty if it has none."""
    import trafilatura

    main = main_text(html)
    plain = (trafilatura.html2txt(html) or "") if html.strip() else ""
    # Main-text extraction is for pages with boilerplate around an article; when it keeps much
    # less than the page holds, the upload is more likely a document in its own right.
    if not main.body or len(main.body) < 0.3 * len(plain):
        return plain.strip()
    return main.headed()


_SKIP = frozenset({"head", "script", "style", "template", "noscript", "svg", "math"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "blockquote",
        "pre",
        "figure",
        "figcaption",
        "address",
        "dl",
        "dt",
        "dd",
        "ul",
        "ol",
        "table",
        "tr",
        "hr",
        "body",
    }
)


def _table(element: Any) -> str:
    """A table as Markdown rows (the first row is the header), cells flattened to one line."""
    rows = [
        table_row([cell_text(" ".join(cell.text_content().split())) for cell in row.iter("td", "th")])
        for row in element.iter("tr")
    ]
    rows = [row for row in rows if row.strip("| ")]
    if not rows:
        return ""
    width = rows[0].count(" | ") + 1
    return "\n".join([rows[0], table_row(["---"] * width), *rows[1:]])


def _walk(element: Any, lines: list[str], current: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _SKIP:
        return
    if tag == "table":
        _flush(lines, current)
        table = _table(element)
        if table:
            lines.append(table)
        return
    block = tag in _BLOCKS or tag in _HEADINGS or tag == "li"
    if block:
        _flush(lines, current)
    if tag in _HEADINGS:
        current.append("#" * _HEADINGS[tag] + " ")
    elif tag == "li":
        current.append("- ")
    elif tag == "br":
        current.append("\n")
    current.append(element.text or "")
    for child in element:
        _walk(child, lines, current)
        current.append(child.tail or "")
    if block:
        _flush(lines, current)


def _flush(lines: list[str], current: list[str]) -> None:
    text = "".join(current).strip()
    text = "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
    if text and text not in ("-", "#"):
        lines.append(text)
    current.clear()


def xhtml_markdown(data: bytes) -> str:
    """The text of an EPUB chapter, every heading, paragraph and list item kept, in order."""
    import lxml.html

    if not data.strip():
        return ""
    root = lxml.html.document_fromstring(data)
    lines: list[str] = []
    current: list[str] = []
    _walk(root, lines, current)
    _flush(lines, current)
    return "\n\n".join(lines)


def html_document(data: bytes, budget: TextBudget) -> None:
    if len(data) > HTML_MAX_BYTES:
        data = data[:HTML_MAX_BYTES]  # lxml recovers from the cut; the note says it was cut
        budget.truncated = True
    budget.block(html_markdown(data))


def _xml(data: bytes | None, name: str, what: str) -> Any:
    from defusedxml.ElementTree import ParseError, fromstring

    if data is None:
        raise DocumentRefused("damaged", name=name, detail=f"epub: no {what}")
    try:
        return fromstring(data)
    except (ParseError, ValueError) as exc:
        raise DocumentRefused("damaged", name=name, detail=f"epub: {what}: {exc}") from None


def _check_drm(archive: zipfile.ZipFile, name: str) -> None:
    listing = read_small(archive, "META-INF/encryption.xml", _PACKAGE_MAX_BYTES)
    if listing is None:
        return
    root = _xml(listing, name, "encryption.xml")
    for reference in root.findall(".//{*}CipherReference"):
        if not reference.get("URI", "").lower().endswith(_FONTS):
            raise DocumentRefused("drm", name=name)


def _package_path(archive: zipfile.ZipFile, name: str) -> str:
    container = _xml(read_small(archive, "META-INF/container.xml", _PACKAGE_MAX_BYTES), name, "container.xml")
    for rootfile in container.findall(".//{*}rootfile"):
        path = rootfile.get("full-path")
        if path:
            return str(path)
    raise DocumentRefused("damaged", name=name, detail="epub: container.xml names no package")


def _chapters(package: Any, base: str) -> tuple[str, list[str]]:
    """(the book's title, the chapters' paths in reading order)."""
    title = next((t.text or "" for t in package.findall(".//{http://purl.org/dc/elements/1.1/}title")), "")
    manifest = {
        item.get("id"): (item.get("href", ""), item.get("media-type", ""))
        for item in package.findall(".//{*}item")
    }
    paths: list[str] = []
    for itemref in package.findall(".//{*}itemref"):
        href, media_type = manifest.get(itemref.get("idref"), ("", ""))
        if href and media_type in _CHAPTER_TYPES:
            paths.append(posixpath.normpath(posixpath.join(base, unquote(href))))
    return " ".join(title.split()), paths


def epub_markdown(archive: zipfile.ZipFile, budget: TextBudget, name: str) -> None:
    _check_drm(archive, name)
    package_path = _package_path(archive, name)
    package = _xml(read_small(archive, package_path, _PACKAGE_MAX_BYTES), name, package_path)
    title, chapters = _chapters(package, posixpath.dirname(package_path))
    if not chapters:
        raise DocumentRefused("damaged", name=name, detail="epub: the spine lists no chapters")
    if title:
        budget.block(f"# {title}")
    for path in chapters:
        chapter = read_small(archive, path, HTML_MAX_BYTES)
        if chapter is None:
            continue  # listed but missing: read the rest
        if not budget.block(xhtml_markdown(chapter)):
            return
