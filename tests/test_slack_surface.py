"""Replies as Slack shows them: Markdown blocks, long answers across messages, shared rate
budgets with zero 429s, and native streaming with its fall back to chat.update."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import pytest

from adapters.slack.surface import (
    FALLBACK_CHARS,
    MAX_MARKDOWN,
    SlackBudgets,
    committed,
    fallback_text,
)
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, Budget, FakeSlack, Message
from tests.slack_harness import SlackBench, slack_bench

STREAMING = {"PARLEY_SLACK_NATIVE_STREAMING": "true"}


def long_answer(chars: int) -> str:
    paragraphs: list[str] = []
    i = 0
    while sum(len(p) + 2 for p in paragraphs) < chars:
        paragraphs.append(f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(40)) + ".")
        i += 1
    return "\n\n".join(paragraphs)[:chars].rstrip()


def texts_sent(fs: FakeSlack) -> list[str]:
    return [
        str(c.params.get("text", "")) for c in fs.calls if c.method in ("chat.postMessage", "chat.update")
    ]


def streaming_with_text(bench: SlackBench, thread_ts: str) -> list[Message]:
    return [
        m
        for m in bench.bot_messages(DEFAULT_CHANNEL, thread_ts)
        if m.streaming == "streaming" and m.markdown_text
    ]


# -- pure pieces -----------------------------------------------------------------------------


def test_committed_holds_back_what_a_stream_could_not_take_back() -> None:
    assert committed("…", live=True) == "" and committed("_thinking…_", live=True) == ""
    # The renderer closes a fence the model is still writing; that line moves as code grows.
    assert committed("Code:\n```py\nx = 1\n```", live=True) == "Code:\n```py\nx = 1"
    assert committed("Code:\n```py\nx = 1\n```", live=False) == "Code:\n```py\nx = 1\n```"
    # A fence the model closed itself, with text after it, is settled.
    done = "```py\nx = 1\n```\nafter"
    assert committed(done, live=True) == done
    assert committed("no code here\n```", live=True) == "no code here\n```"  # opens a fence: kept


def test_fallback_text_fits_chat_update() -> None:
    assert len(fallback_text("x" * 50_000)) == FALLBACK_CHARS <= 4000
    assert fallback_text("short") == "short"


def test_default_budgets_are_within_what_slack_and_the_fake_allow() -> None:
    fake = FakeSlack().limits.budgets
    budgets = SlackBudgets()
    for ours, method in [
        (budgets.update, "chat.update"),
        (budgets.post, "chat.postMessage"),
        (budgets.start_stream, "chat.startStream"),
        (budgets.append_stream, "chat.appendStream"),
    ]:
        calls, seconds = ours
        assert calls / seconds <= fake[method].calls / fake[method].per_seconds, method
    keys = [b.key for b in budgets.edit_budgets("T1", streaming=False)]
    assert keys == ["slack:T1:chat.update"]  # one budget for every reply in the workspace
    assert [b.key for b in budgets.post_budgets("T1", "C1", streaming=True)] == [
        "slack:T1:C1:chat.postMessage",
        "slack:T1:chat.startStream",
    ]


# -- long answers ----------------------------------------------------------------------------


async def test_long_answers_are_complete_and_never_too_long(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        nine = long_answer(9000)
        big = long_answer(25_000)
        gw.script(
            Reply(text=nine, chunk_chars=300, delay=0.005), Reply(text=big, chunk_chars=500, delay=0.005)
        )
        first = fs.app_mention("a long one")
        await bench.deliver(first)
        (only,) = await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, only.ts) == nine

        second = fs.app_mention("a longer one")
        await bench.deliver(second)
        await bench.settle(2)
        parts = await bench.reply_in(DEFAULT_CHANNEL, second["ts"], count=3)
        assert bench.thread_text(DEFAULT_CHANNEL, second["ts"]) == big
        for part in parts:
            markdown = part.blocks[0]["text"] if part.blocks else ""
            assert part.blocks is not None and part.blocks[0] == {"type": "markdown", "text": markdown}
            assert 0 < len(markdown) <= MAX_MARKDOWN
        # Only the last part carries the feedback buttons.
        assert [[b["type"] for b in p.blocks or []] for p in parts] == [
            ["markdown"],
            ["markdown"],
            ["markdown", "context_actions"],
        ]
        assert bench.slack_errors() == []  # no msg_too_long, no invalid_blocks
        assert max(len(t) for t in texts_sent(fs)) <= 4000


# -- shared budgets ----------------------------------------------------------------------------


async def test_a_short_answer_gets_frequent_updates_while_the_minutes_budget_is_fresh(
    tmp_path: Path,
) -> None:
    # Production budgets (45 chat.update a minute). Spread evenly, a 4 s answer would get an
    # edit every 1.67 s; a fresh minute lets it have one about every 0.45 s instead.
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        answer = " ".join(f"w{i}" for i in range(80))
        gw.script(Reply.paced(answer, tokens_per_s=20))
        event = fs.app_mention("a short one")
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == answer
        updates = [s.t for s in fs.timeline(DEFAULT_CHANNEL, reply.ts) if s.event == "update"]
        assert len(updates) >= 7
        assert max(b - a for a, b in pairwise(updates)) < 1.67
        assert bench.slack_errors() == [] and sum(fs.rate_limited_count.values()) == 0


async def test_ten_concurrent_replies_share_the_workspace_budget_without_a_429(tmp_path: Path) -> None:
    # A tight chat.update budget on both sides keeps the test short; the pacing is the same.
    budgets = SlackBudgets(update=(10, 2.0))
    async with slack_bench(tmp_path, "socket", budgets=budgets) as bench:
        fs, gw = bench.fs, bench.gw
        fs.limits.budgets["chat.update"] = Budget(10, 2.0)
        answer = " ".join(f"token{i}" for i in range(60))
        gw.default = Reply.paced(answer, tokens_per_s=30)
        channels = [f"C0LOAD000{i}" for i in range(5)]
        for channel in channels:
            fs.add_channel(channel)
        events = [fs.app_mention(f"question {i}", channel=channels[i % 5]) for i in range(10)]
        await asyncio.gather(*(bench.deliver(e) for e in events))
        await bench.settle(10, within=30)
        for e in events:
            (reply,) = await bench.reply_in(e["channel"], e["ts"])
            assert fs.visible_text(e["channel"], reply.ts) == answer
        assert fs.rate_limited_count.total() == 0
        assert bench.runtime.pacer.stats.rate_limited == 0
        updates = fs.calls_for("chat.update")
        assert len(updates) >= 20  # first text and final text of each reply, at least
        # Spread out, not burst: no 2 s window ever held more than the budget.
        times = [c.t for c in updates]
        assert all(sum(1 for u in times if t <= u < t + 2.0) <= 10 for t in times)


async def test_a_429_pauses_the_reply_and_loses_nothing(tmp_path: Path) -> None:
    # Slack stricter than declared: the surface raises RateLimited, the renderer waits Retry-After.
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        fs.limits.budgets["chat.update"] = Budget(1, 2.0)
        answer = " ".join(f"quick{i}" for i in range(12))
        gw.script(Reply.paced(answer, tokens_per_s=40))
        event = fs.app_mention("hurry")
        await bench.deliver(event)
        await bench.settle(1, within=15)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == answer
        assert fs.rate_limited_count["chat.update"] >= 1
        assert bench.runtime.pacer.stats.rate_limited == fs.rate_limited_count["chat.update"]


# -- native streaming --------------------------------------------------------------------------


async def test_native_streaming_appends_and_stops(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "http", env=STREAMING) as bench:
        fs, gw = bench.fs, bench.gw
        answer = "Here is code:\n```python\nprint('a')\nprint('b')\n```\nAnd **done**, " + " ".join(
            f"w{i}" for i in range(30)
        )
        # Appends are paced by appendStream's own budget (90 a minute, a burst while the minute is
        # fresh), not chat.update's 45: a 2 s answer gets several.
        gw.script(Reply.paced(answer, tokens_per_s=20))
        event = fs.app_mention("stream it")
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == answer
        assert reply.streaming == "stopped"
        states = fs.timeline(DEFAULT_CHANNEL, reply.ts)
        events = [s.event for s in states]
        assert events[0] == "start_stream" and events[-1] == "stop_stream"
        assert events.count("append_stream") >= 5
        grown = [s.markdown_text or "" for s in states]
        assert all(answer.startswith(g) for g in grown)
        start = fs.calls_for("chat.startStream")[0].params
        assert start["recipient_user_id"] == DEFAULT_USER and start["thread_ts"] == event["ts"]
        assert fs.calls_for("chat.update") == [] and fs.calls_for("chat.postMessage") == []
        assert bench.slack_errors() == []
        await bench.settle(1)
        assert [s.status for s in fs.status_log] == ["is thinking…", ""]


async def test_the_status_needs_only_chat_write(tmp_path: Path) -> None:
    # Slack's change of 2026-03: setStatus takes chat:write, so a channel thread shows it too,
    # without the agent experience's assistant:write.
    async with slack_bench(tmp_path, "socket") as bench:
        bench.fs.scopes.discard("assistant:write")
        await bench.restart()
        event = bench.fs.app_mention("hi")
        await bench.deliver(event)
        await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        await bench.settle(1)
        calls = bench.fs.calls_for("assistant.threads.setStatus")
        assert [(c.params["status"], c.ok) for c in calls] == [("is thinking…", True), ("", True)]


async def test_streaming_refused_falls_back_to_post_and_update(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env=STREAMING) as bench:
        fs = bench.fs
        fs.streaming.dm_only = True  # workspaces that stream only in DMs
        first = fs.app_mention("in a channel")
        await bench.deliver(first)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, first["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == "You said: in a channel"
        assert [c.error for c in fs.calls_for("chat.startStream")] == ["channel_type_not_supported"]
        second = fs.app_mention("again")
        await bench.deliver(second)
        await bench.reply_in(DEFAULT_CHANNEL, second["ts"])
        assert len(fs.calls_for("chat.startStream")) == 1  # not asked again for this channel
        # A DM still streams: in the Messages tab each question is answered in its own thread.
        parent = fs.dm_message("hi")
        await bench.deliver(parent)
        (dm_reply,) = await bench.reply_in(DEFAULT_DM, parent["ts"])
        assert dm_reply.history[0].event == "start_stream"


@pytest.mark.parametrize("how", ["expired by Slack", "before expiry"])
async def test_stream_ending_mid_answer_loses_no_text(tmp_path: Path, how: str) -> None:
    max_age = 0.6 if how == "before expiry" else None
    async with slack_bench(tmp_path, "socket", env=STREAMING, stream_max_age=max_age) as bench:
        fs, gw = bench.fs, bench.gw
        answer = " ".join(f"part{i}" for i in range(70))
        gw.script(Reply.paced(answer, tokens_per_s=30))
        event = fs.app_mention("long stream")
        await bench.deliver(event)
        if how == "expired by Slack":
            streaming = await fs.wait_for(lambda: streaming_with_text(bench, event["ts"]))
            fs.expire_stream(DEFAULT_CHANNEL, streaming[0].ts)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, reply.ts) == answer
        events = [s.event for s in fs.timeline(DEFAULT_CHANNEL, reply.ts)]
        assert events[0] == "start_stream" and "update" in events
        errors = [e for _, e in bench.slack_errors()]
        if how == "before expiry":
            assert "stop_stream" in events and errors == []  # ended cleanly, then chat.update
        else:
            assert "expire" in events and set(errors) <= {"message_not_in_streaming_state"}


async def test_streamed_answer_longer_than_a_message(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env=STREAMING) as bench:
        fs, gw = bench.fs, bench.gw
        big = long_answer(24_000)
        gw.script(Reply(text=big, chunk_chars=400, delay=0.01))
        event = fs.app_mention("a long stream")
        await bench.deliver(event)
        await bench.settle(1)
        parts = await bench.reply_in(DEFAULT_CHANNEL, event["ts"], count=3)
        assert bench.thread_text(DEFAULT_CHANNEL, event["ts"]) == big
        assert parts[0].history[0].event == "start_stream" and parts[0].streaming == "stopped"
        assert all(len(fs.visible_text(DEFAULT_CHANNEL, p.ts)) <= MAX_MARKDOWN for p in parts)
        assert bench.slack_errors() == []


async def test_user_stopping_a_native_stream_stops_the_answer(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", env=STREAMING) as bench:
        fs, gw = bench.fs, bench.gw
        answer = " ".join(f"slow{i}" for i in range(200))
        gw.script(Reply.paced(answer, tokens_per_s=30))
        event = fs.app_mention("go on and on")
        await bench.deliver(event)
        streaming = await fs.wait_for(lambda: streaming_with_text(bench, event["ts"]))
        fs.user_stops_stream(DEFAULT_CHANNEL, streaming[0].ts)
        await bench.settle(1, within=10)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        shown = fs.visible_text(DEFAULT_CHANNEL, reply.ts)
        assert shown.endswith("\n\n_(Stopped.)_")
        assert answer.startswith(shown.removesuffix("\n\n_(Stopped.)_")) and len(shown) < len(answer)
        stored = await bench.stored(ConversationKey("slack", "T0FAKE0001", DEFAULT_CHANNEL, event["ts"]))
        assert stored[-1].status == Outcome.STOPPED
