"""Ordered turns and shared limits across instances, in one test process: two runtimes (each with
the real Slack adapter in HTTP mode) on one PostgreSQL, the fake Slack delivering to either.
Needs ``PARLEY_TEST_POSTGRES_URL``; the ``parley run`` processes version is
tests/test_instances_slack.py."""

from __future__ import annotations

import asyncio
import itertools
import json
from contextlib import AsyncExitStack
from pathlib import Path

from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, OTHER_USER, FakeSlack
from tests.instances_harness import needs_postgres, slack_instances

pytestmark = needs_postgres


def _asked(gw: FakeGateway, index: int) -> str:
    return json.dumps(gw.stream_requests[index].json["messages"], ensure_ascii=False)


async def test_follow_ups_on_two_instances_are_answered_in_order_with_the_earlier_exchanges(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        # Each answer echoes its question and takes about a second: the follow-ups overlap.
        gw.default = Reply(delay=0.15, first_delay=0.1)
        a, b = await slack_instances(stack, tmp_path, fs, gw, pg_url, 2)
        mention = fs.app_mention("start a thread")
        await fs.deliver_event(mention, mode="http", url=fs.events_urls[0])
        await a.reply_in(DEFAULT_CHANNEL, mention["ts"])

        ts = mention["ts"]
        for n, url in enumerate([fs.events_urls[0], fs.events_urls[1], fs.events_urls[0]], start=1):
            event = fs.channel_message(f"follow-up {n}", thread_ts=ts)
            await fs.deliver_event(event, mode="http", url=url)
            await asyncio.sleep(0.1)
        await fs.wait_for(lambda: len(gw.stream_requests) == 4 and gw.stream_requests[-1].t_done, within=30)
        await a.reply_in(DEFAULT_CHANNEL, ts, count=4)

        # One at a time, in the order they arrived, each seeing the exchanges before it.
        requests = gw.stream_requests
        for earlier, later in itertools.pairwise(requests):
            assert earlier.t_done is not None and earlier.t_done <= later.t_received
        for n in (1, 2, 3):
            asked = _asked(gw, n)
            assert f"follow-up {n}" in asked
            for before in range(1, n):
                assert f"follow-up {before}" in asked and f"You said: follow-up {before}" in asked
            assert f"follow-up {n + 1}" not in asked
        await a.settle()
        await b.settle()
        assert [a.adapter.ws.stats.answered, b.adapter.ws.stats.answered] == [3, 1]
        texts = [fs.visible_text(DEFAULT_CHANNEL, m.ts) for m in a.bot_messages(DEFAULT_CHANNEL, ts)]
        assert texts == ["You said: start a thread", *(f"You said: follow-up {n}" for n in (1, 2, 3))]


async def test_a_user_s_concurrency_limit_holds_over_both_instances(tmp_path: Path, pg_url: str) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        gw.default = Reply(text="a slow answer " * 10, delay=0.1)
        a, b = await slack_instances(stack, tmp_path, fs, gw, pg_url, 2, PARLEY_MAX_CONCURRENT_PER_USER="1")
        first = fs.app_mention("one")
        await fs.deliver_event(first, mode="http", url=fs.events_urls[0])
        await fs.wait_for(lambda: gw.stream_requests, within=10)
        second = fs.app_mention("two", channel=DEFAULT_CHANNEL)
        await fs.deliver_event(second, mode="http", url=fs.events_urls[1])
        other = fs.app_mention("someone else", user=OTHER_USER)
        await fs.deliver_event(other, mode="http", url=fs.events_urls[1])
        (busy,) = await b.reply_in(DEFAULT_CHANNEL, second["ts"])
        assert fs.visible_text(DEFAULT_CHANNEL, busy.ts).startswith("⏳ I'm still working on your other")
        await a.reply_in(DEFAULT_CHANNEL, first["ts"])
        await b.reply_in(DEFAULT_CHANNEL, other["ts"])
        assert len(gw.stream_requests) == 2  # alice's first and bob's, not alice's second


async def test_a_stopping_instance_leaves_its_waiting_turn_to_the_other(tmp_path: Path, pg_url: str) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        gw.default = Reply(delay=0.1)
        a, b = await slack_instances(stack, tmp_path, fs, gw, pg_url, 2)
        mention = fs.app_mention("a question " * 10)
        await fs.deliver_event(mention, mode="http", url=fs.events_urls[0])
        await fs.wait_for(lambda: gw.stream_requests, within=10)
        follow_up = fs.channel_message("and then?", thread_ts=mention["ts"])
        await fs.deliver_event(follow_up, mode="http", url=fs.events_urls[0])
        await fs.wait_for(lambda: a.runtime.service.waiting == 1, within=5)

        await a.runtime.service.drain(10)  # SIGTERM: the running reply finishes, the waiting turn goes
        await b.reply_in(DEFAULT_CHANNEL, mention["ts"], count=2, within=20)
        shown = b.bot_messages(DEFAULT_CHANNEL, mention["ts"])
        texts = [fs.visible_text(DEFAULT_CHANNEL, m.ts) for m in shown]
        assert texts[1] == "You said: and then?"
        assert b.adapter.ws.stats.answered == 0  # b received nothing: it adopted the turn
        assert "and then?" in _asked(gw, 1) and "You said: a question" in _asked(gw, 1)
