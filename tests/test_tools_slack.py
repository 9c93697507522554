"""The tool loop on Slack: the real slack-bolt adapter against the fake Slack, the fake gateway,
the page server and the test MCP server.

A link read and summarised, and a follow-up in the thread answered from the stored result (one
fetch); the status line in the message's timeline while a tool runs, never in the final text;
Stop during a slow tool; a picture uploaded into the thread byte-exact (the external upload flow)
and kept with the reply; an upload Slack refuses is a note, not a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.surface import STOP_ACTION
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.gateway_tools import FakeToolCall
from tests.fakes.pages import PageServer
from tests.fakes.slack_api import DEFAULT_CHANNEL
from tests.slack_harness import SlackBench, is_live, slack_bench
from tests.tool_helpers import random_png, read_the_article, result_text


@pytest.fixture
async def bench(tmp_path: Path, pages: PageServer) -> AsyncIterator[SlackBench]:
    env = {"PARLEY_FETCH_ALLOW_HOSTS": f"127.0.0.1:{pages.port}"}
    async with slack_bench(tmp_path, "socket", env=env) as started:
        yield started


def key_of(bench: SlackBench, thread_ts: str) -> ConversationKey:
    return ConversationKey("slack", bench.fs.identity.team_id, DEFAULT_CHANNEL, thread_ts)


async def test_a_link_is_read_and_a_follow_up_uses_the_stored_result(
    bench: SlackBench, pages: PageServer
) -> None:
    fs, gw = bench.fs, bench.gw
    url = f"{pages.url}/article"
    gw.script(
        Reply(tool_calls=[FakeToolCall("read_url", {"url": url})]),
        Reply(text="It is about tidal power in the Severn estuary."),
    )
    event = fs.app_mention(f"what does {url} say?")
    await bench.deliver(event)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
    assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == "It is about tidal power in the Severn estuary."
    assert read_the_article(result_text(gw.last))

    gw.script(Reply(text="Critics worry about wading birds."))
    await bench.deliver(fs.channel_message("what do the critics say?", thread_ts=event["ts"]))
    await bench.reply_in(DEFAULT_CHANNEL, event["ts"], count=2)
    assert [name for _, name, _ in gw.last.replayed_calls] == ["read_url"]
    assert read_the_article(result_text(gw.last))
    assert pages.paths == ["/article"]  # the follow-up did not fetch again
    stored = await bench.stored(key_of(bench, event["ts"]))
    assert [len(m.tool_steps) for m in stored] == [0, 1, 0, 0]


@pytest.mark.parametrize("native", [False, True], ids=["post-and-update", "native-stream"])
async def test_the_status_line_shows_while_the_tool_runs_and_never_in_the_final_text(
    tmp_path: Path, pages: PageServer, native: bool
) -> None:
    env = {
        "PARLEY_FETCH_ALLOW_HOSTS": f"127.0.0.1:{pages.port}",
        "PARLEY_SLACK_NATIVE_STREAMING": str(native).lower(),
    }
    async with slack_bench(tmp_path, "socket", env=env) as bench:
        fs, gw = bench.fs, bench.gw
        slow = FakeToolCall("read_url", {"url": f"{pages.url}/slow?seconds=1.5"})
        gw.script(Reply(text="One moment.", tool_calls=[slow]), Reply(text="The page says: Finally."))
        event = fs.app_mention("read the slow page")
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        timeline = fs.timeline(DEFAULT_CHANNEL, reply.ts)
        assert ("start_stream" in [state.event for state in timeline]) is native
        seen = [state.visible for state in timeline]
        status = "One moment.\n\n_Reading 127.0.0.1/slow…_"
        assert any(s.startswith(status) for s in seen), seen
        # A native stream cannot take the line back: it ends, and chat.update writes the rest.
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == "One moment.\n\nThe page says: Finally."
        assert not [c for c in fs.calls if not c.ok and c.method != "assistant.threads.setStatus"]


async def test_stop_during_a_slow_tool_cancels_it_and_keeps_what_was_written(
    bench: SlackBench, pages: PageServer
) -> None:
    fs, gw = bench.fs, bench.gw
    gw.script(
        Reply(text="Reading.", tool_calls=[FakeToolCall("read_url", {"url": f"{pages.url}/slow?seconds=20"})])
    )
    event = fs.app_mention("read the very slow page")
    await bench.deliver(event)
    live = await fs.wait_for(
        lambda: [
            m
            for m in bench.bot_messages(DEFAULT_CHANNEL, event["ts"])
            if is_live(m) and "_Reading 127.0.0.1/slow…_" in fs.visible_text(DEFAULT_CHANNEL, m.ts)
        ]
    )
    # The status line shows as the call starts; its request reaches the page a moment later.
    assert await fs.wait_for(lambda: pages.paths) == ["/slow"]  # the tool is running
    click = await fs.click_button(STOP_ACTION, block_id=STOP_ACTION, message_ts=live[0].ts, mode=bench.mode)
    await click.wait_acked(within=3)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"], within=5)  # not after 20 s
    assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == "Reading.\n\n_(Stopped.)_"
    assert len(gw.stream_requests) == 1
    [_, answer] = await bench.stored(key_of(bench, event["ts"]))
    assert (answer.status, answer.text, answer.tool_steps) == (Outcome.STOPPED, "Reading.", ())


async def test_a_picture_is_uploaded_into_the_thread_byte_exact(bench: SlackBench) -> None:
    fs, gw = bench.fs, bench.gw
    gw.image = random_png()
    gw.script(
        Reply(tool_calls=[FakeToolCall("generate_image", {"prompt": "a heron", "size": "1024x1024"})]),
        Reply(text="Here is a heron."),
    )
    event = fs.app_mention("draw a heron")
    await bench.deliver(event)
    messages = await bench.reply_in(DEFAULT_CHANNEL, event["ts"], count=2)
    [upload] = [u for u in fs.uploads.values() if u.completed]
    assert fs.file_bytes(upload.file_id) == gw.image
    [shared] = [m for m in messages if m.files]
    assert shared.thread_ts == event["ts"] and shared.files[0]["id"] == upload.file_id
    texts = [fs.visible_text(DEFAULT_CHANNEL, m.ts) for m in messages if not m.files]
    assert texts == ["Here is a heron."]  # the picture speaks for itself: no note

    # Kept with the reply, like an upload: the thread's files now include it.
    conversation = await bench.runtime.store.conversations.find(key_of(bench, event["ts"]))
    assert conversation is not None
    [kept] = await bench.runtime.store.blobs.files(conversation.id, 10)
    assert (kept.name, kept.media_type, kept.size) == (upload.filename, "image/png", len(gw.image))


async def test_an_upload_slack_refuses_is_a_note(bench: SlackBench) -> None:
    fs, gw = bench.fs, bench.gw
    fs.scopes.discard("files:write")
    gw.script(Reply(tool_calls=[FakeToolCall("generate_image", {"prompt": "a heron"})]), Reply(text="Done."))
    event = fs.app_mention("draw a heron")
    await bench.deliver(event)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
    shown = fs.visible_text(DEFAULT_CHANNEL, reply.ts)
    assert shown.startswith("Done.\n\n_(The picture `picture-") and shown.endswith(
        "was made but could not be attached.)_"
    )
