"""A picture's upload into a Slack thread (``adapters.slack.uploads``), through the real slack_sdk
against the fake Slack: the file id, and Slack's refusals as the renderer's errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.slack.uploads import UploadRefused, upload_file
from bot.render.surface import RateLimited
from tests.fakes.slack import DEFAULT_CHANNEL, FakeSlack
from tests.fakes.slack.clients import web_client

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def upload(fs: FakeSlack, thread_ts: str) -> str:
    return await upload_file(
        web_client(fs), channel=DEFAULT_CHANNEL, thread_ts=thread_ts, name="fox.png", data=PNG
    )


async def test_an_upload_is_shared_into_the_thread(fs: FakeSlack) -> None:
    parent = fs.app_mention("draw me a fox")
    file_id = await upload(fs, parent["ts"])
    assert fs.file_bytes(file_id) == PNG
    (shared,) = fs.bot_messages(DEFAULT_CHANNEL, thread_ts=parent["ts"])
    assert [f["id"] for f in shared.files] == [file_id]


async def test_a_rate_limited_upload_says_how_long_to_wait(fs: FakeSlack) -> None:
    parent = fs.app_mention("draw me a fox")
    fs.fail("files.getUploadURLExternal", status=429, error="ratelimited", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await upload(fs, parent["ts"])
    assert limited.value.retry_after == 7.0


async def test_a_refused_upload_names_slacks_error(fs: FakeSlack) -> None:
    parent = fs.app_mention("draw me a fox")
    fs.scopes.discard("files:write")
    with pytest.raises(UploadRefused) as refused:
        await upload(fs, parent["ts"])
    assert refused.value.error == "missing_scope"
    assert not fs.bot_messages(DEFAULT_CHANNEL, thread_ts=parent["ts"])
