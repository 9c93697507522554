"""One turn at a time per conversation: a message that arrives mid-reply waits, it is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


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
