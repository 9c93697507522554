"""Bounded downloads: only listed hosts (every redirect hop re-checked), no internal addresses
unless explicitly allowed, byte caps enforced while streaming, failures named."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.files import (
    AllowedHosts,
    DownloadBudget,
    DownloadFailed,
    DownloadRefused,
    FileService,
    FileTooLarge,
    check_url,
    fetch_url,
    url_fetcher,
)
from bot.settings import Settings
from bot.store import Store
from bot.types import Attachment, ConversationKey
from tests.files_helpers import pdf

REPORT = pdf()
BIG = 5 * 1024 * 1024


@dataclass
class FileHost:
    url: str = ""
    port: int = 0
    hits: list[tuple[str, str, str | None]] = field(default_factory=list)  # (host, path, auth)
    streamed: int = 0  # bytes the chunked route got out before the client hung up


@pytest.fixture
async def host() -> AsyncIterator[FileHost]:
    state = FileHost()

    def record(request: web.Request) -> None:
        state.hits.append((request.host.split(":")[0], request.path, request.headers.get("Authorization")))

    async def file(request: web.Request) -> web.Response:
        record(request)
        return web.Response(body=REPORT, content_type="application/pdf")

    def redirect_to(target: str) -> web.RequestHandler:  # type: ignore[type-arg]
        async def handler(request: web.Request) -> web.Response:
            record(request)
            raise web.HTTPFound(target.format(port=state.port))

        return handler

    async def chunked(request: web.Request) -> web.StreamResponse:
        record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"\0" * 65536
        try:
            while state.streamed < BIG:
                await response.write(chunk)
                state.streamed += len(chunk)
                await asyncio.sleep(0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def declared(request: web.Request) -> web.Response:
        record(request)
        return web.Response(body=b"\0" * BIG)

    async def missing(request: web.Request) -> web.Response:
        record(request)
        return web.Response(status=404, text="no such file")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=REPORT)

    app = web.Application()
    app.router.add_get("/file", file)
    app.router.add_get("/same", redirect_to("/file"))
    app.router.add_get("/to-localhost", redirect_to("http://localhost:{port}/file"))
    app.router.add_get("/to-loopback", redirect_to("http://127.0.0.1:{port}/file"))
    app.router.add_get("/to-elsewhere", redirect_to("https://evil.example/file"))
    app.router.add_get("/loop", redirect_to("/loop"))
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/declared", declared)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{state.port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


LOOPBACK = AllowedHosts.of(["127.0.0.1"], private=["127.0.0.1"])
TOKEN = {"Authorization": "Bearer xoxb-test"}


async def test_an_allowed_host_is_fetched_with_the_token(host: FileHost, client: httpx.AsyncClient) -> None:
    data = await fetch_url(client, f"{host.url}/file", allowed=LOOPBACK, max_bytes=10_000, headers=TOKEN)
    assert data == REPORT
    assert host.hits == [("127.0.0.1", "/file", "Bearer xoxb-test")]


async def test_a_redirect_on_the_same_host_is_followed(host: FileHost, client: httpx.AsyncClient) -> None:
    data = await fetch_url(client, f"{host.url}/same", allowed=LOOPBACK, max_bytes=10_000, headers=TOKEN)
    assert data == REPORT
    assert [hit[1:] for hit in host.hits] == [("/same", "Bearer xoxb-test"), ("/file", "Bearer xoxb-test")]


async def test_a_host_not_on_the_list_is_refused_without_a_request(
    host: FileHost, client: httpx.AsyncClient
) -> None:
    allowed = AllowedHosts.of(["files.slack.com"])
    with pytest.raises(DownloadRefused) as refused:
        await fetch_url(client, f"{host.url}/file", allowed=allowed, max_bytes=10_000, name="report.pdf")
    assert host.hits == []
    assert refused.value.sentence() == (
        "I didn't download report.pdf: its address is not on the platform's file host."
    )


@pytest.mark.parametrize("path", ["/to-localhost", "/to-elsewhere"])
async def test_a_redirect_to_another_host_is_refused(
    host: FileHost, client: httpx.AsyncClient, path: str
) -> None:
    with pytest.raises(DownloadRefused):
        await fetch_url(client, f"{host.url}{path}", allowed=LOOPBACK, max_bytes=10_000)
    assert [hit[1] for hit in host.hits] == [path]  # the second hop never went out


async def test_a_redirect_to_loopback_is_refused_unless_loopback_is_allowed_for_it(
    host: FileHost, client: httpx.AsyncClient
) -> None:
    # Both names are listed, but only "localhost" may be internal: 127.0.0.1 may not.
    allowed = AllowedHosts.of(["localhost", "127.0.0.1"], private=["localhost"])
    with pytest.raises(DownloadRefused) as refused:
        await fetch_url(
            client, f"http://localhost:{host.port}/to-loopback", allowed=allowed, max_bytes=10_000
        )
    assert "internal address" in refused.value.detail
    assert [hit[1] for hit in host.hits] == ["/to-loopback"]


async def test_the_token_is_not_sent_to_another_allowed_host(
    host: FileHost, client: httpx.AsyncClient
) -> None:
    allowed = AllowedHosts.of(["localhost", "127.0.0.1"], private=["localhost", "127.0.0.1"])
    data = await fetch_url(
        client, f"{host.url}/to-localhost", allowed=allowed, max_bytes=10_000, headers=TOKEN
    )
    assert data == REPORT
    assert host.hits == [("127.0.0.1", "/to-localhost", "Bearer xoxb-test"), ("localhost", "/file", None)]


async def test_a_declared_size_over_the_cap_is_refused_before_the_body(
    host: FileHost, client: httpx.AsyncClient
) -> None:
    with pytest.raises(FileTooLarge) as too_large:
        await fetch_url(client, f"{host.url}/declared", allowed=LOOPBACK, max_bytes=BIG - 1, name="big.bin")
    assert (too_large.value.size, too_large.value.limit) == (BIG, BIG - 1)
    assert (
        too_large.value.sentence()
        == "I couldn't read big.bin: it is 5.0 MB, and Parley reads files up to 4.9 MB."
    )


async def test_an_undeclared_body_is_cut_off_at_the_cap_while_streaming(
    host: FileHost, client: httpx.AsyncClient
) -> None:
    with pytest.raises(FileTooLarge):
        await fetch_url(client, f"{host.url}/chunked", allowed=LOOPBACK, max_bytes=200_000)
    await asyncio.sleep(0.05)
    assert host.streamed < BIG  # the client hung up instead of reading it all


async def test_failures_are_named(host: FileHost, client: httpx.AsyncClient) -> None:
    with pytest.raises(DownloadFailed) as missing:
        await fetch_url(client, f"{host.url}/missing", allowed=LOOPBACK, max_bytes=10_000, name="a.pdf")
    assert missing.value.sentence() == "I couldn't download a.pdf (HTTP 404)."
    with pytest.raises(DownloadFailed) as slow:
        await fetch_url(
            client, f"{host.url}/slow", allowed=LOOPBACK, max_bytes=10_000, name="a.pdf", time_limit=0.3
        )
    assert slow.value.sentence() == "I couldn't download a.pdf (the download timed out)."
    with pytest.raises(DownloadFailed) as loop:
        await fetch_url(client, f"{host.url}/loop", allowed=LOOPBACK, max_bytes=10_000, name="a.pdf")
    assert loop.value.sentence() == "I couldn't download a.pdf (too many redirects)."


async def test_a_file_larger_than_the_platform_said_stops_at_the_cap_in_the_service(
    host: FileHost, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        service = FileService(Settings(parley_file_max_bytes=300_000), store)
        fetch = url_fetcher(client, f"{host.url}/chunked", allowed=LOOPBACK)
        small = Attachment(name="notes.txt", declared_type="text/plain", size=12, fetch=fetch)
        conversation = await store.conversations.find_or_create(ConversationKey("console", "", "c", "t"))
        prepared = await service.prepare(conversation.id, [small], "claude-sonnet-4-5", question="q")
    finally:
        await store.close()
    assert prepared.parts == []
    assert prepared.notes == ["I couldn't read notes.txt: it is larger than the 292.9 KB Parley reads."]
    assert host.streamed < BIG


# --- the host check alone (IP literals: no DNS needed) ------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed", "outcome"),
    [
        ("https://localhost/x", AllowedHosts.of(["localhost"]), "refused"),  # resolves to loopback
        ("https://93.184.216.34/x", AllowedHosts.of(["93.184.216.34"]), "ok"),
        ("http://93.184.216.34/x", AllowedHosts.of(["93.184.216.34"]), "refused"),
        ("https://10.0.0.5/x", AllowedHosts.of(["10.0.0.5"]), "refused"),
        ("https://169.254.169.254/latest", AllowedHosts.of(["169.254.169.254"]), "refused"),
        ("https://[::ffff:127.0.0.1]/x", AllowedHosts.of(["::ffff:127.0.0.1"]), "refused"),
        ("https://[::1]/x", AllowedHosts.of(["::1"]), "refused"),
        ("https://93.184.216.35/x", AllowedHosts.of(["93.184.216.34"]), "refused"),
    ],
)
async def test_check_url(url: str, allowed: AllowedHosts, outcome: str) -> None:
    if outcome == "ok":
        await check_url(httpx.URL(url), allowed)
    else:
        with pytest.raises(DownloadRefused):
            await check_url(httpx.URL(url), allowed)


def test_domain_entries_match_subdomains_only() -> None:
    allowed = AllowedHosts.of([".slack-edge.com", "files.slack.com"])
    assert allowed.lists("files.slack.com") and allowed.lists("a.b.slack-edge.com")
    assert allowed.lists("FILES.SLACK.COM.")
    assert not allowed.lists("slack.com") and not allowed.lists("evil-slack-edge.com")
    assert not allowed.lists("files.slack.com.evil.example")


def test_the_message_budget_counts_files_and_bytes() -> None:
    budget = DownloadBudget(per_file=100, total=150, count=2)
    assert budget.admit() and budget.allowance() == (100, False)
    budget.spend(100)
    assert budget.allowance() == (50, True)
    assert budget.admit() and not budget.admit()
