"""Which ``parley run`` processes are alive: a heartbeat row each, on the database's clock.

Every process moves its row's ``seen_at`` every few seconds (``bot/instances.py``). On
PostgreSQL the others read these rows to tell a live writer from a dead one; on SQLite they
only let ``parley doctor`` see that several processes share one file. Times are the
database's, so instances whose clocks disagree still agree on who is alive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, cast, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.models import BudgetSlot, Instance, Message, utcnow
from bot.store.tx import Transactions, insert_new
from bot.types import Outcome

# NOTIFY channel of Stop requests for a reply another process writes.
STOP_CHANNEL = "parley_stop"


@dataclass(frozen=True, slots=True)
class InstanceRow:
    process: str
    name: str | None
    host: str
    pid: int
    platforms: frozenset[str]
    started_at: datetime
    seen_at: datetime


def db_now(conn: AsyncConnection) -> ColumnElement[Any] | datetime:
    """Now on the database's clock where it has one every instance shares (PostgreSQL)."""
    return func.now() if conn.dialect.name == "postgresql" else utcnow()


class Instances:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def beat(
        self, process: str, *, name: str | None, host: str, pid: int, platforms: Iterable[str]
    ) -> bool:
        """Say ``process`` is alive now; False when its row was missing (first beat, or the
        others had taken it for dead and forgotten it), and it is written anew."""
        listed = ",".join(sorted(set(platforms)))

        async def work(conn: AsyncConnection) -> bool:
            now = db_now(conn)
            moved = await conn.execute(
                update(Instance).where(Instance.process == process).values(seen_at=now, platforms=listed)
            )
            if moved.rowcount == 1:
                return True
            values = {
                "process": process,
                "name": name,
                "host": host,
                "pid": pid,
                "platforms": listed,
                "started_at": now,
                "seen_at": now,
            }
            await insert_new(conn, Instance, values)
            return False

        return await self._tx.write(work)

    async def alive(self, within: float) -> list[InstanceRow]:
        """Processes seen in the last ``within`` seconds, oldest start first."""

        async def work(conn: AsyncConnection) -> list[InstanceRow]:
            since = _ago(conn, within)
            table = Instance.__table__
            query = select(table).where(Instance.seen_at >= since).order_by(Instance.started_at)
            return [_row(r) for r in (await conn.execute(query)).all()]

        return await self._tx.read(work)

    async def leave(self, process: str) -> None:
        """``process`` stops cleanly: it is not alive any more, and not dead either."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(delete(Instance).where(Instance.process == process))

        await self._tx.write(work)

    async def drop_held_slots(self, silent_for: float) -> int:
        """Budget slots still held by processes silent for ``silent_for`` s: their calls ended
        long ago, so the slots stop counting now rather than at their provisional end."""

        async def work(conn: AsyncConnection) -> int:
            alive = select(Instance.process).where(Instance.seen_at >= _ago(conn, silent_for))
            result = await conn.execute(
                delete(BudgetSlot).where(BudgetSlot.held.is_(True), BudgetSlot.owner.not_in(alive))
            )
            return result.rowcount

        return await self._tx.write(work)

    async def writer_of(self, ref: str) -> tuple[str, str] | None:
        """Who writes the reply still streaming whose messages include ``ref`` (a platform ref,
        as a surface returned it): its process, and the author of the question it answers. On a
        shared database only (where another process may be writing it); None otherwise."""

        async def work(conn: AsyncConnection) -> tuple[str, str] | None:
            if conn.dialect.name != "postgresql":
                return None
            reply = (
                await conn.execute(
                    select(Message.id, Message.conversation_id, Message.surface)
                    .where(
                        Message.status == Outcome.STREAMING.value,
                        # A reply posted before its row was written keeps its refs in the surface
                        # info only (see Turn._begin); later parts land in reply_refs too.
                        or_(
                            cast(Message.reply_refs, JSONB).contains([ref]),
                            cast(Message.surface, JSONB)["refs"].contains([ref]),
                        ),
                    )
                    .limit(1)
                )
            ).first()
            if reply is None or not isinstance((reply.surface or {}).get("process"), str):
                return None
            author = (
                await conn.execute(
                    select(Message.author_id)
                    .where(
                        Message.conversation_id == reply.conversation_id,
                        Message.role == "user",
                        Message.id < reply.id,
                    )
                    .order_by(Message.id.desc())
                    .limit(1)
                )
            ).scalar()
            return str(reply.surface["process"]), str(author or "")

        return await self._tx.read(work)

    async def ask_to_stop(self, process: str, ref: str) -> None:
        """Tell ``process`` (through ``NOTIFY``) that someone pressed Stop on message ``ref``."""

        async def work(conn: AsyncConnection) -> None:
            payload = json.dumps({"process": process, "ref": ref})
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": STOP_CHANNEL, "payload": payload}
            )

        await self._tx.write(work)

    async def forget(self, older_than: float) -> int:
        """Drop rows silent for ``older_than`` seconds (long dead, their leftovers handled)."""

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(delete(Instance).where(Instance.seen_at < _ago(conn, older_than)))
            return result.rowcount

        return await self._tx.write(work)


def _ago(conn: AsyncConnection, seconds: float) -> ColumnElement[Any] | datetime:
    now = db_now(conn)
    return now - timedelta(seconds=seconds)


def _row(row: Any) -> InstanceRow:
    return InstanceRow(
        process=row.process,
        name=row.name,
        host=row.host,
        pid=row.pid,
        platforms=frozenset(p for p in row.platforms.split(",") if p),
        started_at=row.started_at,
        seen_at=row.seen_at,
    )
