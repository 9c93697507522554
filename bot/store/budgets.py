"""The platforms' rate budgets counted for every instance at once, in PostgreSQL.

:class:`PostgresBudgets` is the shared state behind ``bot/render/shared.py``. Each post or edit
books a slot with one call of ``parley_take_budget`` (migration 0003): under a lock per key it
drops slots that stopped counting, checks every key of the action against its limit and books
them all or none, and answers with when each slot still counting ends. A booked slot counts as
held (sent, no answer yet) until the pacer has the platform's answer; the release then starts
its window on the database's clock. Releases are sent in batches by a background task, off the
reply's path; until one lands, the slot counts as held — never less than the truth.

One connection of its own, in autocommit: a booking is one round trip (about a millisecond on a
local network), and the lock on a key is held for one statement. The rate one PostgreSQL carries
is far above what a platform allows (see docs/deploy.md for figures).

If the database cannot be reached, bookings are granted (and this is logged): replies go on at
this process's own pace, which may meet a 429 that the pacer then honours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.render.budget import Window
from bot.render.shared import GRANTED_NOTHING, Taken, shared_windows
from bot.store.db import describe

log = logging.getLogger("parley.store")

_TAKE = text(
    "SELECT granted, key, ends FROM parley_take_budget(:grant, :owner, :keys, :limits, :spans, :hold)"
)
_RELEASE = text(
    "UPDATE budget_slots SET held = false, ends_at = extract(epoch FROM clock_timestamp()) + span "
    "WHERE grant_id = ANY(:grants)"
)
# A slot sent and never answered (its process died) stops counting after its window and this.
HOLD = 30.0
# A refused action looks again after at least this long, whatever the mirror predicts.
MIN_RETRY = 0.05
# A warning that the shared state is out of reach is logged at most this often.
_WARN_EVERY = 60.0


class PostgresBudgets:
    """:class:`bot.render.shared.SharedBudgets` on PostgreSQL, for one process (``owner``)."""

    def __init__(
        self, engine: AsyncEngine, owner: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._owner = owner
        self._clock = clock
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        # Released here, not yet in the database: their end on this clock, by key.
        self._pending: dict[int, tuple[tuple[str, float], ...]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._warned_at = -_WARN_EVERY
        self.bookings = 0  # calls made, for benchmarks
        self.refusals = 0

    async def take(self, windows: Sequence[Window], *, urgent: bool) -> Taken:
        shared = shared_windows(windows)
        if not shared:
            return GRANTED_NOTHING
        grant = secrets.randbits(62) or 1
        params = {
            "grant": grant,
            "owner": self._owner,
            "keys": [w.key for w in shared],
            "limits": [w.limit(urgent=urgent) for w in shared],
            "spans": [w.span for w in shared],
            "hold": HOLD,
        }
        try:
            rows = await self._execute(_TAKE, params)
        except Exception as exc:
            self._warn(exc)
            return GRANTED_NOTHING
        self.bookings += 1
        now = self._clock()
        ends = {row.key: row.ends or [] for row in rows}
        for w in shared:
            w.mirror([now + e for e in ends.get(w.key, ())] + self._pending_ends(w.key))
        keys = tuple((w.key, w.span) for w in shared)
        if rows and rows[0].granted:
            return Taken(True, grant, keys)
        self.refusals += 1
        # The windows now mirror every instance's slots: the pacer plans the next try from them.
        return Taken(False, 0, keys, retry_at=now + MIN_RETRY)

    def release(self, taken: Taken, now: float) -> None:
        if not taken.grant:
            return
        self._pending[taken.grant] = tuple((key, now + span) for key, span in taken.keys)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush(), name="parley budget releases"
            )

    async def aclose(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(flusher, 2.0)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    # -- internals --------------------------------------------------------------------------------

    def _pending_ends(self, key: str) -> list[float]:
        return [end for booked in self._pending.values() for k, end in booked if k == key]

    async def _flush(self) -> None:
        while self._pending:
            grants = list(self._pending)
            try:
                await self._execute(_RELEASE, {"grants": grants}, rows=False)
            except Exception as exc:
                self._warn(exc)
                await asyncio.sleep(1.0)  # held slots still count: nothing is lost by waiting
                continue
            for grant in grants:
                self._pending.pop(grant, None)

    async def _execute(self, statement: Any, params: dict[str, Any], *, rows: bool = True) -> list[Any]:
        async with self._lock:
            conn = await self._connection()
            try:
                result = await conn.execute(statement, params)
                return list(result.all()) if rows else []
            except Exception:
                # A broken connection is replaced on the next call.
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.close()
                raise

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "shared rate budgets out of reach (%s): pacing with this process's own budgets",
                describe(exc, self._engine.url),
            )
