"""Admission: whether a turn may start now, or gets a short "busy" reply (or, from a bot, none).

Counted in this process: with several instances each enforces its own share. A turn counts as
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
        if msg.author.is_bot and s.parley_bot_turns_per_minute:
            # Per conversation: a bot may be allowed in many threads, a loop lives in one.
            if self._bots.count(key) >= s.parley_bot_turns_per_minute:
                return Refusal.BOT_LOOP
        if s.parley_user_rate and self._rates.count(user) >= s.parley_user_rate:
            return Refusal.USER_RATE
        limit = s.parley_max_concurrent_per_user
        if limit and self._by_user.get(user, 0) >= limit:
            return Refusal.USER_BUSY
        limit = s.parley_max_concurrent_per_channel
        if limit and self._by_channel.get(channel, 0) >= limit:
            return Refusal.CHANNEL_BUSY
        if s.parley_max_concurrent_global and self.running >= s.parley_max_concurrent_global:
            return Refusal.GLOBAL_BUSY
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
