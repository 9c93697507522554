"""Slack files as lazy fetchers: downloaded with the bot token, from Slack's file host only, capped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.files import FileFetcher, allowed_hosts
from bot.files import DownloadFailed, DownloadRefused, FileTooLarge
from tests.fakes.slack_api import DEFAULT_CHANNEL, FakeSlack
from tests.slack_harness import slack_bench

PDF = b"%PDF-1.4\n" + b"0" * 500 + b"\n%%EOF\n"


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def fetcher(fs: FakeSlack, token: str | None = None) -> FileFetcher:
    return FileFetcher(token or fs.bot_token, fs.api_url)


async def test_files_on_the_message_and_earlier_in_the_thread_are_fetched(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs = bench.fs
        notes = fs.add_file(b"notes from before", "notes.txt", mimetype="text/plain")
        parent = fs.channel_message("see attached", files=[notes])
        report = fs.add_file(PDF, "report.pdf")
        event = fs.app_mention("read these", thread_ts=parent["ts"], files=[report])
        await bench.deliver(event)
        await bench.reply_in(DEFAULT_CHANNEL, parent["ts"])
        fetched = {(f.name, f.data, f.error) for f in bench.files.fetched}
        assert fetched == {("notes.txt", b"notes from before", None), ("report.pdf", PDF, None)}
        assert [d.authorized for d in fs.file_downloads] == [True, True]


async def test_a_file_slack_will_not_hand_over_gets_a_clear_note(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs = bench.fs
        fs.scopes.discard("files:read")  # Slack then answers with its sign-in page
        event = fs.app_mention("read this", files=[fs.add_file(PDF, "report.pdf")])
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        shown = fs.visible_text(DEFAULT_CHANNEL, reply.ts)
        assert shown.startswith("I couldn't download report.pdf (Slack sent its sign-in page instead; ")
        assert shown.endswith("You said: read this")


async def test_download_sends_the_token_and_caps_the_body(fs: FakeSlack) -> None:
    f = fs.add_file(PDF, "report.pdf")
    files = fetcher(fs)
    try:
        (attachment,) = files.attachments([f])
        assert (attachment.name, attachment.declared_type, attachment.size, attachment.source_id) == (
            "report.pdf",
            "application/pdf",
            len(PDF),
            f["id"],
        )
        assert fs.file_downloads == []  # lazy: nothing fetched until asked
        assert await attachment.fetch(10_000) == PDF
        with pytest.raises(FileTooLarge):
            await attachment.fetch(100)  # the declared size is enough to know
        (undeclared,) = files.attachments([{**f, "size": None}])
        with pytest.raises(FileTooLarge):
            await undeclared.fetch(100)  # read past the cap: stopped
        assert len(fs.file_downloads) == 2
    finally:
        await files.aclose()


async def test_only_slacks_file_host_is_ever_asked(fs: FakeSlack) -> None:
    files = fetcher(fs)
    try:
        planted = {"id": "F1", "name": "x.pdf", "url_private": "https://attacker.example/x.pdf"}
        with pytest.raises(DownloadRefused):
            await files.attachments([planted])[0].fetch(1000)
        external = {"id": "F2", "name": "doc", "mode": "external", "url_private": "https://docs.google.com/x"}
        with pytest.raises(DownloadFailed):
            await files.attachments([external])[0].fetch(1000)
        assert files.attachments([{"id": "F3", "mode": "tombstone"}]) == []
        assert fs.file_downloads == []
    finally:
        await files.aclose()
    hosts = allowed_hosts("https://slack.com/api/")
    assert hosts.lists("files.slack.com") and not hosts.lists("slack.com") and not hosts.private
    assert allowed_hosts(fs.api_url).private == frozenset({"127.0.0.1"})


async def test_slack_connect_files_are_looked_up_first(fs: FakeSlack) -> None:
    f = fs.add_file(b"shared from elsewhere", "shared.txt", mimetype="text/plain")

    async def file_info(file_id: str) -> dict[str, object]:
        assert file_id == f["id"]
        return f

    files = FileFetcher(fs.bot_token, fs.api_url, file_info=file_info)
    try:
        hidden = {"id": f["id"], "name": "shared.txt", "file_access": "check_file_info"}
        assert await files.attachments([hidden])[0].fetch(1000) == b"shared from elsewhere"
    finally:
        await files.aclose()
