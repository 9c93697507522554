"""Slack faults through the fake: 429s when another client eats the workspace's chat.update
budget, 5xx on posts and edits, a message whose edits always fail, Socket Mode dropping
mid-reply. No answer is lost, none is doubled, none is left hanging."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, OTHER_CHANNEL, Budget
from tests.slack_harness import SlackBench, is_live, slack_bench

TEAM = "T0FAKE0001"
ANSWER = " ".join(f"token{i}" for i in range(45))


def visible(bench: SlackBench, thread_ts: str) -> list[str]:
    """The text of each of the bot's messages in the thread that a user can still see."""
    msgs = [m for m in bench.bot_messages(DEFAULT_CHANNEL, thread_ts) if not m.deleted]
    return [bench.fs.visible_text(DEFAULT_CHANNEL, m.ts) for m in msgs]


async def assert_answered_once(bench: SlackBench, thread_ts: str, answer: str = ANSWER) -> None:
    """One visible, finished message with the whole answer, and the history agrees."""

    def shown() -> bool:
        msgs = [m for m in bench.bot_messages(DEFAULT_CHANNEL, thread_ts) if not m.deleted]
        return bool(msgs) and not any(is_live(m) for m in msgs)

    await bench.fs.wait_for(shown, within=30)
    assert visible(bench, thread_ts) == [answer]
    key = ConversationKey("slack", TEAM, DEFAULT_CHANNEL, thread_ts)

    async def stored() -> list[tuple[str, Outcome, str]]:
        return [(m.role, m.status, m.text) for m in await bench.stored(key)]

    for _ in range(200):
        rows = await stored()
        if rows and rows[-1][1] is not Outcome.STREAMING:
            break
        await asyncio.sleep(0.02)
    assert rows[-2:] == [("user", Outcome.COMPLETE, rows[-2][2]), ("assistant", Outcome.COMPLETE, answer)]


async def test_another_client_eating_the_update_budget_costs_429s_not_answers(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        # The workspace allows fewer updates than Parley declares, and a neighbour uses them up.
        fs.limits.budgets["chat.update"] = Budget(8, 2.0)
        neighbour = AsyncWebClient(token=fs.bot_token, base_url=fs.api_url)
        own = await neighbour.chat_postMessage(channel=OTHER_CHANNEL, text="dashboard")

        async def busy_neighbour() -> None:
            for i in range(60):  # about 1.5 s of a neighbour using the budget up
                with contextlib.suppress(Exception):
                    await neighbour.chat_update(channel=OTHER_CHANNEL, ts=own["ts"], text=f"dashboard {i}")
                await asyncio.sleep(0.02)

        noise = asyncio.create_task(busy_neighbour())
        gw.default = Reply.paced(ANSWER, tokens_per_s=30)
        events = [fs.app_mention(f"question {i}") for i in range(2)]
        for event in events:
            await bench.deliver(event)
        try:
            for event in events:
                await assert_answered_once(bench, event["ts"])
        finally:
            noise.cancel()
            await asyncio.gather(noise, return_exceptions=True)
        assert fs.rate_limited_count["chat.update"] > 0
        assert bench.runtime.pacer.stats.rate_limited > 0  # seen, and the budgets paused


async def test_5xx_on_post_and_update_are_retried(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        fs.fail("chat.postMessage", status=503, error="service_unavailable")
        fs.fail("chat.update", status=500, times=2)
        fs.fail("chat.postMessage", status=429, error="ratelimited", retry_after=1)
        gw.script(Reply.paced(ANSWER, tokens_per_s=40))
        event = fs.app_mention("through the errors")
        await bench.deliver(event)
        await assert_answered_once(bench, event["ts"])
        assert [f.hits for f in fs.faults] == [1, 2, 1]


async def test_a_message_slack_will_not_edit_is_replaced_not_doubled(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        first: dict[str, Any] = {}

        def first_message(params: dict[str, Any]) -> bool:
            first.setdefault("ts", params.get("ts"))
            return params.get("ts") == first["ts"]

        fs.fail("chat.update", status=500, times=None, match=first_message)
        gw.script(Reply.paced(ANSWER, tokens_per_s=40))
        event = fs.app_mention("edit me if you can")
        await bench.deliver(event)
        await assert_answered_once(bench, event["ts"])
        await bench.settle(1)
        # The stuck message was deleted; its replacement is the one the history points at.
        stuck = fs.message(DEFAULT_CHANNEL, first["ts"])
        assert stuck.deleted
        (reply,) = [m for m in bench.bot_messages(DEFAULT_CHANNEL, event["ts"]) if not m.deleted]
        rows = await _reply_refs(bench)
        assert rows == [[f"{DEFAULT_CHANNEL}:{reply.ts}"]]


async def test_socket_mode_drops_mid_reply_lose_and_double_nothing(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket", ack_timeout=0.5) as bench:
        fs, gw = bench.fs, bench.gw
        gw.default = Reply.paced(ANSWER, tokens_per_s=30)
        first = fs.app_mention("first")
        await bench.deliver(first)
        await fs.wait_for(lambda: len(_first_reply_text(bench, first).split()) > 3)
        connects = fs.socket_connect_count
        await fs.drop_sockets(abrupt=True)
        # Sent while Parley is disconnected: Slack retries it until Parley is back.
        second = fs.app_mention("sent during the outage")
        delivery = await fs.deliver_event(second, mode="socket")
        await fs.wait_for_connect_count(connects + 1, within=15)
        await fs.send_disconnect()  # and a polite "refresh" on top
        third = fs.app_mention("after the refresh")
        await delivery.wait_done(within=15)
        assert delivery.acked
        await bench.deliver(third)
        for event in (first, second, third):
            await assert_answered_once(bench, event["ts"])
        await bench.settle(3)
        assert len(gw.stream_requests) == 3


def _first_reply_text(bench: SlackBench, event: dict[str, Any]) -> str:
    msgs = bench.bot_messages(DEFAULT_CHANNEL, event["ts"])
    return bench.fs.visible_text(DEFAULT_CHANNEL, msgs[0].ts) if msgs else ""


async def _reply_refs(bench: SlackBench) -> list[Any]:
    from sqlalchemy import select

    from bot.store.models import Message

    async with bench.runtime.store.engine.connect() as conn:
        query = select(Message.reply_refs).where(Message.role == "assistant")
        return list((await conn.execute(query)).scalars())


async def test_a_follow_up_sent_while_the_placeholder_shows_is_not_lost(tmp_path: Path) -> None:
    # Found by the soak: the placeholder is up before the reply's row is stored, and a follow-up
    # typed in that moment found the thread "not followed" and was dropped.
    async with slack_bench(tmp_path, "socket") as bench:
        fs = bench.fs
        prepare = bench.files.prepare

        async def slow_prepare(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.5)  # files being read: the placeholder shows meanwhile
            return await prepare(*args, **kwargs)

        bench.files.prepare = slow_prepare  # type: ignore[method-assign]
        first = fs.app_mention("first")
        await bench.deliver(first)
        await fs.wait_for(lambda: bench.bot_messages(DEFAULT_CHANNEL, first["ts"]))
        await bench.deliver(fs.channel_message("and a quick follow-up", thread_ts=first["ts"]))
        replies = await bench.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        assert [fs.visible_text(DEFAULT_CHANNEL, m.ts) for m in replies] == [
            "You said: first",
            "You said: and a quick follow-up",
        ]
