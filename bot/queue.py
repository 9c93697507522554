"""One turn at a time per conversation: a message that arrives mid-reply waits, it is not lost.

:class:`TurnQueue` keeps the order in this process (SQLite: one process per database, no round
trip); :class:`SharedTurnQueue` keeps it across every instance on a shared database (PostgreSQL),
in the order the events were claimed, whichever instance received them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

from bot.store import StoreError
from bot.store.leases import Lease, TurnEntry, Turns

log = logging.getLogger("parley.conversation")


class TurnQueue:
    """A lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @property
    def waiting(self) -> int:
        """Turns waiting behind another turn of the same conversation."""
        return sum(max(0, users - 1) for _, users in self._locks.values())

    def holds(self, key: Hashable) -> bool:
        """Whether a turn of ``key`` is running or waiting."""
        return key in self._locks

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock_now, users_now = self._locks[key]
            if users_now <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock_now, users_now - 1)


class SharedTurnQueue:
    """One turn at a time per conversation across every instance on a shared database.

    The order and the lease live in the store (``bot/store/leases.py``); this keeps, for the
    turns of this process, who waits on which conversation, so that a notification that a
    conversation's turn ended (from the database's LISTEN, or a turn here) wakes exactly those.
    Waiting turns also look again every ``poll`` seconds, should a notification be lost.
    """

    def __init__(self, turns: Turns, owner: str, *, poll: float = 1.0) -> None:
        self._turns = turns
        self._owner = owner
        self._poll = poll
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._keys: dict[Hashable, int] = {}
        self._open: dict[tuple[str, str], TurnEntry] = {}

    @property
    def waiting(self) -> int:
        """Turns of this process waiting for their conversation's lease."""
        return sum(len(events) for events in self._waiters.values())

    def holds(self, key: Hashable) -> bool:
        """Whether a turn of ``key`` is running or waiting in this process."""
        return key in self._keys

    def known(self) -> list[tuple[str, str]]:
        """(platform, event id) of every turn this process has open."""
        return list(self._open)

    def wake(self, conversation: str) -> None:
        """A turn of ``conversation`` ended somewhere: its waiters here look again."""
        for event in self._waiters.get(conversation, ()):
            event.set()

    @asynccontextmanager
    async def turn(self, key: Hashable, entry: TurnEntry, *, running: bool = False) -> AsyncIterator[bool]:
        """Wait for ``entry``'s turn (``running``: it holds the lease already); yields True while
        it holds the lease, False if the turn is no longer this process's (adopted elsewhere).
        The lease is given up on leaving."""
        self._keys[key] = self._keys.get(key, 0) + 1
        self._open[(entry.platform, entry.event_id)] = entry
        ours: bool | None = None  # None: still waiting
        try:
            ours = True if running else await self._wait(entry)
            yield ours
        finally:
            try:
                # Shielded: a cancelled turn must still let the next one run. One given up while
                # it waited is left to another instance; one no longer ours is not touched.
                if ours:
                    await asyncio.shield(self._finish(entry))
                elif ours is None:
                    await asyncio.shield(self._give_up(entry))
            finally:
                del self._open[(entry.platform, entry.event_id)]
                left = self._keys[key] - 1
                if left:
                    self._keys[key] = left
                else:
                    del self._keys[key]

    async def _wait(self, entry: TurnEntry) -> bool:
        event = asyncio.Event()
        waiters = self._waiters.setdefault(entry.conversation, set())
        waiters.add(event)
        try:
            while True:
                event.clear()  # before asking, so a notification during the question counts
                try:
                    lease = await self._turns.take(entry, self._owner)
                except StoreError as exc:
                    log.warning("waiting for a turn in %s: %s", entry.conversation, exc)
                    lease = Lease.WAIT
                if lease is not Lease.WAIT:
                    return lease is Lease.TAKEN
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self._poll)
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(entry.conversation, None)

    async def _give_up(self, entry: TurnEntry) -> None:
        try:
            await self._turns.hand_back(self._owner, entry)
        except StoreError as exc:
            log.warning("could not leave the turn in %s to another instance: %s", entry.conversation, exc)

    async def _finish(self, entry: TurnEntry) -> None:
        try:
            await self._turns.finish(entry)
        except StoreError as exc:
            # The membership's tidy-up ends it later; the next turn waits until then.
            log.warning("could not end the turn in %s: %s", entry.conversation, exc)
        self.wake(entry.conversation)
