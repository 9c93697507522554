"""Parley with its real adapters against the loopback fakes, and what each reply looked like.

Each stack starts the fake gateway, a fake platform with its default (production) rate limits,
a :class:`~bot.runtime.Runtime` exactly as ``parley run`` builds it (SQLite store, real file
pipeline, the one Pacer) and the real adapter with its default budgets, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.discord.client import DiscordAdapter
from adapters.slack.app import SlackAdapter
from bench.ideal import Limit
from bench.metrics import Trace
from bench.workload import Workload, question, question_index
from bot.render import Budget
from bot.runtime import Runtime
from bot.store.models import Conversation, Message
from tests.fakes.discord import Channel, FakeDiscord, Guild, Overwrite, Perm, StoredMessage, User
from tests.fakes.gateway import FakeGateway, RecordedRequest
from tests.fakes.slack import FakeSlack
from tests.stack import (
    discord_env,
    discord_fakes,
    open_runtime,
    parley_env,
    shut_down,
    slack_env,
    start_socket_mode,
)

# Every benchmark message is a lone question: no turn waits for a burst to gather, so the figures
# measure the renderer, not PARLEY_MERGE_WINDOW (whose cost to first text is the window itself).
NO_BURSTS = {"PARLEY_MERGE_WINDOW": "0"}


def _limits(budgets: tuple[Budget, ...]) -> list[Limit]:
    return [Limit(b.key, b.capacity, b.window) for b in budgets]


def _requests_by_question(gw: FakeGateway) -> dict[int, RecordedRequest]:
    out: dict[int, RecordedRequest] = {}
    for r in gw.stream_requests:
        i = question_index(r.last_user_text)
        if i is not None:
            out[i] = r
    return out


async def wait_until(predicate: Any, within: float, what: str) -> None:
    end = time.monotonic() + within
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"waited {within:.0f}s for {what}")
        await asyncio.sleep(0.02)


# -- Discord ------------------------------------------------------------------------------------


@dataclass
class DiscordStack:
    fd: FakeDiscord
    gw: FakeGateway
    runtime: Runtime
    adapter: DiscordAdapter
    guild: Guild
    channels: list[Channel]
    alice: User
    waits: list[int]
    asked: dict[int, tuple[float, StoredMessage]] = field(default_factory=dict)

    @property
    def dpy_waits(self) -> int:
        """Times discord.py put a caller to sleep on an empty bucket (the budgets should prevent it)."""
        return self.waits[0]

    @property
    def rate_limited(self) -> int:
        return self.fd.rate_limited_count

    async def ask(self, i: int, channel: Channel) -> None:
        at = time.monotonic()
        msg = await self.fd.user_says(channel, self.alice, f"{self.fd.bot.mention} {question(i)}")
        self.asked[i] = (at, msg)

    async def settle(self, n: int, within: float) -> None:
        events, hub = self.adapter.events, self.adapter.hub
        await wait_until(lambda: events.answered >= n, within, f"{n} Discord answers")
        await asyncio.sleep(0.05)
        await wait_until(lambda: hub.busy == 0 and self.runtime.pacer.active == 0, within, "an idle adapter")

    async def _refs_by_question(self) -> dict[str, list[str]]:
        """Where no thread opens, replies share the channel: the store knows which messages are whose
        (each reply's refs, its conversation keyed by the question's id)."""
        query = (
            select(Conversation.thread, Message.reply_refs)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Conversation.platform == "discord", Message.role == "assistant")
        )
        async with self.runtime.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {str(thread): list(refs or []) for thread, refs in rows}

    async def traces(self) -> list[Trace]:
        requests = _requests_by_question(self.gw)
        budgets = self.adapter.hub.budgets
        edit_rule = self.fd.limits.message_edit
        refs = await self._refs_by_question()
        out = []
        for i, (at, q) in sorted(self.asked.items()):
            thread = self.fd.messages[q.id].thread_id
            where = thread or q.channel_id
            if thread:
                msgs = [m for m in self.fd.bot_messages(where) if not m.ephemeral]
            else:
                ids = [int(ref.partition(":")[2]) for ref in refs.get(str(q.id), [])]
                msgs = [self.fd.messages[mid] for mid in ids if mid in self.fd.messages]
            req = requests.get(i)
            platform = [Limit("platform:discord:global", self.fd.limits.global_per_second or 50, 1.0)]
            if edit_rule is not None:
                platform.append(Limit(f"platform:discord:{where}:edit", edit_rule.limit, edit_rule.per))
            out.append(
                Trace(
                    label=f"discord {i}",
                    asked_at=at,
                    tokens=list(req.timeline) if req else [],
                    messages=[[(s.t, s.content) for s in m.history] for m in msgs],
                    declared=_limits(budgets.edit_budgets(where)),
                    platform=platform,
                    request_at=req.t_received if req else None,
                    post_keys=frozenset(b.key for b in budgets.post_budgets(where)),
                )
            )
        return out


@asynccontextmanager
async def discord_stack(
    tmp: Path,
    work: Workload,
    *,
    channels: int = 1,
    threads: bool = True,
    env: dict[str, str] | None = None,
) -> AsyncIterator[DiscordStack]:
    """``channels`` text channels in one guild. A mention opens a thread, as in production, unless
    ``threads`` is off: then Parley may not open one and answers in the channel itself, where all
    replies share the channel's rate limits. ``env``: settings besides the fakes' own."""
    async with discord_fakes(work.reply()) as (gw, fd, waits):
        guild = fd.create_guild("Bench")
        deny = [] if threads else [Overwrite(guild.id, 0, deny=Perm.CREATE_PUBLIC_THREADS)]
        made = [fd.create_channel(guild, f"room-{i}", overwrites=deny) for i in range(channels)]
        alice = fd.create_user("alice", global_name="Alice")
        fd.add_member(guild, alice)
        runtime = await open_runtime(parley_env(gw, tmp, discord_env(fd), {**NO_BURSTS, **(env or {})}), tmp)
        adapter = DiscordAdapter(runtime.adapter_context(), guild_ready_timeout=0.1)
        try:
            await adapter.start()
            yield DiscordStack(fd, gw, runtime, adapter, guild, made, alice, waits)
        finally:
            await shut_down(runtime, adapter.stop)


# -- Slack --------------------------------------------------------------------------------------


@dataclass
class SlackStack:
    fs: FakeSlack
    gw: FakeGateway
    runtime: Runtime
    adapter: SlackAdapter
    team: str
    asked: dict[int, tuple[float, str, str]] = field(default_factory=dict)  # i -> (t, channel, ts)

    @property
    def rate_limited(self) -> int:
        return self.fs.rate_limited_count.total()

    async def ask(self, i: int, channel: str) -> None:
        event = self.fs.app_mention(question(i), channel=channel)
        at = time.monotonic()
        delivery = await self.fs.deliver_event(event, mode="socket")
        self.asked[i] = (at, channel, str(event["ts"]))
        await delivery.wait_acked(within=3)

    async def settle(self, n: int, within: float) -> None:
        ws = self.adapter.ws
        await wait_until(lambda: ws.stats.answered >= n, within, f"{n} Slack answers")
        await asyncio.sleep(0.05)
        await wait_until(
            lambda: ws.busy == 0 and self.runtime.pacer.active == 0 and self.runtime.service.in_flight == 0,
            within,
            "an idle adapter",
        )

    async def traces(self) -> list[Trace]:
        requests = _requests_by_question(self.gw)
        ws = self.adapter.ws
        native = ws.streaming.enabled
        update = self.fs.limits.budgets.get("chat.update")
        append = self.fs.limits.budgets.get("chat.appendStream")
        platform = []
        if native and append is not None:
            platform.append(Limit("platform:slack:appendStream", append.calls, append.per_seconds))
        elif update is not None:
            platform.append(Limit("platform:slack:chat.update", update.calls, update.per_seconds))
        out = []
        for i, (at, channel, ts) in sorted(self.asked.items()):
            msgs = self.fs.bot_messages(channel, ts)
            req = requests.get(i)
            out.append(
                Trace(
                    label=f"slack {i}",
                    asked_at=at,
                    tokens=list(req.timeline) if req else [],
                    messages=[[(s.t, s.visible) for s in self.fs.timeline(channel, m.ts)] for m in msgs],
                    declared=_limits(ws.budgets.edit_budgets(self.team, streaming=native)),
                    platform=platform,
                    request_at=req.t_received if req else None,
                    post_keys=frozenset(
                        b.key for b in ws.budgets.post_budgets(self.team, channel, streaming=native)
                    ),
                )
            )
        return out


@asynccontextmanager
async def slack_stack(tmp: Path, work: Workload, *, native: bool = False) -> AsyncIterator[SlackStack]:
    async with FakeGateway(default=work.reply()) as gw, FakeSlack() as fs:
        streaming = {"PARLEY_SLACK_NATIVE_STREAMING": "true" if native else "false", **NO_BURSTS}
        runtime = await open_runtime(parley_env(gw, tmp, slack_env(fs, "socket"), streaming), tmp)
        adapter = SlackAdapter(runtime.adapter_context())

        async def stop_adapter() -> None:
            # The numbers are taken by now: a socket that fails to close must not lose them.
            with contextlib.suppress(Exception):
                await adapter.stop()

        try:
            await start_socket_mode(adapter, fs)
            team = (await adapter.ws.identity()).team_id
            yield SlackStack(fs, gw, runtime, adapter, team)
        finally:
            await shut_down(runtime, stop_adapter)
