"""Exactly once, whoever receives it: the same message, slash command, button click or shortcut
delivered to two instances on one PostgreSQL at the same moment is acted on once. In one test
process (two runtimes with the real Slack adapter in HTTP mode); needs
``PARLEY_TEST_POSTGRES_URL``."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from adapters.slack.surface import STOP_ACTION
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.slack import events as ev
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_USER, OTHER_USER, FakeSlack
from tests.instances_harness import needs_postgres, slack_instances
from tests.slack_harness import is_live

pytestmark = needs_postgres


async def _to_both(fs: FakeSlack, kind: Any, payload: dict[str, Any]) -> None:
    deliveries = await asyncio.gather(
        *(fs.deliver(kind, payload, mode="http", url=url) for url in fs.events_urls)
    )
    for delivery in deliveries:
        await delivery.wait_acked(within=3)


async def test_one_message_delivered_to_both_is_answered_once(tmp_path: Path, pg_url: str) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        gw.default = Reply(text="once only", delay=0.05)
        a, _ = await slack_instances(stack, tmp_path, fs, gw, pg_url, 2)
        event = fs.app_mention("answer me once")
        await fs.deliver_event_to(event)
        await a.reply_in(DEFAULT_CHANNEL, event["ts"])
        await asyncio.sleep(0.5)
        assert len(a.bot_messages(DEFAULT_CHANNEL, event["ts"])) == 1
        assert len(gw.stream_requests) == 1


async def test_a_slash_command_delivered_to_both_is_acted_on_once(tmp_path: Path, pg_url: str) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        await slack_instances(stack, tmp_path, fs, gw, pg_url, 2)
        payload = ev.slash_command_payload(
            fs.identity,
            command="/parley",
            text="model gemini-2.5-pro",
            channel=DEFAULT_CHANNEL,
            channel_name="general",
            user=DEFAULT_USER,
            user_name="alice",
            response_url=f"{fs.base_url}/response-url/R-once",
        )
        await _to_both(fs, "slash_commands", payload)
        await fs.wait_for(lambda: fs.responses, within=5)
        await asyncio.sleep(0.5)  # time for a second answer, were there one
        assert len(fs.responses) == 1
        assert "gemini-2.5-pro" in fs.responses[0].payload["text"]


async def test_a_shortcut_delivered_to_both_is_acted_on_once(tmp_path: Path, pg_url: str) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        gw.default = Reply(text="a summary", delay=0.05)
        a, _ = await slack_instances(stack, tmp_path, fs, gw, pg_url, 2)
        first = fs.app_mention("something to summarise later")
        await fs.deliver_event(first, mode="http", url=fs.events_urls[0])
        await a.reply_in(DEFAULT_CHANNEL, first["ts"])
        for callback in ("summarize_thread", "reset_thread"):
            message = fs.messages[(DEFAULT_CHANNEL, first["ts"])].to_api(fs.identity.team_id)
            payload = ev.message_shortcut_payload(
                fs.identity,
                callback_id=callback,
                channel=DEFAULT_CHANNEL,
                channel_name="general",
                user=DEFAULT_USER,
                user_name="alice",
                message=message,
                response_url=f"{fs.base_url}/response-url/R-{callback}",
            )
            await _to_both(fs, "interactive", payload)
        await fs.wait_for(lambda: fs.responses, within=5)  # reset's "Done"
        await a.reply_in(DEFAULT_CHANNEL, first["ts"], count=2)
        await asyncio.sleep(0.5)
        assert len(gw.stream_requests) == 2  # the first answer and one summary
        assert [r.payload["text"] for r in fs.responses] == ["Done: Parley starts this conversation afresh."]


async def test_stop_clicked_on_another_instance_stops_the_reply(tmp_path: Path, pg_url: str) -> None:
    async with FakeGateway() as gw, FakeSlack() as fs, AsyncExitStack() as stack:
        answer = " ".join(f"word{i}" for i in range(200))
        gw.default = Reply(text=answer, delay=0.05)
        a, _ = await slack_instances(stack, tmp_path, fs, gw, pg_url, 2)
        event = fs.app_mention("a long one please")
        await fs.deliver_event(event, mode="http", url=fs.events_urls[0])  # a writes it
        live = await fs.wait_for(
            lambda: [m for m in a.bot_messages(DEFAULT_CHANNEL, event["ts"]) if is_live(m)]
        )
        await fs.wait_for(lambda: len(fs.visible_text(DEFAULT_CHANNEL, live[0].ts).split()) > 5, within=5)
        ts = live[0].ts

        # Someone else may not stop it, wherever they click.
        click = await fs.click_button(
            STOP_ACTION,
            block_id=STOP_ACTION,
            message_ts=ts,
            user=OTHER_USER,
            mode="http",
            url=fs.events_urls[1],
        )
        await click.wait_acked(within=3)
        await fs.wait_for(lambda: fs.responses)
        assert fs.responses[-1].payload["text"].startswith(f"Only <@{DEFAULT_USER}>, who asked")
        assert is_live(fs.message(DEFAULT_CHANNEL, ts))

        # The person who asked clicks Stop, and b is the instance that receives the click.
        click = await fs.click_button(
            STOP_ACTION, block_id=STOP_ACTION, message_ts=ts, mode="http", url=fs.events_urls[1]
        )
        await click.wait_acked(within=3)
        (reply,) = await a.reply_in(DEFAULT_CHANNEL, event["ts"], within=10)
        shown = fs.visible_text(DEFAULT_CHANNEL, reply.ts)
        assert shown.endswith("_(Stopped.)_") and len(shown.split()) < 150
        assert await gw.wait_for_disconnects(1)  # a's generation itself was cancelled
        assert len(fs.responses) == 1
