"""A Parley Discord bot on loopback: FakeGateway + FakeDiscord + a Runtime + the real adapter.

::

    async with discord_bench(tmp_path) as bench:
        question = await bench.mention(bench.channel, bench.alice, "hi")
        await bench.settle(answered=1)
        thread = bench.thread_of(question)

The real discord.py (AutoShardedClient) connects to the fake exactly as in production, from
``DISCORD_API_URL`` alone. discord.py's class attributes (``Route.BASE``, ``DEFAULT_GATEWAY``)
are restored afterwards, and every time discord.py makes a caller wait on a rate-limit bucket
(``Ratelimit._refresh``) is counted in ``bench.dpy_waits``: the budgets are right only if it
stays 0.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.discord.client import DiscordAdapter
from adapters.discord.pacing import DiscordBudgets
from adapters.discord.surface import PROVISIONAL, STOP_ID
from bot.runtime import Runtime
from tests.fakes.discord import Channel, FakeDiscord, Guild, Limits, RateLimitRule, StoredMessage, User
from tests.fakes.gateway import FakeGateway, Reply
from tests.stack import (
    TEST_SETTINGS,
    RecordingFiles,
    discord_env,
    discord_fakes,
    open_runtime,
    parley_env,
    shut_down,
)


def quick_limits() -> tuple[Limits, DiscordBudgets]:
    """Discord's per-channel limits (and Parley's budgets) scaled from 5 s to 1 s windows, for
    tests of behaviour that would otherwise spend their time waiting for a channel's window."""
    limits = Limits(message_create=RateLimitRule(5, 1.0), message_edit=RateLimitRule(5, 1.0))
    return limits, DiscordBudgets(create=(5, 1.0), edit=(5, 1.0))


@dataclass
class DiscordBench:
    fd: FakeDiscord
    gw: FakeGateway
    tmp: Path
    env: dict[str, str]
    budgets: DiscordBudgets | None
    guild: Guild
    channel: Channel
    alice: User
    bob: User
    files: RecordingFiles = field(default_factory=RecordingFiles)
    real_files: bool = False  # True: the real file pipeline instead of ``files``
    runtime: Runtime = field(init=False)
    adapter: DiscordAdapter = field(init=False)
    waits: list[int] = field(default_factory=lambda: [0])

    @property
    def dpy_waits(self) -> int:
        """Times discord.py made a caller sleep on a rate-limit bucket (should stay 0)."""
        return self.waits[0]

    async def start(self) -> None:
        self.runtime = await open_runtime(self.env, self.tmp, None if self.real_files else self.files)
        self.adapter = DiscordAdapter(
            self.runtime.adapter_context(), budgets=self.budgets, guild_ready_timeout=0.1
        )
        await self.adapter.start()

    async def stop(self) -> None:
        """``parley run``'s shutdown: no new answers, replies in flight drain, then disconnect."""
        await self.adapter.stop_intake()
        await shut_down(self.runtime, self.adapter.stop)

    # -- driving -------------------------------------------------------------------------------

    async def mention(self, channel: Channel | int, user: User, text: str, **kwargs: Any) -> StoredMessage:
        return await self.fd.user_says(channel, user, f"{self.fd.bot.mention} {text}", **kwargs)

    async def settle(self, answered: int | None = None, within: float = 20.0) -> None:
        """Until ``answered`` replies are finished (when given) and the adapter has no work left."""
        events = self.adapter.events
        hub = self.adapter.hub
        if answered is not None:
            await self.fd.wait_for(lambda: events.answered >= answered, within, what=f"{answered} answers")
        await asyncio.sleep(0.05)  # an event just dispatched may not have its task yet
        await self.fd.wait_for(lambda: hub.busy == 0, within, what="the adapter to be idle")

    # -- reading what users saw ------------------------------------------------------------------

    async def thread_opened(self, message: StoredMessage, within: float = 5.0) -> int:
        """Waits until a thread is open on ``message``; its id."""
        found = await self.fd.wait_for(lambda: self.fd.messages[message.id].thread_id, within)
        assert found is not None
        return found

    def thread_of(self, message: StoredMessage) -> Channel:
        thread_id = self.fd.messages[message.id].thread_id
        assert thread_id is not None, "no thread was opened on the message"
        return self.fd.channels[thread_id]

    def replies(self, channel: Channel | int) -> list[StoredMessage]:
        """Parley's messages everybody sees in ``channel`` (not interaction answers to one person)."""
        return [m for m in self.fd.bot_messages(channel) if not m.ephemeral]

    def reply_text(self, channel: Channel | int) -> str:
        return "".join(m.content for m in self.replies(channel))

    def gateway_body(self, index: int = -1) -> str:
        return json.dumps(self.gw.stream_requests[index].json, ensure_ascii=False)


def is_live(message: StoredMessage) -> bool:
    return STOP_ID in message.custom_ids or message.content in PROVISIONAL


def parley_messages(fd: FakeDiscord, channel_id: int) -> list[StoredMessage]:
    """Parley's messages in a channel or thread (ephemeral ones left out), read from a thread
    other than the fake's (``FakeDiscord.in_thread``)."""
    for _ in range(100):
        try:
            return [m for m in fd.bot_messages(channel_id) if not m.ephemeral]
        except RuntimeError:  # the fake's loop changed the dict meanwhile
            time.sleep(0.001)
    raise AssertionError("could not read the fake's messages")


def guild_on_each_shard(fd: FakeDiscord) -> dict[int, Guild]:
    """A new guild on each of two shards, by shard. Discord routes a guild to shard
    (id >> 22) % count; ids carry their creation time (ms)."""
    by_shard: dict[int, Guild] = {}
    while len(by_shard) < 2:
        guild = fd.create_guild(f"guild {len(fd.guilds)}")
        by_shard.setdefault((guild.id >> 22) % 2, guild)
        time.sleep(0.002)
    return by_shard


def bench_env(fd: FakeDiscord, gw: FakeGateway, tmp: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
    return parley_env(gw, tmp, {**discord_env(fd), **TEST_SETTINGS}, extra)


@asynccontextmanager
async def discord_bench(
    tmp: Path,
    *,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    budgets: DiscordBudgets | None = None,
    default: Reply | None = None,
    start: bool = True,
    real_files: bool = False,
    **fake_kwargs: Any,
) -> AsyncIterator[DiscordBench]:
    fakes = discord_fakes(default, heartbeat_interval_ms=500, limits=limits, **fake_kwargs)
    async with fakes as (gw, fd, waits):
        guild = fd.create_guild("Parley Test")
        channel = fd.create_channel(guild, "general")
        alice = fd.create_user("alice", global_name="Alice")
        bob = fd.create_user("bob", global_name="Bob")
        fd.add_member(guild, alice)
        fd.add_member(guild, bob)
        bench = DiscordBench(fd, gw, tmp, bench_env(fd, gw, tmp, env), budgets, guild, channel, alice, bob)
        bench.waits = waits
        bench.real_files = real_files
        if start:
            await bench.start()
        try:
            yield bench
        finally:
            if start:
                await bench.stop()
        assert not fd.server_errors, fd.server_errors
