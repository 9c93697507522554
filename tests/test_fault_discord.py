"""Faults through the Discord adapter: kill -9 mid-reply and the next start's recovery (a real
``parley run``), 429s from a limit Discord does not announce, 5xx on posts and edits, a message
Discord will not let Parley edit. (Gateway resumes, op 7 and op 9 mid-reply are in
test_discord_lifecycle.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.notes import INTERRUPTED
from bot.types import ConversationKey, Outcome
from tests.discord_harness import (
    DiscordBench,
    bench_env,
    discord_bench,
    is_live,
    parley_messages,
    quick_limits,
)
from tests.fakes.discord import FakeDiscord, RateLimitRule, StoredMessage
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.run import ParleyProcess, wait_until
from tests.reliability_harness import replies

ANSWER = " ".join(f"word{i}" for i in range(60))
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
POST = "POST /channels/{channel_id}/messages"


def test_kill_9_mid_reply_then_the_next_start_closes_it_as_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "parley.db"
    with (
        FakeGateway.in_thread(default=Reply.paced(ANSWER, tokens_per_s=10)) as gw,
        FakeDiscord.in_thread(heartbeat_interval_ms=500) as fd,
    ):
        guild = fd.create_guild("Parley Test")
        channel = fd.create_channel(guild, "general")
        alice = fd.create_user("alice")
        fd.add_member(guild, alice)
        env = {**bench_env(fd, gw, tmp_path, None), "PARLEY_HTTP_PORT": "0"}
        first = ParleyProcess(tmp_path, env, "first").start()
        second = ParleyProcess(tmp_path, env, "second")
        try:
            wait_until(lambda: "Parley is running" in first.stderr, 20, "Discord READY")
            question = fd.run(fd.user_says(channel, alice, f"{fd.bot.mention} tell me a long story"))
            thread = wait_until(lambda: fd.messages[question.id].thread_id, 15, "thread")

            def shown(words: int) -> StoredMessage | None:
                msgs = parley_messages(fd, thread)
                return msgs[-1] if msgs and len(msgs[-1].content.split()) >= words else None

            wait_until(lambda: shown(5), 15, "partial answer")
            first.kill()
            time.sleep(0.3)
            (message,) = parley_messages(fd, thread)
            partial = message.content
            assert is_live(message) and ANSWER.startswith(partial) and partial != ANSWER
            assert [r["status"] for r in replies(db)] == ["streaming"]

            second.start()
            closed = wait_until(
                lambda: (m := fd.messages[message.id]).content.endswith(INTERRUPTED) and m, 25, "recovery"
            )
            assert closed.content == f"{partial.rstrip()}\n\n{INTERRUPTED}"
            assert not is_live(closed)  # the Stop button is gone
            wait_until(lambda: replies(db)[0]["status"] == "interrupted", 10, "the row closed")
            assert [(r["status"], r["text"]) for r in replies(db)] == [("interrupted", partial)]
            assert len(parley_messages(fd, thread)) == 1
            assert len(gw.stream_requests) == 1
            assert second.terminate() == 0
        finally:
            first.close()
            second.close()


async def answered_once(bench: DiscordBench, question: StoredMessage, answer: str = ANSWER) -> StoredMessage:
    await bench.settle(answered=1, within=30)
    thread = bench.thread_of(question)
    (reply,) = bench.replies(thread)
    assert reply.content == answer and not is_live(reply)
    key = ConversationKey("discord", str(bench.guild.id), str(bench.channel.id), str(thread.id))
    conversation = await bench.runtime.store.conversations.find(key)
    assert conversation is not None
    stored = await bench.runtime.store.history.load(conversation.id, 10)
    assert [(m.role, m.status) for m in stored][-1] == ("assistant", Outcome.COMPLETE)
    assert stored[-1].text == answer
    return reply


async def test_429s_from_a_limit_discord_does_not_announce_cost_no_answer(tmp_path: Path) -> None:
    limits, budgets = quick_limits()
    limits.message_edit = RateLimitRule(2, 1.0, announce=False)  # below the declared budget, unseen
    async with discord_bench(
        tmp_path, limits=limits, budgets=budgets, default=Reply.paced(ANSWER, tokens_per_s=40)
    ) as bench:
        question = await bench.mention(bench.channel, bench.alice, "hello")
        await answered_once(bench, question)
        assert bench.fd.rate_limited_count > 0


async def test_5xx_on_post_and_edit_are_retried(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, tokens_per_s=40)) as bench:
        post = bench.fd.fail(POST, status=503)
        edit = bench.fd.fail(EDIT, status=502)
        question = await bench.mention(bench.channel, bench.alice, "through the errors")
        await answered_once(bench, question)
        assert (post.hits, edit.hits) == (1, 1)


async def test_a_message_discord_will_not_edit_is_replaced_not_doubled(tmp_path: Path) -> None:
    first: dict[str, Any] = {}

    def first_message(request: web.Request) -> bool:
        first.setdefault("id", request.match_info["message_id"])
        return request.match_info["message_id"] == first["id"]

    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, tokens_per_s=40)) as bench:
        bench.fd.fail(EDIT, status=403, times=None, match=first_message)
        question = await bench.mention(bench.channel, bench.alice, "edit me if you can")
        reply = await answered_once(bench, question)
        assert bench.fd.messages[int(first["id"])].deleted
        assert reply.id != int(first["id"])


async def test_an_invalid_session_mid_reply_costs_no_answer(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, tokens_per_s=30)) as bench:
        fd = bench.fd
        question = await bench.mention(bench.channel, bench.alice, "a long one")
        thread = await bench.thread_opened(question)
        await fd.wait_for_message(thread, lambda m: m.content.startswith("word0"))
        await fd.invalidate_session(resumable=False, timeout=15)  # op 9: a new session, no replay
        await answered_once(bench, question)
        await fd.wait_for(lambda: bench.adapter.connected, 10)
        bench.gw.script(Reply(text="still here"))
        again = await fd.user_says(thread, bench.alice, "and after the new session?")
        await bench.settle(answered=2)
        assert [m.content for m in bench.replies(thread)] == [ANSWER, "still here"]
        assert again.id and [r.last_user_text for r in bench.gw.stream_requests] == [
            "a long one",
            "and after the new session?",
        ]
