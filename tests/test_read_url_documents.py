"""read_url reads what uploads read: office documents and EPUBs through the file pipeline's
readers (same checks, same sentences), and web pages through the one HTML helper uploads use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.files.markup import MainText, html_markdown, main_text
from bot.files.sniff import looks_like_html
from bot.providers.base import ToolCall
from bot.settings import load_settings
from bot.tools import ToolBox, ToolContext, build_toolbox
from bot.tools.output import CUT_MARK
from bot.tools.page import read_page
from bot.types import Author, ConversationKey
from tests import document_helpers as made
from tests.document_helpers import SENTENCE
from tests.fakes.pages import ARTICLE_TITLE, NAV_WORDS, PageServer, article_html

CTX = ToolContext(ConversationKey("console", "", "local", "t1"), Author("u1", "Ada"))
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
async def tools(pages: PageServer, tmp_path: Path) -> AsyncIterator[ToolBox]:
    settings = load_settings(
        {
            "APICORE_API_KEY": "k",
            "PARLEY_TOOLS": "read_url",
            "PARLEY_FETCH_ALLOW_HOSTS": f"127.0.0.1:{pages.port}",
        },
        cwd=tmp_path,
    )
    box = build_toolbox(settings, None)
    yield box
    await box.aclose()


async def read(tools: ToolBox, url: str) -> Any:
    return await tools.run(ToolCall("call_1", "read_url", f'{{"url": "{url}"}}'), CTX)


DOCUMENTS: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("report.docx", made.docx, DOCX_TYPE, "a Word document"),
    (
        "figures.xlsx",
        made.xlsx,
        "application/octet-stream",
        "an Excel workbook",
    ),  # the server's type is a hint
    ("deck.pptx", made.pptx, "application/zip", "a PowerPoint presentation"),
    ("report.odt", made.odt, "application/vnd.oasis.opendocument.text", "an OpenDocument text"),
    ("book.epub", made.epub, "application/epub+zip", "an EPUB book"),
]


@pytest.mark.parametrize(("name", "maker", "served_as", "kind"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
async def test_a_linked_document_is_read_as_markdown(
    pages: PageServer,
    tools: ToolBox,
    name: str,
    maker: Callable[[], bytes],
    served_as: str,
    kind: str,
) -> None:
    pages.files[name] = (maker(), served_as)
    url = f"{pages.url}/files/{name}"
    outcome = await read(tools, url)
    content = outcome.result.content
    assert not outcome.is_error, content
    assert content.startswith(f'<tool_output source="{url} ({kind})">')
    assert SENTENCE in content
    assert "<w:" not in content and "PK\x03\x04" not in content  # text, not the package


async def test_a_word_documents_structure_survives(pages: PageServer, tools: ToolBox) -> None:
    pages.files["report.docx"] = (made.docx(), DOCX_TYPE)
    content = (await read(tools, f"{pages.url}/files/report.docx")).result.content
    assert (
        "# Quarterly review\n\nThe harbour bridge opens at dawn.\n\n## Risks\n\n- supply\n- staffing"
        in content
    )
    assert "| North \\| East | 10 |" in content


async def test_a_linked_document_that_cannot_be_read_gets_the_uploads_sentence(
    pages: PageServer, tools: ToolBox
) -> None:
    pages.files["broken.docx"] = (made.corrupt_docx(), DOCX_TYPE)
    pages.files["bomb.docx"] = (made.zip_bomb(), DOCX_TYPE)
    pages.files["locked.docx"] = (made.cfb("EncryptionInfo", "EncryptedPackage"), DOCX_TYPE)
    broken = await read(tools, f"{pages.url}/files/broken.docx")
    assert broken.is_error
    assert broken.result.content == (
        f"I couldn't read {pages.url}/files/broken.docx: the file is damaged and can't be opened."
    )
    bomb = await read(tools, f"{pages.url}/files/bomb.docx")
    assert bomb.is_error and bomb.result.content.startswith(f"I couldn't read {pages.url}/files/bomb.docx: ")
    assert "zip bomb" in bomb.result.content
    locked = await read(tools, f"{pages.url}/files/locked.docx")
    assert locked.is_error and "password-protected" in locked.result.content


def test_a_long_document_is_cut_with_a_mark() -> None:
    page = read_page(made.xlsx(), "https://example.com/figures.xlsx", max_chars=60)
    assert page.kind == "an Excel workbook"
    assert page.text.endswith(f"\n{CUT_MARK}") and len(page.text) <= 60 + len(CUT_MARK) + 1


# --- one HTML helper for uploads and read_url ----------------------------------------------------


@pytest.mark.parametrize(
    ("start", "upload", "fetched"),
    [
        (b"<!DOCTYPE html><html>", True, True),
        (b"\xef\xbb\xbf  <HTML lang=en>", True, True),
        (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">', True, True),
        (b"<meta charset=utf-8><body><p>hi</p></body>", True, True),
        # Fragments: a browser renders them as a page; an upload starting so is more likely markup
        # someone wants to ask about as it is.
        (b"<p>Opening times</p>", False, True),
        (b"<!-- generated --><div>x</div>", False, True),
        (b"<div class=x>menu</div>", False, True),
        (b"<pre>code</pre>", False, False),
        (b"<profile>not html</profile>", False, False),
        (b"plain text with <b>bold</b>", False, False),
    ],
)
def test_what_counts_as_a_page(start: bytes, upload: bool, fetched: bool) -> None:
    assert looks_like_html(start) is upload
    assert looks_like_html(start, fragments=True) is fetched


def test_the_main_text_of_a_page_with_its_title_author_and_date() -> None:
    main = main_text(article_html().encode(), url="https://estuary.example/article")
    assert (main.title, main.author, main.date) == (ARTICLE_TITLE, "Rhiannon Price", "2026-03-03")
    assert main.body.startswith(f"# {ARTICLE_TITLE}\n\nThe Severn estuary")
    assert not any(word in main.body for word in NAV_WORDS)
    assert main.headed().startswith(f"Title: {ARTICLE_TITLE}\nAuthor: Rhiannon Price\nDate: 2026-03-03\n\n# ")
    assert MainText("").headed() == "" and MainText("body").headed() == "body"
    assert main_text(b"  ") == MainText("")


def test_an_uploaded_page_keeps_its_title_and_falls_back_to_all_its_text() -> None:
    # The page's first heading is its title, which the main text leaves out: it is kept as a field.
    page = html_markdown(made.html())
    assert page.startswith("Title: Quarterly review\n\n")
    assert f"{SENTENCE}\n\n- supply\n- staffing" in page
    # Mostly a list of links (what trafilatura drops as navigation): all of the visible text.
    links = "".join(f"<li><a href='/{i}'>Chapter {i} of the harbour handbook</a></li>" for i in range(30))
    index = f"<html><body><p>Contents.</p><ul>{links}</ul></body></html>".encode()
    assert "Chapter 29 of the harbour handbook" in html_markdown(index)
    assert html_markdown(b"") == ""
