"""PostgreSQL's LISTEN on a connection of its own: how an instance hears, within milliseconds,
that a turn of a conversation it waits on has ended in another instance, or that someone
pressed Stop on a reply it writes.

Only with the asyncpg driver (the image's); anywhere else :class:`Listener` stays silent and
the waiters fall back on polling. Notifications are a shortcut, never the only way: one lost
while the connection was down costs at most a poll interval.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("parley.store")


class Listener:
    """``LISTEN`` on each channel of ``handlers`` for as long as it is open; the channel's
    handler gets each NOTIFY's payload."""

    def __init__(self, engine: AsyncEngine, handlers: Mapping[str, Callable[[str], None]]) -> None:
        self._engine = engine
        self._handlers = dict(handlers)
        self._conn: AsyncConnection | None = None
        self._driver: Any = None

    @property
    def listening(self) -> bool:
        driver = self._driver
        return driver is not None and not driver.is_closed()

    async def ensure(self) -> bool:
        """Listen if not listening yet (or any more, after the connection dropped); whether it does."""
        if self.listening:
            return True
        await self.aclose()
        if self._engine.dialect.name != "postgresql" or self._engine.dialect.driver != "asyncpg":
            return False
        try:
            conn = await self._engine.connect()
        except Exception as exc:
            log.warning("cannot listen for turn notifications: %s", type(exc).__name__)
            return False
        try:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            for channel in self._handlers:
                await driver.add_listener(channel, self._deliver)
        except Exception as exc:
            log.warning("cannot listen for turn notifications: %s", type(exc).__name__)
            await conn.close()
            return False
        self._conn, self._driver = conn, driver
        return True

    def _deliver(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            handler(payload)
        except Exception:
            log.exception("the handler of a %s notification failed", channel)

    async def aclose(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        if driver is not None and not driver.is_closed():
            for channel in self._handlers:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(channel, self._deliver)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
