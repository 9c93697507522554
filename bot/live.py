"""The replies this process is writing now: what Stop, "whose reply is this", shutdown and crash
recovery look at. A reply counts from the moment its turn is prepared until its row is final,
its final edit and store write included."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from bot.render import ReplyStream
from bot.types import ConversationKey


@dataclass(slots=True, eq=False)
class LiveReply:
    key: ConversationKey
    author_id: str  # whose question it answers
    stream: ReplyStream
    reply_id: int | None = None  # once its row is stored
    task: asyncio.Task[object] | None = None  # the generation, when the model is asked
    interrupted: bool = False
    timed_out: bool = False

    @property
    def generating(self) -> bool:
        return self.task is not None and not self.task.done()

    def stop(self) -> bool:
        """A user pressed Stop: end the generation; what was written stays. False if none runs."""
        if not self.generating:
            return False
        self._cancel()
        return True

    def interrupt(self) -> None:
        """Shutdown: end the generation; the reply says it was interrupted."""
        if self.generating:
            self.interrupted = True
            self._cancel()

    def time_out(self) -> None:
        """Past ``PARLEY_REPLY_TIMEOUT``: end the generation; the reply says it was too slow."""
        self.timed_out = True
        self._cancel()

    async def cancel(self) -> None:
        """End a generation that must not go on, and wait until it has let go of its stream."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait([self.task])

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class LiveReplies:
    """Every :class:`LiveReply` of this process, by turn (a reply runs before its row exists)."""

    def __init__(self) -> None:
        self._by_turn: dict[int, LiveReply] = {}
        self._turns = itertools.count()

    def __len__(self) -> int:
        return len(self._by_turn)

    def __iter__(self) -> Iterator[LiveReply]:
        return iter(list(self._by_turn.values()))

    def add(self, reply: LiveReply) -> int:
        """Count ``reply`` as live; returns the number to :meth:`remove` it by."""
        turn = next(self._turns)
        self._by_turn[turn] = reply
        return turn

    def remove(self, turn: int) -> None:
        del self._by_turn[turn]

    def writing(self, ref: str) -> LiveReply | None:
        """The live reply that is writing message ``ref``."""
        for reply in self._by_turn.values():
            if ref in reply.stream.refs:
                return reply
        return None

    def reply_ids(self) -> set[int]:
        """The stored rows of live replies (recovery leaves them alone)."""
        return {r.reply_id for r in self._by_turn.values() if r.reply_id is not None}
