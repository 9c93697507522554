"""Security through the Slack adapter: forged requests do no work, downloads stay on Slack's file
host, the access lists hold on every entry point, and per-user/channel/global limits answer
"busy" politely. (The secrets scan of a whole ``parley run`` is in test_security_secrets.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.notes import BUSY
from bot.store.models import Conversation, Message, ProcessedEvent, UsageRow
from bot.types import ConversationKey, Outcome
from tests.fakes.gateway import Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, DEFAULT_DM, DEFAULT_USER, OTHER_CHANNEL, OTHER_USER
from tests.slack_harness import SlackBench, slack_bench

TEAM = "T0FAKE0001"


async def table_counts(bench: SlackBench) -> dict[str, int]:
    async with bench.runtime.store.engine.connect() as conn:
        return {
            model.__tablename__: (await conn.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Conversation, Message, ProcessedEvent, UsageRow)
        }


async def test_unsigned_forged_stale_and_tampered_requests_do_no_work(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "http") as bench:
        fs = bench.fs
        payload = fs.event_callback(fs.app_mention("do something"))
        stale = str(int(time.time()) - 301)
        answers = [
            await fs.post_http(payload, signature="none"),
            await fs.post_http(payload, signature="bad"),
            await fs.post_http(payload, timestamp=stale),
            # Signed, then the body changed on the way (the signature covers the raw body).
            await fs.post_http(
                payload,
                extra_headers={
                    "X-Slack-Signature": fs.signed_headers(b"{}", "application/json")["X-Slack-Signature"]
                },
            ),
            await fs.post_http(
                {"command": "/parley", "text": "model x"}, kind="slash_commands", signature="bad"
            ),
            await fs.post_http(
                {"type": "block_actions", "actions": []}, kind="interactive", signature="none"
            ),
        ]
        assert [status for status, _ in answers] == [401] * 6
        await asyncio.sleep(0.2)
        await bench.settle()
        assert await table_counts(bench) == {
            "conversations": 0,
            "messages": 0,
            "processed_events": 0,
            "usage": 0,
        }
        assert bench.gw.requests == []
        assert [c.method for c in fs.calls] == ["auth.test"]  # start-up only: no users.info, no posts
        assert bench.adapter.ws.stats.events == 0
        # The genuine article still works.
        assert (await fs.post_http(payload))[0] == 200
        await bench.reply_in(DEFAULT_CHANNEL, payload["event"]["ts"])


async def test_downloads_stay_on_the_slack_file_host(tmp_path: Path) -> None:
    async with slack_bench(tmp_path, "socket") as bench:
        fs, gw = bench.fs, bench.gw
        # Slack's host is "localhost" here: 127.0.0.1 (the gateway, any other local service) is not it.
        bench.env["SLACK_API_URL"] = fs.api_url.replace("127.0.0.1", "localhost")
        await bench.restart()
        internal = f"{gw.url}/v1/models"

        def slack_file(name: str, *, redirect: str | None = None, url: str | None = None) -> dict[str, Any]:
            api = fs.add_file(f"contents of {name}".encode(), name, mimetype="text/plain")
            api = {
                k: v.replace("127.0.0.1", "localhost") if isinstance(v, str) else v for k, v in api.items()
            }
            if redirect:
                fs.file_redirects[api["id"]] = redirect
            if url:
                api["url_private"] = api["url_private_download"] = url
            return api

        files = [
            slack_file("fine.txt"),
            slack_file("redirect-to-loopback.txt", redirect=internal),
            slack_file("redirect-to-metadata.txt", redirect="http://169.254.169.254/latest/meta-data/"),
            slack_file("redirect-elsewhere.txt", redirect="https://files.slack.com.evil.example/x"),
            slack_file("loopback.txt", url=internal),
            slack_file("ipv6-loopback.txt", url="http://[::1]:9/x"),
            slack_file("local-file.txt", url="file:///etc/passwd"),
        ]
        event = fs.app_mention("read these", files=files)
        await bench.deliver(event)
        (reply,) = await bench.reply_in(DEFAULT_CHANNEL, event["ts"])
        fetched = {f.name: (f.data, f.error) for f in bench.files.fetched}
        assert fetched.pop("fine.txt") == (b"contents of fine.txt", None)
        assert len(fetched) == 6
        for name, (data, error) in fetched.items():
            assert data is None
            assert error == f"I didn't download {name}: its address is not on the platform's file host."
            assert error in fs.visible_text(DEFAULT_CHANNEL, reply.ts)  # the user is told
        # Nothing reached the internal service, and the bot token went nowhere but Slack.
        assert [r.path for r in gw.requests] == ["/v1/chat/completions"]
        assert all(fs.bot_token not in str(r.headers) for r in gw.requests)
        assert {d.path.rsplit("/", 1)[-1] for d in fs.file_downloads} == {f["name"] for f in files[:4]}


async def test_access_lists_hold_for_dms_and_thread_follow_ups(tmp_path: Path) -> None:
    env = {"PARLEY_ALLOW_DMS": "false", "PARLEY_DENY_USERS": OTHER_USER}
    async with slack_bench(tmp_path, "socket", env=env) as bench:
        fs, gw = bench.fs, bench.gw
        await bench.deliver(fs.dm_message("hello in a DM"))
        start = fs.app_mention("a thread alice starts")
        await bench.deliver(start)
        await bench.reply_in(DEFAULT_CHANNEL, start["ts"])
        # Bob is denied: not by mention, not by following up in a thread Parley answers.
        await bench.deliver(fs.channel_message("bob follows up", thread_ts=start["ts"], user=OTHER_USER))
        await bench.deliver(fs.app_mention("bob mentions", thread_ts=start["ts"], user=OTHER_USER))
        reset = await fs.message_shortcut("reset_thread", message_ts=start["ts"], user=OTHER_USER)
        await reset.wait_acked(within=3)
        await fs.wait_for(lambda: fs.responses)
        await bench.settle(1)
        await asyncio.sleep(0.2)
        await bench.settle()
        assert [r.last_user_text for r in gw.stream_requests] == ["a thread alice starts"]
        assert fs.bot_messages(DEFAULT_DM) == []
        assert fs.responses[-1].payload["text"] == "Sorry, Parley isn't available to you here."
        stored = await bench.stored(ConversationKey("slack", TEAM, DEFAULT_CHANNEL, start["ts"]))
        assert len(stored) == 2  # the thread was not reset, bob's words were not stored


SLOW = " ".join(["a slow answer"] * 8)
LIMITS = {
    "user_rate": ({"PARLEY_USER_RATE": "2"}, [(DEFAULT_USER, DEFAULT_CHANNEL)] * 3),
    "user_busy": (
        {"PARLEY_MAX_CONCURRENT_PER_USER": "1"},
        [(DEFAULT_USER, DEFAULT_CHANNEL), (DEFAULT_USER, OTHER_CHANNEL)],
    ),
    "channel_busy": (
        {"PARLEY_MAX_CONCURRENT_PER_CHANNEL": "1"},
        [(DEFAULT_USER, DEFAULT_CHANNEL), (OTHER_USER, DEFAULT_CHANNEL)],
    ),
    "global_busy": (
        {"PARLEY_MAX_CONCURRENT_GLOBAL": "1"},
        [(DEFAULT_USER, DEFAULT_CHANNEL), (OTHER_USER, OTHER_CHANNEL)],
    ),
}


@pytest.mark.parametrize("limit", list(LIMITS))
async def test_limits_answer_busy_politely(tmp_path: Path, limit: str) -> None:
    env, askers = LIMITS[limit]
    async with slack_bench(tmp_path, "socket", env=env) as bench:
        fs, gw = bench.fs, bench.gw
        gw.default = Reply.paced(SLOW, tokens_per_s=40)
        events = []
        for user, channel in askers:
            event = fs.app_mention(f"question from {user}", user=user, channel=channel)
            await bench.deliver(event)
            await fs.wait_for(lambda: bench.bot_messages(channel, event["ts"]))  # noqa: B023
            events.append((event, channel))
        *admitted, (refused, refused_channel) = events
        (busy,) = await bench.reply_in(refused_channel, refused["ts"])
        assert fs.visible_text(refused_channel, busy.ts) == BUSY[limit]
        for event, channel in admitted:
            (reply,) = await bench.reply_in(channel, event["ts"])
            assert fs.visible_text(channel, reply.ts) == SLOW
        await bench.settle(len(askers))
        assert len(gw.stream_requests) == len(admitted)
        stored = await bench.stored(ConversationKey("slack", TEAM, refused_channel, refused["ts"]))
        assert [(m.role, m.text, m.status) for m in stored] == [
            ("user", f"question from {refused['user']}", Outcome.COMPLETE),
            ("assistant", BUSY[limit], Outcome.COMPLETE),
        ]
        # Once the others are done, the same person is answered again (the rate limit: a minute on).
        if limit != "user_rate":
            again = fs.app_mention("and now?", user=refused["user"], channel=refused_channel)
            await bench.deliver(again)
            (reply,) = await bench.reply_in(refused_channel, again["ts"])
            assert fs.visible_text(refused_channel, reply.ts).startswith("a slow answer")
