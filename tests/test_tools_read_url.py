"""read_url through the real httpx against the loopback page server: the article's text without
its boilerplate, PDFs and text through the file pipeline, and every refusal before any request."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.providers.base import ToolCall
from bot.settings import load_settings
from bot.tools import ToolBox, ToolContext, build_toolbox
from bot.types import Author, ConversationKey
from tests.fakes.pages import ARTICLE_SENTENCES, ARTICLE_TITLE, NAV_WORDS, PDF_SENTENCE, TEXT_BODY, PageServer

CTX = ToolContext(ConversationKey("console", "", "local", "t1"), Author("u1", "Ada"))


@pytest.fixture
async def pages() -> AsyncIterator[PageServer]:
    async with PageServer(huge_bytes=2 * 1024 * 1024) as server:
        yield server


async def read(tools: ToolBox, url: str) -> Any:
    return await tools.run(ToolCall("call_1", "read_url", f'{{"url": "{url}"}}'), CTX)


def toolbox(tmp_path: Path, **env: str) -> ToolBox:
    settings = load_settings({"APICORE_API_KEY": "k", "PARLEY_TOOLS": "read_url", **env}, cwd=tmp_path)
    return build_toolbox(settings, None)


@pytest.fixture
async def allowed(pages: PageServer, tmp_path: Path) -> AsyncIterator[ToolBox]:
    tools = toolbox(tmp_path, PARLEY_FETCH_ALLOW_HOSTS=f"127.0.0.1:{pages.port}")
    yield tools
    await tools.aclose()


async def test_an_article_reaches_the_model_without_its_navigation(
    pages: PageServer, allowed: ToolBox
) -> None:
    outcome = await read(allowed, f"{pages.url}/article")
    content = outcome.result.content
    assert not outcome.is_error, content
    assert f"Title: {ARTICLE_TITLE}" in content
    for sentence in ARTICLE_SENTENCES:
        assert sentence in content
    for boilerplate in (*NAV_WORDS, "Section 7", "Most read", "analytics"):
        assert boilerplate not in content
    assert content.startswith(f'<tool_output source="{pages.url}/article (a web page)">')
    # Nothing of Parley's goes along: no credentials, no cookies.
    (request,) = pages.requests
    assert not {"authorization", "cookie"} & {name.lower() for name in request.headers}
    assert request.headers["User-Agent"].startswith("Mozilla/5.0 (compatible; Parley/")


async def test_a_pdf_and_a_text_file_are_read_through_the_file_pipeline(
    pages: PageServer, allowed: ToolBox
) -> None:
    pdf = await read(allowed, f"{pages.url}/report.pdf")
    assert not pdf.is_error, pdf.result.content
    assert "[page 1]" in pdf.result.content and PDF_SENTENCE in pdf.result.content
    assert "(a PDF (2 pages))" in pdf.result.content
    text = await read(allowed, f"{pages.url}/notes.txt")
    assert TEXT_BODY.strip() in text.result.content


async def test_other_kinds_are_refused_with_a_sentence(pages: PageServer, allowed: ToolBox) -> None:
    picture = await read(allowed, f"{pages.url}/picture.png")
    assert picture.is_error
    assert picture.result.content == (
        f"{pages.url}/picture.png is a PNG image, not a page: read_url reads web pages, PDFs, office "
        "documents, EPUBs and text files."
    )
    blob = await read(allowed, f"{pages.url}/blob.bin")
    assert blob.is_error and "is not something read_url can read" in blob.result.content
    missing = await read(allowed, f"{pages.url}/missing")
    assert missing.result.content == f"Fetching {pages.url}/missing failed (HTTP 404)."


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/admin",
        "http://0.0.0.0:{port}/secret",
    ],
)
async def test_internal_addresses_are_refused_before_any_request(
    pages: PageServer, tmp_path: Path, target: str
) -> None:
    tools = toolbox(tmp_path)  # nothing allowed
    try:
        url = target.format(port=pages.port)
        outcome = await read(tools, url)
    finally:
        await tools.aclose()
    assert outcome.is_error
    assert outcome.result.content.startswith(f"read_url did not fetch {url}: host ")
    assert (
        "is a private, loopback or link-local address. It reads public addresses only."
        in outcome.result.content
    )
    assert pages.requests == []


async def test_a_redirect_to_an_internal_address_is_refused(pages: PageServer, allowed: ToolBox) -> None:
    for target in ("http://169.254.169.254/latest/meta-data/", f"http://localhost:{pages.port}/secret"):
        outcome = await read(allowed, f"{pages.url}/redirect?to={target}")
        assert outcome.is_error, outcome.result.content
        assert "private, loopback or link-local" in outcome.result.content
    assert pages.paths == ["/redirect", "/redirect"]  # the hop was checked, /secret never asked


@pytest.mark.parametrize(
    ("allow", "host", "fetched"),
    [
        ("127.0.0.1:{port}", "127.0.0.1:{port}", True),
        ("127.0.0.1", "127.0.0.1:{port}", True),  # a name alone allows every port
        ("127.0.0.1:{other}", "127.0.0.1:{port}", False),
        ("127.0.0.1:{port}", "localhost:{port}", False),
        ("localhost:{port}", "localhost:{port}", True),
        ("localhost:{port}", "127.0.0.1:{port}", False),
        ("127.0.0.10:{port}", "127.0.0.1:{port}", False),
    ],
)
async def test_the_allow_list_matches_exactly(
    pages: PageServer, tmp_path: Path, allow: str, host: str, fetched: bool
) -> None:
    other = pages.port + 1 if pages.port < 65535 else pages.port - 1
    tools = toolbox(tmp_path, PARLEY_FETCH_ALLOW_HOSTS=allow.format(port=pages.port, other=other))
    try:
        outcome = await read(tools, f"http://{host.format(port=pages.port)}/notes.txt")
    finally:
        await tools.aclose()
    assert outcome.is_error is not fetched, outcome.result.content
    assert pages.paths == (["/notes.txt"] if fetched else [])


async def test_size_and_time_caps(pages: PageServer, tmp_path: Path) -> None:
    tools = toolbox(
        tmp_path,
        PARLEY_FETCH_ALLOW_HOSTS=f"127.0.0.1:{pages.port}",
        PARLEY_FETCH_MAX_BYTES=str(1024 * 1024),
        PARLEY_FETCH_TIMEOUT="0.5",
    )
    try:
        huge = await read(tools, f"{pages.url}/huge")
        began = time.monotonic()
        slow = await read(tools, f"{pages.url}/slow?seconds=20")
        took = time.monotonic() - began
    finally:
        await tools.aclose()
    assert huge.result.content == f"{pages.url}/huge is larger than the 1.0 MB read_url reads."
    assert slow.result.content == f"Fetching {pages.url}/slow?seconds=20 failed (the download timed out)."
    assert took < 5


async def test_the_connection_goes_to_the_address_that_was_checked(
    pages: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "pages.test" exists only in this patched resolver: the fetch can only have reached the page
    # server through the address check_url resolved and checked, with the name kept in Host.
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def resolve(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "pages.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, port, *args, **kw)

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    tools = toolbox(tmp_path, PARLEY_FETCH_ALLOW_HOSTS=f"pages.test:{pages.port}")
    try:
        outcome = await read(tools, f"http://pages.test:{pages.port}/notes.txt")
    finally:
        await tools.aclose()
    assert not outcome.is_error, outcome.result.content
    assert pages.requests[-1].host == f"pages.test:{pages.port}"


async def test_urls_the_model_writes_loosely(pages: PageServer, allowed: ToolBox) -> None:
    slack_style = await read(allowed, f"<{pages.url}/notes.txt|notes>")
    assert not slack_style.is_error
    empty = await read(allowed, "  ")
    assert empty.result.content == "read_url needs a URL, and the url argument was empty."
    ftp = await read(allowed, "ftp://example.com/file")
    assert ftp.result.content == "read_url reads http and https addresses only, not ftp://example.com/file."
