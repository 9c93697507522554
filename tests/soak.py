"""A bounded soak: many conversations over both adapters with ~10% injected faults.

::

    python -m tests.soak --minutes 3            # the full run (loopback only, stops by itself)
    python -m tests.soak --seconds 20 --rate 4  # a short one

One process runs what ``parley run`` runs (one Runtime, the Slack adapter in Socket Mode and the
Discord adapter, both against loopback fakes, and the fake gateway). Conversations arrive at
``--rate`` per second for the duration, alternating Slack and Discord; about a fifth get a
follow-up in their thread. About ``--faults`` of the turns meet a gateway fault (429 or 5xx before
the first token, retried; a dropped or stalled stream or an error event mid-answer, kept with a
note), and the platforms misbehave too: Slack 5xx and 429s on posts and edits, redelivered
events, Socket Mode dropped, Discord 5xx on edits and gateway reconnects (op 7).

When the arrivals stop and every reply has settled, each turn is checked against what the user
sees and what the store holds, and the report counts:

- ``lost``: a turn with no finished reply;
- ``duplicates``: more replies than turns in a conversation (or two model calls for one turn);
- ``hanging``: a message still showing "…" or its Stop button;
- ``wrong``: a reply whose visible ending or stored outcome is not what its fault calls for;
- memory: RSS after warm-up, at the end, the peak, and Python objects alive before and after;
  with ``--trace-memory``, the growth split by whose code allocated it (Parley, fakes, libraries).

Slack's workspace-wide ``chat.update`` budget (about 50 a minute) would make a soak of hundreds of
Slack conversations mostly a wait; the fake and Parley's declared budget are raised together (a
larger workspace), so pacing is exercised without dominating the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from adapters.discord.client import DiscordAdapter
from adapters.discord.pacing import DiscordBudgets
from adapters.slack.app import SlackAdapter
from adapters.slack.surface import SlackBudgets
from bot.notes import INTERRUPTED
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.types import ConversationKey, Outcome
from tests.discord_harness import is_live as discord_live
from tests.fakes.discord import FakeDiscord, Limits, RateLimitRule
from tests.fakes.gateway import FakeGateway, RecordedRequest, Reply
from tests.fakes.slack_api import DEFAULT_CHANNEL, OTHER_CHANNEL, FakeSlack
from tests.fakes.slack_api import Budget as SlackBudget
from tests.slack_harness import is_live as slack_live

log = logging.getLogger("soak")

CUT = "_(The answer was cut off: the model's stream ended early.)_"
BROKE = "_(The answer broke off: The model reported an error while answering: upstream stream failed.)_"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
# Gateway faults, and what the user must see in the end: the whole answer, or part and a note.
GATEWAY_FAULTS = {
    "429": "complete",
    "503": "complete",
    "drop": "truncated",
    "stall": "truncated",
    "error": "error",
}
PLATFORM_FAULTS = (
    "slack 5xx on update",
    "slack 429 on post",
    "slack 5xx on post",
    "slack socket dropped",
    "discord 5xx on edit",
    "discord op 7 reconnect",
)
EXPECTED = {"complete": Outcome.COMPLETE, "truncated": Outcome.TRUNCATED, "error": Outcome.ERROR}
_TURN = re.compile(r"\bturn-(\d+)\b")


def answer_for(turn: int) -> str:
    return " ".join(f"t{turn}w{i}" for i in range(24))


@dataclass
class Turn:
    id: int
    platform: str
    fault: str | None  # a gateway fault, or None
    follow_up: bool = False
    where: Any = None  # Slack: (channel, thread ts); Discord: the question message
    duplicate: bool = False


@dataclass
class Report:
    seconds: float = 0.0
    conversations: int = 0
    turns: int = 0
    by_platform: Counter[str] = field(default_factory=Counter)
    gateway_faults: Counter[str] = field(default_factory=Counter)
    platform_faults: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicates: int = 0
    hanging: int = 0
    wrong: int = 0
    problems: list[str] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_peak_mb: float = 0.0
    objects_start: int = 0
    objects_end: int = 0
    left_in_memory: dict[str, int] = field(default_factory=dict)
    # Python memory still allocated at the end that was not at the start, by whose code allocated
    # it: Parley's own (bot/, adapters/), the fakes' records of everything (tests/), libraries.
    growth_by_owner_kb: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.hanging or self.wrong)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "problems"}
        out["problems"] = self.problems[:20]
        out["rss_growth_mb"] = round(self.rss_end_mb - self.rss_start_mb, 1)
        out["ok"] = self.ok
        return out


class Soak:
    def __init__(
        self, tmp: Path, *, seconds: float, rate: float, faults: float, seed: int, trace_memory: bool = False
    ) -> None:
        self.tmp = tmp
        self.trace_memory = trace_memory
        self.seconds = seconds
        self.rate = rate
        self.fault_rate = faults
        self.rng = random.Random(seed)
        self.report = Report()
        self.turns: list[Turn] = []
        self._requests: Counter[int] = Counter()  # gateway requests per turn
        self._process = psutil.Process()

    # -- the world ------------------------------------------------------------------------------

    def gateway_reply(self, request: RecordedRequest) -> Reply:
        # The question is the last one in the user's turn (after a failed reply the prompt
        # carries the unanswered question before it).
        found = _TURN.findall(request.last_user_text)
        turn = int(found[-1]) if found else -1
        self._requests[turn] += 1
        fault = self.turns[turn].fault if 0 <= turn < len(self.turns) else None
        text = answer_for(turn)
        first = self._requests[turn] == 1
        if fault == "429" and first:
            return Reply.http_error(429, "slow down", retry_after=0.2)
        if fault == "503" and first:
            return Reply.http_error(503, "no upstream")
        if fault == "drop":
            return Reply(text=text, drop_after=6, delay=0.02)
        if fault == "stall":
            return Reply(text=text, stall_after=6, delay=0.02)
        if fault == "error":
            return Reply(text=text, error_after=6, delay=0.02)
        return Reply(text=text, delay=0.02)

    async def run(self) -> Report:
        async with FakeGateway(default=self.gateway_reply) as gw, FakeSlack(ack_timeout=1.0) as fs:
            limits = Limits(message_create=RateLimitRule(5, 1.0), message_edit=RateLimitRule(5, 1.0))
            async with FakeDiscord(heartbeat_interval_ms=1000, limits=limits) as fd:
                self.gw, self.fs, self.fd = gw, fs, fd
                await self._world()
                try:
                    await self._soak()
                finally:
                    await self._stop()
        return self.report

    async def _world(self) -> None:
        fs, fd, gw = self.fs, self.fd, self.gw
        fs.limits.budgets["chat.update"] = SlackBudget(600, 60.0)
        fs.limits.budgets["chat.postMessage"] = SlackBudget(30, 3.0)
        guild = fd.create_guild("Soak")
        self.discord_channels = [fd.create_channel(guild, f"room-{i}") for i in range(4)]
        self.alice = fd.create_user("alice")
        fd.add_member(guild, self.alice)
        self.slack_channels = [DEFAULT_CHANNEL, OTHER_CHANNEL]
        env = {
            "APICORE_API_KEY": gw.api_key or "",
            "APICORE_BASE_URL": gw.url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp / 'parley.db'}",
            "SLACK_BOT_TOKEN": fs.bot_token,
            "SLACK_APP_TOKEN": fs.app_token,
            "SLACK_API_URL": fs.api_url,
            "DISCORD_BOT_TOKEN": fd.token,
            "DISCORD_API_URL": fd.api_url,
            "PARLEY_MAX_RETRIES": "2",
            "PARLEY_IDLE_TIMEOUT": "1",
            "PARLEY_FIRST_TOKEN_TIMEOUT": "10",
        }
        self.runtime = await Runtime.create(load_settings(env, cwd=self.tmp))
        slack_budgets = SlackBudgets(post=(27, 3.0), update=(540, 60.0))
        self.slack = SlackAdapter(self.runtime.adapter_context(), budgets=slack_budgets, ping_interval=1.0)
        discord_budgets = DiscordBudgets(create=(4, 1.0), edit=(4, 1.0))
        self.discord = DiscordAdapter(
            self.runtime.adapter_context(), budgets=discord_budgets, guild_ready_timeout=0.1
        )
        await self.slack.start()
        await self.discord.start()

    async def _stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.slack.stop_intake()
            await self.discord.stop_intake()
            await self.runtime.service.drain(10)
        for adapter in (self.slack, self.discord):
            with contextlib.suppress(Exception):
                await adapter.stop()
        await self.runtime.aclose()

    # -- the run --------------------------------------------------------------------------------

    async def _soak(self) -> None:
        report = self.report
        await self._warm_up()
        gc.collect()
        report.rss_start_mb = self._rss()
        report.objects_start = len(gc.get_objects())
        before = None
        if self.trace_memory:
            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
        sampler = asyncio.create_task(self._sample_memory())
        chaos = asyncio.create_task(self._platform_chaos())
        started = time.monotonic()
        sends: list[asyncio.Task[None]] = []
        try:
            while time.monotonic() - started < self.seconds:
                sends.append(asyncio.create_task(self._conversation()))
                await asyncio.sleep(self.rng.expovariate(self.rate))
            await asyncio.gather(*sends)
        finally:
            chaos.cancel()
            await asyncio.gather(chaos, return_exceptions=True)
        await self._settle(within=120)
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        report.seconds = round(time.monotonic() - started, 1)
        await self._check()
        gc.collect()
        if before is not None:
            report.growth_by_owner_kb = _growth_by_owner(before, tracemalloc.take_snapshot())
            tracemalloc.stop()
        report.rss_end_mb = self._rss()
        report.rss_peak_mb = max(report.rss_peak_mb, report.rss_end_mb)
        report.objects_end = len(gc.get_objects())
        service = self.runtime.service
        report.left_in_memory = {
            "replies_in_flight": service.in_flight,
            "turns_waiting": service.waiting,
            "renderer_replies": self.runtime.pacer.active,
            "admission_keys": service.admission.tracked,
            "slack_tasks": self.slack.ws.busy,
            "discord_tasks": self.discord.hub.busy,
        }

    async def _warm_up(self) -> None:
        """A few turns before measuring memory: imports, caches and pools are filled by then."""
        for _ in range(4):
            await self._conversation(allow_faults=False)
        await self._settle(within=60)

    def _new_turn(self, platform: str, allow_faults: bool) -> Turn:
        fault = None
        if allow_faults and self.rng.random() < self.fault_rate:
            fault = self.rng.choice(list(GATEWAY_FAULTS))
            self.report.gateway_faults[fault] += 1
        turn = Turn(len(self.turns), platform, fault)
        self.turns.append(turn)
        self.report.turns += 1
        self.report.by_platform[platform] += 1
        return turn

    async def _conversation(self, allow_faults: bool = True) -> None:
        platform = "slack" if len(self.turns) % 2 == 0 else "discord"
        self.report.conversations += 1
        first = self._new_turn(platform, allow_faults)
        if platform == "slack":
            await self._slack_turn(first, None)
        else:
            await self._discord_turn(first, None)
        if self.rng.random() < 0.2:
            await self._wait_turn(first, within=30)
            follow = self._new_turn(platform, allow_faults)
            follow.follow_up = True
            if platform == "slack":
                await self._slack_turn(follow, first.where)
            else:
                await self._discord_turn(follow, first)

    async def _slack_turn(self, turn: Turn, thread: tuple[str, str] | None) -> None:
        """A mention in a channel, or (``thread``: its channel and ts) a follow-up in its thread."""
        fs = self.fs
        text = f"question turn-{turn.id}"
        if thread is None:
            channel = self.rng.choice(self.slack_channels)
            event = fs.app_mention(text, channel=channel)
            turn.where = (channel, event["ts"])
        else:
            event = fs.channel_message(text, channel=thread[0], thread_ts=thread[1])
            turn.where = thread
        payload = fs.event_callback(event)
        await fs.deliver_event(payload, mode="socket")
        if self.rng.random() < self.fault_rate / 2:
            turn.duplicate = True
            self.report.platform_faults["slack redelivery"] += 1
            await asyncio.sleep(self.rng.uniform(0, 0.5))
            await fs.deliver_event(payload, mode="socket")

    async def _discord_turn(self, turn: Turn, first: Turn | None) -> None:
        fd = self.fd
        text = f"question turn-{turn.id}"
        if first is None:
            channel = self.rng.choice(self.discord_channels)
            turn.where = await fd.user_says(channel, self.alice, f"{fd.bot.mention} {text}")
        else:
            thread = fd.messages[first.where.id].thread_id
            assert thread is not None
            turn.where = await fd.user_says(thread, self.alice, text)

    async def _platform_chaos(self) -> None:
        """Platform faults at random moments while the turns arrive."""
        fs, fd, report = self.fs, self.fd, self.report
        every = max(1.0, 2.0 / max(self.rate * self.fault_rate, 0.1))
        while True:
            await asyncio.sleep(self.rng.uniform(0.5, every))
            kind = self.rng.choice(PLATFORM_FAULTS)
            report.platform_faults[kind] += 1
            if kind == "slack 5xx on update":
                fs.fail("chat.update", status=500)
            elif kind == "slack 429 on post":
                fs.fail("chat.postMessage", status=429, error="ratelimited", retry_after=1)
            elif kind == "slack 5xx on post":
                fs.fail("chat.postMessage", status=503, error="service_unavailable")
            elif kind == "slack socket dropped":
                await fs.drop_sockets(abrupt=self.rng.random() < 0.5)
            elif kind == "discord 5xx on edit":
                fd.fail(EDIT, status=502)
            else:
                await fd.reconnect(wait=False)

    # -- settling and checking ------------------------------------------------------------------

    def _slack_replies(self, turn: Turn) -> list[Any]:
        channel, thread_ts = turn.where
        return [m for m in self.fs.bot_messages(channel) if m.thread_ts == thread_ts and not m.deleted]

    def _discord_replies(self, turn: Turn) -> list[Any]:
        first = turn if not turn.follow_up else self._first_of(turn)
        thread = self.fd.messages[first.where.id].thread_id
        if thread is None:
            return []
        return [m for m in self.fd.bot_messages(thread) if not m.ephemeral]

    def _first_of(self, turn: Turn) -> Turn:
        for other in reversed(self.turns[: turn.id]):
            if other.platform == turn.platform and not other.follow_up and self._same(other, turn):
                return other
        return turn

    def _same(self, first: Turn, follow: Turn) -> bool:
        if follow.platform == "slack":
            return bool(first.where[1] == follow.where[1])
        thread = self.fd.messages[first.where.id].thread_id
        return thread is not None and follow.where.channel_id == thread

    def _replies(self, turn: Turn) -> list[Any]:
        return self._slack_replies(turn) if turn.platform == "slack" else self._discord_replies(turn)

    async def _wait_turn(self, turn: Turn, within: float) -> None:
        end = time.monotonic() + within
        while time.monotonic() < end:
            if turn.where is not None and self._replies(turn):
                return
            await asyncio.sleep(0.05)

    async def _settle(self, within: float) -> None:
        end = time.monotonic() + within
        service, pacer = self.runtime.service, self.runtime.pacer
        while time.monotonic() < end:
            busy = service.in_flight or service.waiting or pacer.active
            busy = busy or self.slack.ws.busy or self.discord.hub.busy
            if not busy and all(d.acked or d.gave_up for d in self.fs.deliveries):
                await asyncio.sleep(0.5)
                if not (service.in_flight or pacer.active or self.slack.ws.busy or self.discord.hub.busy):
                    return
            await asyncio.sleep(0.1)

    def _live(self, turn: Turn, message: Any) -> bool:
        if turn.platform == "slack":
            text = self.fs.visible_text(message.channel, message.ts)
            return slack_live(message) or text.strip() in ("", "…")
        return bool(discord_live(message))

    def _text(self, turn: Turn, message: Any) -> str:
        if turn.platform == "slack":
            return str(self.fs.visible_text(message.channel, message.ts))
        return str(message.content)

    async def _check(self) -> None:
        report = self.report
        conversations: dict[tuple[str, Any], list[Turn]] = {}
        for turn in self.turns:
            first = self._first_of(turn) if turn.follow_up else turn
            conversations.setdefault((turn.platform, first.id), []).append(turn)
        for (platform, first_id), turns in conversations.items():
            replies = self._replies(self.turns[first_id])
            for message in replies:
                if self._live(turns[0], message):
                    report.hanging += 1
                    report.problems.append(f"{platform} turn {first_id}: a message left hanging")
            answered = [t for t in turns if any(f"t{t.id}w0" in self._text(t, m) for m in replies)]
            if len(answered) < len(turns):
                report.lost += len(turns) - len(answered)
                missing = [t.id for t in turns if t not in answered]
                report.problems.append(f"{platform} turns {missing} lost")
            if len(replies) > len(turns):
                report.duplicates += len(replies) - len(turns)
                report.problems.append(f"{platform} turn {first_id}: {len(replies)} replies")
            for turn in turns:
                await self._check_turn(turn, replies)
        for turn in self.turns:
            attempts = self._requests[turn.id]
            allowed = 2 if turn.fault in ("429", "503") else 1
            if attempts > allowed:
                report.duplicates += 1
                report.problems.append(f"turn {turn.id}: {attempts} model calls")

    async def _check_turn(self, turn: Turn, replies: list[Any]) -> None:
        report = self.report
        mine = [self._text(turn, m) for m in replies if f"t{turn.id}w0" in self._text(turn, m)]
        if not mine:
            return
        shown = mine[0]
        expected = GATEWAY_FAULTS.get(turn.fault or "", "complete")
        answer = answer_for(turn.id)
        good = {
            "complete": shown == answer,
            "truncated": shown.endswith(CUT) and answer.startswith(shown[: -len(CUT)].rstrip()),
            "error": shown.endswith(BROKE),
        }[expected]
        if shown.endswith(INTERRUPTED):
            good = False
        stored = await self._stored_outcome(turn)
        if not good or stored is not EXPECTED[expected]:
            report.wrong += 1
            report.problems.append(
                f"{turn.platform} turn {turn.id} ({turn.fault}): shows {shown[-70:]!r}, stored {stored}"
            )

    async def _stored_outcome(self, turn: Turn) -> Outcome | None:
        store = self.runtime.store
        if turn.platform == "slack":
            channel, thread_ts = turn.where
            key = ConversationKey("slack", self.fs.identity.team_id, channel, thread_ts)
        else:
            first = self._first_of(turn) if turn.follow_up else turn
            question = self.fd.messages[first.where.id]
            thread = question.thread_id
            key = ConversationKey("discord", str(question.guild_id), str(question.channel_id), str(thread))
        conversation = await store.conversations.find(key)
        if conversation is None:
            return None
        rows = await store.history.load(conversation.id, 50)
        for index, row in enumerate(rows):
            if row.role == "user" and f"turn-{turn.id}" in row.text:
                after = rows[index + 1 : index + 2]
                return after[0].status if after and after[0].role == "assistant" else None
        return None

    # -- memory ---------------------------------------------------------------------------------

    def _rss(self) -> float:
        return round(self._process.memory_info().rss / 2**20, 1)

    async def _sample_memory(self) -> None:
        while True:
            self.report.rss_peak_mb = max(self.report.rss_peak_mb, self._rss())
            await asyncio.sleep(1.0)


def _growth_by_owner(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> dict[str, int]:
    root = str(Path(__file__).resolve().parents[1])
    owners: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        if name.startswith(f"{root}/bot/") or name.startswith(f"{root}/adapters/"):
            owner = "parley"
        elif name.startswith(f"{root}/tests/"):
            owner = "fakes"
        else:
            owner = "libraries"
        owners[owner] += stat.size_diff
    return {k: round(v / 1024) for k, v in sorted(owners.items())}


async def run_soak(
    seconds: float,
    *,
    rate: float = 2.0,
    faults: float = 0.1,
    seed: int = 8,
    tmp: Path | None = None,
    trace_memory: bool = False,
) -> Report:
    with tempfile.TemporaryDirectory(prefix="parley-soak-") as scratch:
        soak = Soak(
            tmp or Path(scratch),
            seconds=seconds,
            rate=rate,
            faults=faults,
            seed=seed,
            trace_memory=trace_memory,
        )
        return await soak.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="how long turns keep arriving")
    parser.add_argument("--seconds", type=float, default=None, help="the same, in seconds")
    parser.add_argument("--rate", type=float, default=2.0, help="conversations started per second")
    parser.add_argument("--faults", type=float, default=0.1, help="share of turns given a gateway fault")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="split the memory growth by owner: Parley, fakes, libraries (tracemalloc: slower, more RSS)",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes or 3.0)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    report = asyncio.run(
        run_soak(seconds, rate=args.rate, faults=args.faults, seed=args.seed, trace_memory=args.trace_memory)
    )
    print(json.dumps(report.as_dict(), indent=2, default=dict))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
