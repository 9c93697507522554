"""Slack events through the real slack-bolt, in Socket Mode and HTTP mode: when Parley answers,
where, with what context, and never twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.surface import STOP_ACTION
from adapters.slack.text import message_markdown, strip_mention, to_plain
from bot.store.conversations import Conversations
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import (
    DEFAULT_CHANNEL,
    DEFAULT_DM,
    DEFAULT_USER,
    OTHER_BOT_ID,
    OTHER_CHANNEL,
    OTHER_USER,
)
from tests.slack_harness import MODES, SlackBench, slack_bench

TEAM = "T0FAKE0001"


@pytest.fixture(params=MODES)
async def bench(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SlackBench]:
    async with slack_bench(tmp_path, request.param) as b:
        yield b


def channel_key(thread: str, channel: str = DEFAULT_CHANNEL) -> ConversationKey:
    return ConversationKey("slack", TEAM, channel, thread)


def test_slack_markup_becomes_text_the_model_reads() -> None:
    names = {"U1": "Ann"}
    assert to_plain("<@U1> see <#C1|general>, <https://x.io|the docs> &lt;3 &amp; <!here>", names) == (
        "@Ann see #general, the docs (https://x.io) <3 & @here"
    )
    assert to_plain("&lt;@U1&gt; <mailto:a@b.c|a@b.c> <https://y.io>", names) == "<@U1> a@b.c https://y.io"
    assert strip_mention("<@UBOT> hi <@UBOT|parley>  there", "UBOT") == "hi there"
    reply = {"text": "short fallback…", "blocks": [{"type": "markdown", "text": "the **whole** answer"}]}
    assert message_markdown(reply) == "the **whole** answer"
    assert message_markdown({"text": "plain"}) == "plain"


async def test_mention_streams_an_answer_into_its_thread(bench: SlackBench) -> None:
    fs, gw = bench.fs, bench.gw
    answer = "Hello **Alice**! " + " ".join(f"word{i}" for i in range(40))
    gw.script(Reply.paced(answer, tokens_per_s=50))
    event = fs.app_mention("say hi to <@U0USER0002>")
    await bench.deliver(event)

    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
    assert reply.thread_ts == event["ts"]
    assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == answer
    states = fs.timeline(DEFAULT_CHANNEL, reply.ts)
    assert (states[0].event, states[0].visible) == ("post", "…")
    partial = [s.visible for s in states[1:-1] if s.visible not in ("…", answer)]
    assert partial and all(answer.startswith(v) for v in partial), "the answer grows in place"
    # Standard Markdown in a markdown block; the Stop button while live, and at the end, in its
    # place, Slack's feedback buttons (the same edit).
    assert states[-1].blocks is not None
    markdown, feedback = states[-1].blocks
    assert markdown == {"type": "markdown", "text": answer}
    assert feedback["type"] == "context_actions" and feedback["elements"][0]["type"] == "feedback_buttons"
    assert all(any(b.get("block_id") == STOP_ACTION for b in s.blocks or []) for s in states[:-1])
    assert not any(b.get("type") == "context_actions" for s in states[:-1] for b in s.blocks or [])
    assert bench.slack_errors() == []

    # The model got the question without Parley's mention, with the other mention named.
    assert gw.stream_requests[0].last_user_text == "say hi to @Bob Builder"
    await bench.settle(1)
    stored = await bench.stored(channel_key(event["ts"]))
    assert [(m.role, m.text, m.status) for m in stored] == [
        ("user", "say hi to @Bob Builder", Outcome.COMPLETE),
        ("assistant", answer, Outcome.COMPLETE),
    ]
    assert stored[0].platform_message_id == event["ts"] and stored[0].author_name == "Alice"


async def test_follow_ups_in_a_thread_need_no_mention(bench: SlackBench) -> None:
    fs = bench.fs
    first = fs.app_mention("first question")
    await bench.deliver(first)
    await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
    follow = fs.channel_message("and a follow-up", thread_ts=first["ts"])
    await bench.deliver(follow)
    replies = await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
    assert fs.visible_text(DEFAULT_CHANNEL, replies[1].ts) == "You said: and a follow-up"
    assert "first question" in bench.gateway_text()  # the thread's history came along

    # Not for Parley: a top-level message, and a thread Parley never answered in.
    top = fs.channel_message("just chatting")
    await bench.deliver(top)
    await bench.deliver(fs.channel_message("a thread reply", thread_ts=top["ts"]))
    await bench.settle(2)
    assert len(bench.gw.stream_requests) == 2
    assert bench.bot_messages(DEFAULT_CHANNEL, top["ts"]) == []


async def test_require_mention_reads_what_it_was_not_asked_about(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_REQUIRE_MENTION": "true"}) as bench:
        fs = bench.fs
        first = fs.app_mention("plan the launch")
        await bench.deliver(first)
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        aside = fs.channel_message("the launch moved to Tuesday", thread_ts=first["ts"], user=OTHER_USER)
        await bench.deliver(aside)
        await bench.settle(1)
        assert len(bench.gw.stream_requests) == 1  # no mention, no answer
        again = fs.app_mention("so when is it?", thread_ts=first["ts"])
        await bench.deliver(again)
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        body = bench.gateway_text()
        assert "the launch moved to Tuesday" in body and "plan the launch" in body
        assert body.count("You said: plan the launch") == 1  # its own answer is not read back twice


@pytest.fixture(params=MODES)
async def classic(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SlackBench]:
    """Without Slack's Agent messaging experience: a DM is one conversation, answered at its top level."""
    async with slack_bench(tmp_path, request.param, env={"PARLEY_SLACK_AGENT": "false"}) as b:
        yield b


async def test_dms_are_answered_directly_and_remembered(classic: SlackBench) -> None:
    bench = classic
    fs = bench.fs
    first = fs.dm_message("my name is Zed")
    await bench.deliver(first)
    (reply,) = await bench.reply_in(DEFAULT_DM, None)
    assert fs.visible_text(DEFAULT_DM, reply.ts) == "You said: my name is Zed"
    await bench.deliver(fs.dm_message("what is my name?"))
    await bench.reply_in(DEFAULT_DM, None, count=2)
    assert "my name is Zed" in bench.gateway_text()
    # A DM written in a thread is answered in that thread, as its own conversation.
    threaded = fs.dm_message("in a thread", thread_ts=first["ts"])
    await bench.deliver(threaded)
    await bench.reply_in(DEFAULT_DM, first["ts"])
    await bench.settle(3)
    assert len(await bench.stored(ConversationKey("slack", TEAM, DEFAULT_DM, ""))) == 4
    # It starts from the thread's first message, read back from Slack.
    in_thread = await bench.stored(ConversationKey("slack", TEAM, DEFAULT_DM, first["ts"]))
    assert [(m.role, m.text) for m in in_thread[:2]] == [("user", "my name is Zed"), ("user", "in a thread")]


async def test_mention_mid_thread_reads_the_thread_first(bench: SlackBench) -> None:
    fs = bench.fs
    parent = fs.channel_message("Should we ship on Friday?")
    fs.channel_message("No: QA needs a day.", thread_ts=parent["ts"], user=OTHER_USER)
    fs.bot_message("CI is green", channel=DEFAULT_CHANNEL, thread_ts=parent["ts"])
    mention = fs.app_mention("summarize this thread", thread_ts=parent["ts"])
    fs.channel_message("a reply posted after the mention", thread_ts=parent["ts"])
    await bench.deliver(mention)
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, parent["ts"])
    assert reply.thread_ts == parent["ts"]

    body = bench.gateway_text()
    for said in ("[Alice] Should we ship on Friday?", "[Bob Builder] No: QA needs a day.", "CI is green"):
        assert said in body
    assert "a reply posted after the mention" not in body
    assert len(fs.calls_for("conversations.replies")) == 1
    assert len(fs.calls_for("users.info")) == 2  # alice and bob, each once
    await bench.settle(1)
    stored = await bench.stored(channel_key(parent["ts"]))
    assert [m.platform_message_id for m in stored[:3]] == [
        m.ts for m in fs.thread_messages(DEFAULT_CHANNEL, parent["ts"])[:3]
    ]

    # Now Parley follows the thread: a follow-up does not read it again.
    await bench.deliver(fs.channel_message("thanks", thread_ts=parent["ts"]))
    await bench.reply_in(DEFAULT_CHANNEL, parent["ts"], count=2)
    assert len(fs.calls_for("conversations.replies")) == 1


async def test_one_message_is_answered_once_whatever_slack_redelivers(bench: SlackBench) -> None:
    fs, gw = bench.fs, bench.gw
    gw.script(Reply.paced("a slow and careful answer " * 4, tokens_per_s=30))
    event = fs.app_mention("answer me once")
    payload = fs.event_callback(event)
    await bench.deliver(payload)
    await fs.wait_for(lambda: gw.stream_requests)
    await bench.deliver(payload)  # redelivered while the answer streams
    # The same message as a message.channels event: another event id, the same message.
    as_message = fs.event_callback({**event, "type": "message", "channel_type": "channel"})
    assert as_message["event_id"] != payload["event_id"]
    await bench.deliver(as_message)
    await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
    await bench.settle(1)

    # After the answer: a retry (with Slack's retry markers), then a retry after a restart.
    if bench.mode == "http":
        status, _ = await fs.post_http(
            payload, extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        )
        assert status == 200
    else:
        await bench.deliver(payload)
    await bench.settle()
    await bench.restart()
    await bench.deliver(payload)
    await bench.deliver(fs.event_callback({**event, "type": "message", "channel_type": "channel"}))
    await bench.settle()

    assert len(gw.stream_requests) == 1
    assert len(bench.bot_messages(DEFAULT_CHANNEL, event["ts"])) == 1
    assert len(await bench.stored(channel_key(event["ts"]))) == 2


async def test_a_retry_of_an_event_never_processed_is_answered(bench: SlackBench) -> None:
    fs = bench.fs
    fs.connect_wait = 0.2
    fs.http_retry_delays = (0.6, 0.6, 0.6)
    await bench.pause_intake()
    event = fs.app_mention("are you there?")
    delivery = await fs.deliver_event(event, mode=bench.mode, ack_timeout=0.5)
    await asyncio.sleep(0.3)
    await bench.resume_intake()
    await delivery.wait_done(within=10)
    assert delivery.attempts[0].error is not None
    acked = delivery.acked_attempt
    assert acked is not None and acked.number >= 1
    (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
    assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == "You said: are you there?"


async def test_other_bots_own_echoes_and_edits_are_ignored(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "http") as bench:
        fs = bench.fs
        fs.echo_bot_messages = "http"  # Parley's own posts and edits come back as events
        first = fs.app_mention("hello")
        await bench.deliver(first)
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        await bench.deliver(fs.bot_message("beep from another bot", thread_ts=first["ts"]))
        await bench.deliver(fs.bot_message("beep, legacy", thread_ts=first["ts"], legacy_subtype=True))
        await bench.deliver(fs.edit_user_message(DEFAULT_CHANNEL, first["ts"], "<@U0BOT00001> edited"))
        await bench.deliver(fs.delete_user_message(DEFAULT_CHANNEL, first["ts"]))
        await bench.settle(1)
        await asyncio.sleep(0.2)
        await bench.settle()
        assert len(bench.gw.stream_requests) == 1
        assert len(bench.bot_messages(DEFAULT_CHANNEL, first["ts"])) == 1


async def test_allowed_bots_are_answered(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env={"PARLEY_ALLOW_BOTS": OTHER_BOT_ID}) as bench:
        fs = bench.fs
        first = fs.app_mention("hello")
        await bench.deliver(first)
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        await bench.deliver(fs.bot_message("status report", thread_ts=first["ts"]))
        replies = await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        assert fs.visible_text(DEFAULT_CHANNEL, replies[1].ts) == "You said: [bot] status report"


async def test_access_policy_applies_to_mentions(tmp_path: Path) -> None:
    env = {"PARLEY_DENY_USERS": OTHER_USER, "PARLEY_ALLOW_CHANNELS": DEFAULT_CHANNEL}
    async with slack_bench(tmp_path, "socket", env=env) as bench:
        fs = bench.fs
        denied_user = fs.app_mention("hi from bob", user=OTHER_USER)
        denied_channel = fs.app_mention("hi from #random", channel=OTHER_CHANNEL)
        allowed = fs.app_mention("hi from alice", user=DEFAULT_USER)
        for event in (denied_user, denied_channel, allowed):
            await bench.deliver(event)
        await bench.reply_in(DEFAULT_CHANNEL, allowed["ts"])
        await bench.settle(1)
        assert [r.last_user_text for r in bench.gw.stream_requests] == ["hi from alice"]
        assert fs.bot_messages(OTHER_CHANNEL) == []


async def test_http_mode_rejects_forged_and_stale_requests(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "http") as bench:
        fs = bench.fs
        payload = fs.event_callback(fs.app_mention("forged"))
        assert (await fs.post_http(payload, signature="bad"))[0] == 401
        assert (await fs.post_http(payload, signature="none"))[0] == 401
        assert (await fs.post_http(payload, timestamp=str(int(time.time()) - 600)))[0] == 401
        command = await fs.post_http(
            {"command": "/parley", "text": "model x", "user_id": DEFAULT_USER},
            kind="slash_commands",
            signature="bad",
        )
        assert command[0] == 401
        await asyncio.sleep(0.2)
        await bench.settle()
        assert bench.adapter.ws.stats.events == 0
        assert bench.gw.requests == [] and fs.bot_messages() == [] and fs.responses == []
        assert await bench.runtime.store.conversations.find(channel_key(payload["event"]["ts"])) is None
        assert [c.method for c in fs.calls] == ["auth.test"]  # only the adapter's own start-up


async def test_the_followed_thread_lookup_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One lookup for both platforms in bot.routing (Slack's copy used to ask the database for
    # every message in every thread).
    asked: list[ConversationKey] = []
    real = Conversations.has_reply

    async def counted(self: Conversations, key: ConversationKey) -> bool:
        asked.append(key)
        return await real(self, key)

    monkeypatch.setattr(Conversations, "has_reply", counted)
    async with slack_bench(tmp_path, "socket") as bench:
        fs = bench.fs
        first = fs.app_mention("first question")
        await bench.deliver(first)
        await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        for n in range(3):
            await bench.deliver(fs.channel_message(f"follow-up {n}", thread_ts=first["ts"]))
            await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=n + 2)
        top = fs.channel_message("people talking")
        for n in range(3):
            await bench.deliver(fs.channel_message(f"chatter {n}", thread_ts=top["ts"], user=OTHER_USER))
        await bench.settle(4)
        assert len(bench.gw.stream_requests) == 4
        # Parley answered the first: its thread is known without asking; the other thread is
        # asked about once (one process on SQLite: a "no" is remembered for a while).
        assert asked == [channel_key(top["ts"])]
