"""Two Discord shard processes (``parley run`` with PARLEY_DISCORD_SHARD_IDS 0 and 1) on one
PostgreSQL share the bot's global budget of 50 requests a second: 80 mentions at once, 40 in a
server on each shard, are answered once each, completely, and the fake Discord — which counts the
global limit over every connection of one token — answers no request with a 429. Follow-ups in a
thread are answered in order. Needs ``PARLEY_TEST_POSTGRES_URL``."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path

import pytest

from tests.discord_harness import bench_env, guild_on_each_shard, is_live, parley_messages
from tests.fakes.discord import FakeDiscord, StoredMessage
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.run import wait_until
from tests.instances_harness import needs_postgres, start_instances, wait_all

pytestmark = [needs_postgres, pytest.mark.timeout(240)]

FILLER = " ".join(f"w{i}" for i in range(30))  # each answer streams for about three seconds
PER_SHARD = 40


def _answered(fd: FakeDiscord, question: StoredMessage) -> StoredMessage | None:
    thread = fd.messages[question.id].thread_id
    if thread is None:
        return None
    found = parley_messages(fd, thread)
    return found[-1] if len(found) == 1 and not is_live(found[0]) else None


def test_two_shard_processes_share_the_global_budget(tmp_path: Path, pg_database: str) -> None:
    with (
        FakeGateway.in_thread(default=Reply(delay=0.1, first_delay=0.2)) as gw,
        FakeDiscord.in_thread(heartbeat_interval_ms=500, shards=2) as fd,
    ):
        guilds = guild_on_each_shard(fd)
        alice = fd.create_user("alice")
        channels = {}
        for shard, guild in guilds.items():
            fd.add_member(guild, alice)
            channels[shard] = fd.create_channel(guild, "general")
        base = {
            "DATABASE_URL": pg_database,
            "PARLEY_DISCORD_SHARD_COUNT": "2",
            "PARLEY_INSTANCE_TIMEOUT": "2",
        }

        def env(cwd: Path) -> dict[str, str]:
            shard = cwd.name.rsplit("-", 1)[1]
            return bench_env(fd, gw, cwd, {**base, "PARLEY_DISCORD_SHARD_IDS": shard})

        runs = start_instances(tmp_path, 2, env)
        try:
            wait_all(runs)

            async def mentions() -> list[StoredMessage]:
                said = [
                    fd.user_says(channels[n % 2], alice, f"{fd.bot.mention} question {n}: {FILLER}")
                    for n in range(2 * PER_SHARD)
                ]
                return list(await asyncio.gather(*said))

            started = time.monotonic()
            questions = fd.run(mentions())
            for question in questions:
                wait_until(lambda q=question: _answered(fd, q), 120, "every answer")
            took = time.monotonic() - started
            time.sleep(1.0)  # time for a second answer to show, were there one
            for question in questions:
                reply = _answered(fd, question)
                asked = question.content.split("> ", 1)[1]
                assert reply is not None and reply.content == f"You said: {asked}"
            assert len(gw.stream_requests) == 2 * PER_SHARD
            assert fd.rate_limited_count == 0, fd.rate_limit_log[:5]
            answered = [run.logs.count("reply conversation=") for run in runs]
            assert answered == [PER_SHARD, PER_SHARD]  # each shard's server, by its own process
            edits = [
                r for r in fd.requests if r.route == "PATCH /channels/{channel_id}/messages/{message_id}"
            ]

            # Follow-ups in one thread, 100 ms apart: one at a time, in order.
            thread_id = fd.messages[questions[0].id].thread_id
            assert thread_id is not None
            thread = fd.channels[thread_id]
            before = len(gw.stream_requests)

            async def follow_ups() -> None:
                for n in (1, 2, 3):
                    await fd.user_says(thread, alice, f"follow-up {n}")
                    await asyncio.sleep(0.1)

            fd.run(follow_ups())
            wait_until(
                lambda: (
                    len(parley_messages(fd, thread_id)) == 4
                    and not is_live(parley_messages(fd, thread_id)[-1])
                ),
                30,
            )
            later = gw.stream_requests[before:]
            assert len(later) == 3
            for earlier, then in itertools.pairwise(later):
                assert earlier.t_done is not None and earlier.t_done <= then.t_received
            for n, request in enumerate(later, start=1):
                asked = json.dumps(request.json["messages"])
                assert f"follow-up {n}" in asked and all(
                    f"You said: follow-up {k}" in asked for k in range(1, n)
                )
            assert [run.terminate() for run in runs] == [0, 0]
            print(f"80 mentions over 2 shard processes: {took:.1f} s, {len(edits)} edits, 0 x 429")
        finally:
            for run in runs:
                run.close()
