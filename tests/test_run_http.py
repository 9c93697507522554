"""``parley run`` as operators see it: /healthz, /metrics and the log, through a real subprocess
connected to the fake gateway, the fake Slack (Socket Mode) and the fake Discord; on PostgreSQL
too when PARLEY_TEST_POSTGRES_URL names a server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from bot.store import Store
from bot.types import ConversationKey
from tests import discord_harness, slack_harness
from tests.fakes.discord import Channel, FakeDiscord, StoredMessage, User
from tests.fakes.gateway import FakeGateway
from tests.fakes.loopback import TcpProxy
from tests.fakes.run import ParleyProcess
from tests.fakes.slack_api import FakeSlack, Message

MODEL = "gemini-2.5-flash"


@dataclass
class World:
    gw: FakeGateway
    fs: FakeSlack
    fd: FakeDiscord
    channel: Channel  # a Discord text channel Parley and alice are in
    alice: User
    tmp: Path
    env: dict[str, str]

    def secrets(self) -> list[str]:
        return [v for k, v in self.env.items() if k.endswith(("_KEY", "_TOKEN", "_SECRET"))]

    def mention(self, text: str) -> Message:
        """Alice mentions Parley in Slack's #general; returns the finished reply in the thread."""
        event = self.fs.app_mention(text)
        delivery = self.fs.run(self.fs.deliver_event(event, mode="socket"))
        self.fs.run(delivery.wait_acked(within=5))

        def finished() -> Message | None:
            replies = self.fs.bot_messages(event["channel"], event["ts"])
            done = [m for m in replies if not slack_harness.is_live(m) and "You said" in m.text]
            return done[0] if done else None

        reply: Message = self.fs.run(self.fs.wait_for(finished, within=20))
        return reply

    def discord_mention(self, text: str) -> StoredMessage:
        """Alice mentions Parley in a Discord channel; returns the finished reply in its thread."""
        fd = self.fd
        question = fd.run(fd.user_says(self.channel, self.alice, f"{fd.bot.mention} {text}"))

        def finished() -> StoredMessage | None:
            thread = fd.messages[question.id].thread_id
            replies = fd.bot_messages(thread) if thread else []
            done = [m for m in replies if not discord_harness.is_live(m) and "You said" in m.content]
            return done[0] if done else None

        reply: StoredMessage = fd.run(fd.wait_for(finished, 20, what="Parley's answer"))
        return reply


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with (
        FakeGateway.in_thread() as gw,
        FakeSlack.in_thread() as fs,
        FakeDiscord.in_thread(heartbeat_interval_ms=1000) as fd,
    ):
        guild = fd.create_guild("Parley Test")
        channel = fd.create_channel(guild, "general")
        alice = fd.create_user("alice", global_name="Alice")
        fd.add_member(guild, alice)
        env = {
            **slack_harness.bench_env(fs, gw, tmp_path, "socket", {"PARLEY_LOG_JSON": "true"}),
            "DISCORD_BOT_TOKEN": fd.token,
            "DISCORD_API_URL": fd.api_url,
        }
        yield World(gw, fs, fd, channel, alice, tmp_path, env)
        assert not fd.server_errors, fd.server_errors


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and labels (every series'
    ``parley_instance`` label left out)."""
    return {
        (s.name, frozenset((k, v) for k, v in s.labels.items() if k != "parley_instance")): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def checks(body: bytes) -> dict[str, str]:
    """What /healthz says, without which instance says it."""
    return {k: v for k, v in json.loads(body).items() if k not in ("instance", "process")}


def value(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in parsed, f"no sample {name}{labels}; have {sorted(k[0] for k in parsed)}"
    return parsed[key]


def test_health_metrics_and_the_reply_log_after_one_mention(world: World) -> None:
    with ParleyProcess(world.tmp, world.env, "parley-run") as bot:
        status, body, _ = bot.get("/healthz")
        assert status == 200
        health = json.loads(body)
        # Which instance answers: PARLEY_INSTANCE_ID, else this process's generated id.
        instance = health.pop("instance")
        assert instance == health.pop("process") != ""
        assert health == {
            "status": "ok",
            "database": "ok",
            "discord": "connected",
            "slack": "connected",
        }

        reply = world.mention("how are the metrics?")
        assert "You said: how are the metrics?" in reply.text
        assert world.discord_mention("and on discord?").content == "You said: and on discord?"

        # A reply is visible a moment before the service records its end: scrape until both have.
        slack = {"platform": "slack", "model": MODEL}
        discord = {"platform": "discord", "model": MODEL}
        finished = [
            ("parley_replies_finished_total", frozenset({**labels, "outcome": "complete"}.items()))
            for labels in (slack, discord)
        ]
        deadline = time.monotonic() + 10
        while True:
            status, body, content_type = bot.get("/metrics")
            assert status == 200 and content_type.startswith("text/plain; version=")
            parsed = samples(body.decode())
            if all(parsed.get(key) for key in finished) or time.monotonic() > deadline:
                break
            time.sleep(0.05)

        # Every series says which instance it comes from (several instances: sum over them).
        families = list(text_string_to_metric_families(body.decode()))
        assert {sample.labels.get("parley_instance") for f in families for sample in f.samples} == {instance}
        assert value(parsed, "parley_instance_info", process=instance, host=socket.gethostname()) == 1
        assert value(parsed, "parley_replies_started_total", **slack) == 1
        assert value(parsed, "parley_replies_finished_total", **slack, outcome="complete") == 1
        assert value(parsed, "parley_first_token_seconds_count", **slack) == 1
        assert value(parsed, "parley_first_visible_seconds_count", **slack) == 1
        first_token = value(parsed, "parley_first_token_seconds_sum", **slack)
        first_visible = value(parsed, "parley_first_visible_seconds_sum", **slack)
        assert 0 < first_token <= first_visible < 10
        # The renderer's counts are what Slack received.
        posted = [c for c in world.fs.calls_for("chat.postMessage") if c.ok]
        updated = [c for c in world.fs.calls_for("chat.update") if c.ok]
        assert value(parsed, "parley_platform_posts_total", platform="slack") == len(posted) >= 1
        assert value(parsed, "parley_platform_edits_total", platform="slack") == len(updated) >= 1
        assert value(parsed, "parley_platform_rate_limited_total", platform="slack") == 0
        assert value(parsed, "parley_replies_finished_total", **discord, outcome="complete") == 1
        assert value(parsed, "parley_first_visible_seconds_count", **discord) == 1
        done = [r.route for r in world.fd.requests if r.status == 200]
        created = [r for r in done if r == "POST /channels/{channel_id}/messages"]
        edited = [r for r in done if r == "PATCH /channels/{channel_id}/messages/{message_id}"]
        assert value(parsed, "parley_platform_posts_total", platform="discord") == len(created) >= 1
        assert value(parsed, "parley_platform_edits_total", platform="discord") == len(edited) >= 1
        assert value(parsed, "parley_platform_rate_limited_total", platform="discord") == 0
        assert value(parsed, "parley_tokens_total", direction="in", model=MODEL) > 0
        assert value(parsed, "parley_tokens_total", direction="out", model=MODEL) == len(
            "You said: how are the metrics? You said: and on discord?".split()
        )
        assert value(parsed, "parley_replies_in_flight") == 0
        assert value(parsed, "parley_turns_waiting") == 0

        assert bot.stop() == 0

    lines = [json.loads(line) for line in bot.stderr.splitlines()]  # every line is JSON
    logged = {line["platform"]: line for line in lines if line.get("event") == "reply"}
    assert sorted(logged) == ["discord", "slack"]  # one line per reply
    assert logged["slack"]["conversation"].startswith("slack:T0FAKE0001:C0GENERAL1:")
    assert logged["discord"]["conversation"].startswith(f"discord:{world.channel.guild_id}:")
    for line in logged.values():
        assert line["model"] == MODEL and line["outcome"] == "complete"
        assert isinstance(line["conversation_id"], int)
        assert line["first_token_s"] <= line["first_visible_s"] <= line["total_s"]
    assert logged["slack"]["tokens_out"] == 6
    for secret in world.secrets():
        assert secret not in bot.stderr


def test_healthz_is_503_while_slack_is_disconnected(world: World) -> None:
    with ParleyProcess(world.tmp, world.env, "parley-run") as bot:
        bot.wait_for_status("/healthz", 200)
        # Slack drops the socket and, the app token revoked, would refuse to issue a new one.
        # (Reconnecting by itself is tested in-process: tests/test_slack_app.py.)
        world.fs.app_token = "xapp-1-revoked"
        world.fs.run(world.fs.drop_sockets(abrupt=True))
        body = checks(bot.wait_for_status("/healthz", 503))
        assert body == {
            "status": "unavailable",
            "database": "ok",
            "discord": "connected",
            "slack": "disconnected",
        }
        assert bot.stop() == 0  # shutting down without a connection is still a clean exit


def test_healthz_is_503_once_discord_closes_the_gateway(world: World) -> None:
    with ParleyProcess(world.tmp, world.env, "parley-run") as bot:
        bot.wait_for_status("/healthz", 200)
        # 4004 "authentication failed" (the token was reset meanwhile): discord.py must not resume.
        world.fd.run(world.fd.drop_connections(4004, wait=False))
        body = checks(bot.wait_for_status("/healthz", 503))
        assert body == {
            "status": "unavailable",
            "database": "ok",
            "discord": "disconnected",
            "slack": "connected",
        }
        assert bot.stop() == 0


async def _stored_texts(url: str, key: str) -> list[tuple[str, str]]:
    platform, workspace, channel, thread = key.split(":")
    store = await Store.open(url, migrate=False)
    try:
        conversation = await store.conversations.find(ConversationKey(platform, workspace, channel, thread))
        assert conversation is not None
        return [(m.role, m.text) for m in await store.history.load(conversation.id, 10)]
    finally:
        await store.close()


def test_on_postgresql_a_mention_is_stored_and_health_follows_the_database(
    world: World, pg_database: str
) -> None:
    direct = make_url(pg_database)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    env = {**world.env, "DATABASE_URL": direct.set(port=proxy.port).render_as_string(hide_password=False)}
    try:
        with ParleyProcess(world.tmp, env, "parley-run") as bot:  # migrates the empty database first
            bot.wait_for_status("/healthz", 200)
            world.mention("remember this on postgres")
            bot.wait_for_log('"event": "reply"')  # logged once the reply is stored

            proxy.cut()  # the database server becomes unreachable
            body = json.loads(bot.wait_for_status("/healthz", 503, within=10))
            assert body["status"] == "unavailable" and body["slack"] == body["discord"] == "connected"
            assert body["database"].startswith("unreachable")
            proxy.restore()
            bot.wait_for_status("/healthz", 200, within=10)  # the pool reconnects by itself
            assert bot.stop() == 0
    finally:
        proxy.close()
    (logged,) = [json.loads(line) for line in bot.stderr.splitlines() if '"event": "reply"' in line]
    assert asyncio.run(_stored_texts(pg_database, logged["conversation"])) == [
        ("user", "remember this on postgres"),
        ("assistant", "You said: remember this on postgres"),
    ]
