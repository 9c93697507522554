"""Admission: whether a turn may start now, or gets a short "busy" reply (or, from a bot, none).

Counted in this process on SQLite; on a shared database (several instances) over every
instance's turns, in the transaction that claims and queues the turn (:func:`shared_rules`, read
by ``store.turns.claim``), so the limits hold for the service as a whole. A turn counts as
running from admission until its reply is stored, waiting in its conversation's queue included.

- ``PARLEY_USER_RATE``: turns a user may start per minute (sliding window);
- ``PARLEY_MAX_CONCURRENT_PER_USER`` / ``_PER_CHANNEL`` / ``_GLOBAL``: turns running at once;
- ``PARLEY_BOT_TURNS_PER_MINUTE``: answers to (allow-listed) bots per conversation per minute.
  Two bots that answer each other would otherwise go on for ever; a turn over this limit is
  dropped silently, since telling a bot "busy" is one more message for it to answer.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from bot.settings import Settings
from bot.store.leases import Decide, TurnCounts
from bot.types import IncomingMessage

WINDOW = 60.0
_SWEEP_EVERY = 256  # admissions between sweeps of idle sliding windows


class Refusal(enum.StrEnum):
    USER_RATE = "user_rate"
    USER_BUSY = "user_busy"
    CHANNEL_BUSY = "channel_busy"
    GLOBAL_BUSY = "global_busy"
    BOT_LOOP = "bot_loop"  # silent


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted turn; hand it back to :meth:`Admission.release` when the turn is over."""

    user: Hashable
    channel: Hashable


class _Windows:
    """Sliding one-minute windows of event times, by key; idle keys are dropped now and then."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._hits: dict[Hashable, deque[float]] = {}
        self._since_sweep = 0

    def count(self, key: Hashable) -> int:
        hits = self._hits.get(key)
        if hits is None:
            return 0
        edge = self._clock() - WINDOW
        while hits and hits[0] <= edge:
            hits.popleft()
        return len(hits)

    def add(self, key: Hashable) -> None:
        self._hits.setdefault(key, deque()).append(self._clock())
        self._since_sweep += 1
        if self._since_sweep >= _SWEEP_EVERY:
            self._since_sweep = 0
            edge = self._clock() - WINDOW
            for idle in [k for k, hits in self._hits.items() if not hits or hits[-1] <= edge]:
                del self._hits[idle]

    def __len__(self) -> int:
        return len(self._hits)


class Admission:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._rates = _Windows(clock)
        self._bots = _Windows(clock)
        self._by_user: dict[Hashable, int] = {}
        self._by_channel: dict[Hashable, int] = {}
        self.running = 0

    def admit(self, msg: IncomingMessage) -> Ticket | Refusal:
        s = self.settings
        key = msg.key
        user = (key.platform, msg.author.id)
        channel = (key.platform, key.workspace, key.channel)
        counts = TurnCounts(
            user_open=self._by_user.get(user, 0),
            user_last_minute=self._rates.count(user) if s.parley_user_rate else 0,
            channel_open=self._by_channel.get(channel, 0),
            all_open=self.running,
            bot_last_minute=self._bots.count(key) if msg.author.is_bot else 0,
        )
        refusal = decide(s, counts, is_bot=msg.author.is_bot)
        if refusal is not None:
            return refusal
        if msg.author.is_bot:
            self._bots.add(key)
        if s.parley_user_rate:
            self._rates.add(user)
        self._by_user[user] = self._by_user.get(user, 0) + 1
        self._by_channel[channel] = self._by_channel.get(channel, 0) + 1
        self.running += 1
        return Ticket(user, channel)

    def release(self, ticket: Ticket) -> None:
        self.running -= 1
        for counts, key in ((self._by_user, ticket.user), (self._by_channel, ticket.channel)):
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

    @property
    def tracked(self) -> int:
        """Keys held in memory (for tests: bounded by recent activity, not by history)."""
        return len(self._rates) + len(self._bots) + len(self._by_user) + len(self._by_channel)


def decide(s: Settings, counts: TurnCounts, *, is_bot: bool) -> Refusal | None:
    """The limits, in the order they are checked; None admits. ``counts`` are this process's
    (SQLite) or every instance's (a shared database)."""
    # Per conversation: a bot may be allowed in many threads, a loop lives in one.
    if is_bot and s.parley_bot_turns_per_minute and counts.bot_last_minute >= s.parley_bot_turns_per_minute:
        return Refusal.BOT_LOOP
    if s.parley_user_rate and counts.user_last_minute >= s.parley_user_rate:
        return Refusal.USER_RATE
    if s.parley_max_concurrent_per_user and counts.user_open >= s.parley_max_concurrent_per_user:
        return Refusal.USER_BUSY
    if s.parley_max_concurrent_per_channel and counts.channel_open >= s.parley_max_concurrent_per_channel:
        return Refusal.CHANNEL_BUSY
    if s.parley_max_concurrent_global and counts.all_open >= s.parley_max_concurrent_global:
        return Refusal.GLOBAL_BUSY
    return None


def shared_rules(s: Settings, msg: IncomingMessage) -> Decide | None:
    """:func:`decide` for a turn on a shared database, over every instance's counts; None when no
    limit applies to ``msg`` (the default for people), so that nothing is counted or locked."""
    is_bot = msg.author.is_bot
    human_limits = (
        s.parley_user_rate,
        s.parley_max_concurrent_per_user,
        s.parley_max_concurrent_per_channel,
        s.parley_max_concurrent_global,
    )
    if not any(human_limits) and not (is_bot and s.parley_bot_turns_per_minute):
        return None

    def rule(counts: TurnCounts) -> str | None:
        refusal = decide(s, counts, is_bot=is_bot)
        return None if refusal is None else refusal.value

    return rule
