"""The Slack fake's external uploads, audio clips and several app instances, driven by the real
slack_sdk / Bolt."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import DEFAULT_CHANNEL, DEFAULT_DM, Budget, FakeSlack
from tests.fakes.slack.clients import bolt_app, serve, socket_mode, web_client


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(ack_timeout=1.0) as fake:
        yield fake


async def download(fs: FakeSlack, url: str) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {fs.bot_token}"}) as resp,
    ):
        assert resp.status == 200
        return await resp.read()


# ---------------------------------------------------------------------------- external uploads


async def test_files_upload_v2_shares_the_bytes_into_the_thread(fs: FakeSlack) -> None:
    client = web_client(fs)
    parent = fs.app_mention("draw me a fox")
    picture = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
    done = await client.files_upload_v2(
        content=picture,
        filename="fox.png",
        title="A fox",
        channel=DEFAULT_CHANNEL,
        thread_ts=parent["ts"],
        initial_comment="Here it is",
    )
    file_id = done["file"]["id"]
    assert fs.file_bytes(file_id) == picture
    assert done["file"]["mimetype"] == "image/png" and done["file"]["title"] == "A fox"
    (shared,) = fs.bot_messages(DEFAULT_CHANNEL, thread_ts=parent["ts"])
    assert shared.subtype == "file_share" and shared.text == "Here it is"
    assert [f["id"] for f in shared.files] == [file_id]
    assert await download(fs, shared.files[0]["url_private"]) == picture
    info = await client.files_info(file=file_id)
    share = info["file"]["shares"]["public"][DEFAULT_CHANNEL][0]
    assert (share["ts"], share["thread_ts"]) == (shared.ts, parent["ts"])
    calls = [c.method for c in fs.calls]
    assert calls == ["files.getUploadURLExternal", "files.completeUploadExternal", "files.info"]


async def test_upload_errors_are_slacks(fs: FakeSlack) -> None:
    client = web_client(fs)
    with pytest.raises(SlackApiError) as err:
        await client.files_getUploadURLExternal(filename="a.txt", length=0)
    assert err.value.response["error"] == "missing_argument"

    ticket = await client.files_getUploadURLExternal(filename="a.txt", length=5)
    async with aiohttp.ClientSession() as session:
        async with session.post(ticket["upload_url"], data=b"toolong") as resp:
            assert resp.status == 400
        with pytest.raises(SlackApiError) as err:
            await client.files_completeUploadExternal(
                files=[{"id": ticket["file_id"]}], channel_id=DEFAULT_CHANNEL
            )
        assert err.value.response["error"] == "file_not_found"
        form = aiohttp.FormData()
        form.add_field("file", b"hello", filename="a.txt")
        async with session.post(ticket["upload_url"], data=form) as resp:  # multipart works too
            assert (resp.status, await resp.text()) == (200, "OK - 5")
    with pytest.raises(SlackApiError) as err:
        await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id="C0NOPE")
    assert err.value.response["error"] == "channel_not_found"
    done = await client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "A"}])
    assert done["files"][0]["title"] == "A" and not fs.bot_messages()  # no channel: not shared

    fs.scopes.discard("files:write")
    with pytest.raises(SlackApiError) as err:
        await client.files_getUploadURLExternal(filename="a.txt", length=5)
    assert (err.value.response["error"], err.value.response["needed"]) == ("missing_scope", "files:write")


# ---------------------------------------------------------------------------- audio


async def test_audio_clip_arrives_as_slack_sends_it_and_downloads_with_the_token(fs: FakeSlack) -> None:
    app = bolt_app(fs)
    got: list[dict[str, Any]] = []

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        got.append(event)

    ogg = b"OggS" + os.urandom(4000)
    clip = fs.audio_clip(ogg, duration_ms=4200, recorded_on="desktop")
    upload = fs.add_file(b"ID3" + os.urandom(900), "memo.mp3", mimetype="audio/mpeg")
    async with socket_mode(fs, app):
        await fs.deliver_event(fs.dm_message("", files=[clip]))
        await fs.deliver_event(fs.dm_message("and this one", files=[upload]))
        await fs.wait_for(lambda: len(got) == 2)
    event = got[0]
    assert (event["subtype"], event["text"], event["channel_type"]) == ("file_share", "", "im")
    assert "blocks" not in event
    (f,) = event["files"]
    assert (f["name"], f["mimetype"], f["subtype"]) == ("audio_message.webm", "audio/webm", "slack_audio")
    assert (f["media_display_type"], f["duration_ms"]) == ("audio", 4200)
    assert f["transcription"] == {"status": "processing"}
    assert await download(fs, f["url_private_download"]) == ogg
    plain = got[1]["files"][0]
    assert (plain["mimetype"], plain["media_display_type"]) == ("audio/mpeg", "audio")
    assert "subtype" not in plain
    done = fs.audio_clip(ogg, transcript="call me back")
    assert (
        done["name"] == "audio_message.m4a" and done["transcription"]["preview"]["content"] == "call me back"
    )


# ---------------------------------------------------------------------------- several instances


async def test_http_events_spread_over_instances_and_share_one_budget(fs: FakeSlack) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}
    runners = []
    urls = []
    for name in ("a", "b"):
        app = bolt_app(fs)

        def record(name: str = name) -> Any:
            async def on_mention(event: dict[str, Any], body: dict[str, Any], client: Any) -> None:
                seen[name].append(body["event_id"])
                posted = await client.chat_postMessage(
                    channel=event["channel"], thread_ts=event["ts"], text="…"
                )
                await client.chat_update(channel=event["channel"], ts=posted["ts"], text=f"from {name}")

            return on_mention

        app.event("app_mention")(record())
        runner, base = await serve(app.web_app())
        runners.append(runner)
        urls.append(f"{base}/slack/events")
    fs.events_urls = urls
    fs.limits.budgets["chat.update"] = Budget(3, 60.0)
    del fs.limits.budgets["chat.postMessage"]  # only the shared update budget is under test
    try:
        deliveries = [await fs.deliver_event(fs.app_mention(f"q{i}"), mode="http") for i in range(4)]
        for d in deliveries:
            await d.wait_done()
        assert [d.attempts[0].url for d in deliveries] == [urls[0], urls[1], urls[0], urls[1]]
        await fs.wait_for(lambda: len(fs.calls_for("chat.update")) == 4)
        # One workspace's budget, whichever instance calls: the fourth update is refused.
        assert [c.status for c in fs.calls_for("chat.update")].count(429) == 1
        assert fs.rate_limited_count["chat.update"] == 1

        both = await fs.deliver_event_to(fs.app_mention("twice"))
        for d in both:
            await d.wait_done()
        assert both[0].event_id == both[1].event_id
        assert seen["a"][-1] == seen["b"][-1] == both[0].event_id
        assert {d.attempts[0].url for d in both} == set(urls)

        fs.events_urls = ["http://127.0.0.1:9/slack/events", urls[1]]  # the first instance is down
        retried = await fs.deliver_event(fs.app_mention("retry"), mode="http", spread_retries=True)
        await retried.wait_done()
        assert [(a.url, a.error) for a in retried.attempts] == [
            (fs.events_urls[0], "connection_failed"),
            (urls[1], None),
        ]
        assert seen["b"][-1] == retried.event_id
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_socket_mode_round_robin_over_connections(fs: FakeSlack) -> None:
    got: list[tuple[int, str]] = []
    apps = []
    for n in (1, 2):
        app = bolt_app(fs)

        def on(n: int = n) -> Any:
            async def listener(body: dict[str, Any]) -> None:
                got.append((n, body["event_id"]))

            return listener

        app.event("message")(on())
        apps.append(app)
    fs.hub.spread = "round_robin"
    async with socket_mode(fs, apps[0]), socket_mode(fs, apps[1]):
        deliveries = [await fs.deliver_event(fs.dm_message(f"m{i}", channel=DEFAULT_DM)) for i in range(4)]
        for d in deliveries:
            await d.wait_acked()
        assert sorted(d.attempts[0].connection or 0 for d in deliveries) == [1, 1, 2, 2]
        await fs.wait_for(lambda: len(got) == 4)
        assert sorted(n for n, _ in got) == [1, 1, 2, 2]
