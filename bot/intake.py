"""The step before the queue: bursts of messages merged into one turn, "stop" said in words, and
what became of every message received.

People type in bursts ("hey" / "quick question" / the real question). A person's messages in one
conversation that arrive within ``PARLEY_MERGE_WINDOW`` seconds of each other, before the model
is called, are one :class:`Burst`, answered as one turn: the last message is the question, the
earlier ones go before it as context (stored in history, marked merged into it), and the reply
is written where the first one asked for it. The window is counted from the newest message of
the burst; a turn that waits behind another turn of its conversation waits no longer for it (the
queue has been waiting anyway).

A message that only says "stop" (:func:`says_stop`) while its author's reply streams stops that
reply and gets no answer of its own; any other message arriving meanwhile is answered after the
reply, in order.

Every message received ends as one :class:`Fate` (or, in the adapters, a named
:class:`~bot.routing.Reason` for not answering), counted by an :class:`IntakeObserver`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.store import Store, StoreError
from bot.types import ContextMessage, IncomingMessage, ReplyResult

log = logging.getLogger("parley.conversation")

# "stop", "stop it", "please stop", "stop now!" … and nothing else: a question that mentions
# stopping is a question.
_STOP = re.compile(r"(?:please\s+)?stop(?:\s+(?:it|that|now|please))*[\s.!]*", re.IGNORECASE)


class Fate(enum.StrEnum):
    """What became of a message that reached the conversation service."""

    ANSWERED = "answered"  # a turn answered it (an answer, a note, or an honest error)
    MERGED = "merged"  # answered together with later messages of its burst
    REFUSED = "refused"  # over a limit, or the database was down: a short reply says so
    STOPPED_REPLY = "stopped_reply"  # "stop": the live reply was stopped, no answer of its own
    DUPLICATE = "duplicate"  # a second delivery of a message already taken
    LOOP_BREAKER = "loop_breaker"  # an allowed bot answered too often in a minute: dropped
    SHUTTING_DOWN = "shutting_down"  # arrived after shutdown began: left for a redelivery
    FAILED = "failed"  # a bug outside the reply (logged with its traceback)


class IntakeObserver(Protocol):
    """Told what became of each message (metrics implement it); ``outcome`` is a :class:`Fate`
    or a :class:`~bot.routing.Reason` value."""

    def message_seen(self, platform: str, outcome: str) -> None: ...


def says_stop(text: str) -> bool:
    """Whether ``text`` only asks to stop ("stop", "stop it", "please stop!")."""
    return _STOP.fullmatch(text.strip()) is not None


@dataclass(eq=False)
class Burst:
    """One person's messages in one conversation, answered as one turn."""

    messages: list[IncomingMessage]
    last_arrival: float  # monotonic
    open: bool = True  # closed once the turn starts: later messages start a burst of their own
    result: asyncio.Future[ReplyResult | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def leader(self) -> IncomingMessage:
        return self.messages[0]

    @property
    def merged(self) -> Sequence[IncomingMessage]:
        """The messages answered together with the last one."""
        return self.messages[:-1]

    def turn_message(self) -> IncomingMessage:
        """The message the turn answers: the last one asks, the earlier ones come before it as
        context, and the reply goes where the first one was to be answered."""
        first, last = self.messages[0], self.messages[-1]
        if first is last:
            return first
        earlier = [
            ContextMessage(m.author, m.text, attachments=m.attachments, platform_id=m.platform_message_id)
            for m in self.merged
        ]
        return replace(
            last,
            key=first.key,
            surface=first.surface,
            context=[*first.context, *earlier],
            model=first.model or last.model,
        )

    def settle(self, result: ReplyResult | None) -> None:
        """The turn is over: the merged messages' handlers return ``result`` too."""
        if not self.result.done():
            self.result.set_result(result)


class Bursts:
    """The open bursts, by conversation and author."""

    def __init__(self, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._open: dict[Hashable, Burst] = {}

    def join(self, msg: IncomingMessage) -> Burst | None:
        """Add ``msg`` to its author's open burst in its conversation, if one is still within the
        window; None when it starts a burst of its own."""
        burst = self._open.get(_key(msg))
        now = self._clock()
        if burst is None or not burst.open or now - burst.last_arrival > self.window:
            return None
        burst.messages.append(msg)
        burst.last_arrival = now
        return burst

    def start(self, msg: IncomingMessage) -> Burst:
        burst = Burst([msg], self._clock())
        if self.window > 0:
            self._open[_key(msg)] = burst
        return burst

    async def gather(self, burst: Burst) -> IncomingMessage:
        """Wait until no message of the burst came for a window (not at all if it has waited
        that long already), close it and return the message its turn answers."""
        while burst.open and self.window > 0:
            left = burst.last_arrival + self.window - self._clock()
            if left <= 0:
                break
            await asyncio.sleep(left)
        self.close(burst)
        return burst.turn_message()

    def close(self, burst: Burst) -> None:
        burst.open = False
        key = _key(burst.leader)
        if self._open.get(key) is burst:
            del self._open[key]


def _key(msg: IncomingMessage) -> Hashable:
    return (msg.key, msg.author.id)


async def record_merged(store: Store, burst: Burst, result: ReplyResult | None, owner: str) -> None:
    """What became of a burst's merged messages, in the store: their events are done (or, when
    the turn showed nothing, free again for a redelivery) and their rows marked merged."""
    merged = burst.merged
    if not merged:
        return
    shown = result is not None and bool(result.shown)
    try:
        for m in merged:
            if shown:
                await store.events.done(m.key.platform, m.event_id)
            else:
                await store.events.release(m.key.platform, m.event_id, owner)
        conversation = await store.conversations.find(burst.leader.key)
        if conversation is not None:
            into = burst.messages[-1].platform_message_id
            await store.history.mark_merged(conversation.id, [m.platform_message_id for m in merged], into)
    except StoreError as exc:
        log.warning("could not record the messages merged in %s: %s", burst.leader.key, exc)
