"""Exactly-once intake: a claim per platform event, so a redelivered event is answered once.

A claim is a row in ``processed_events`` with an owner and a lease. It is marked done in the
same transaction that stores the turn's question and reply row (see ``Replies.begin``); a claim
whose owner died before that expires after its lease and can be taken over. Done claims are
only needed while a platform may still redeliver the event, so they are pruned afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.models import ProcessedEvent, utcnow
from bot.store.tx import Transactions, insert_new


class Events:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def claim(self, platform: str, event_id: str, owner: str, lease_seconds: float = 300) -> bool:
        """True if this caller now owns the event and should handle it.

        False if it was handled already, or another owner claimed it within the lease. A claim
        older than the lease belongs to an owner that died, so it is taken over.
        """

        async def work(conn: AsyncConnection) -> bool:
            return await take_claim(conn, platform, event_id, owner, lease_seconds)

        return await self._tx.write(work)

    async def once(self, platform: str, event_id: str, owner: str) -> bool:
        """True the first time ``event_id`` is seen on ``platform``, by any instance: for work
        that needs no reply row (a slash command, a button), claimed and done in one statement."""
        values = {
            "platform": platform,
            "event_id": event_id,
            "status": "done",
            "owner": owner,
            "claimed_at": utcnow(),
            "finished_at": utcnow(),
        }

        async def work(conn: AsyncConnection) -> bool:
            return await insert_new(conn, ProcessedEvent, values) is not None

        return await self._tx.write(work)

    async def done(self, platform: str, event_id: str) -> None:
        """The event is handled without a reply row (e.g. a bot turn the loop breaker dropped)."""

        async def work(conn: AsyncConnection) -> None:
            await mark_done(conn, platform, event_id)

        await self._tx.write(work)

    async def release(self, platform: str, event_id: str, owner: str) -> None:
        """Give up a claim without handling the event, so a redelivery is handled."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.platform == platform,
                    ProcessedEvent.event_id == event_id,
                    ProcessedEvent.status == "claimed",
                    ProcessedEvent.owner == owner,
                )
            )

        await self._tx.write(work)

    async def forget(self, platform: str, event_id: str) -> None:
        """Forget the event whatever its state, so that the next claim of it succeeds."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.platform == platform, ProcessedEvent.event_id == event_id
                )
            )

        await self._tx.write(work)

    async def prune(self, before: datetime) -> int:
        """Forget done events claimed before ``before``; returns how many. Claims not yet done
        stay: their turn may still be waiting or running."""

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.claimed_at < before, ProcessedEvent.status == "done"
                )
            )
            return result.rowcount

        return await self._tx.write(work)


async def take_claim(
    conn: AsyncConnection, platform: str, event_id: str, owner: str, lease_seconds: float
) -> bool:
    """:meth:`Events.claim` inside the caller's transaction."""
    now = utcnow()
    values = {
        "platform": platform,
        "event_id": event_id,
        "status": "claimed",
        "owner": owner,
        "claimed_at": now,
    }
    if await insert_new(conn, ProcessedEvent, values) is not None:
        return True
    # Taken: only a claim past its lease (its owner died) is taken over. One conditional UPDATE,
    # so of several racing takers only one still matches the WHERE.
    result = await conn.execute(
        update(ProcessedEvent)
        .where(
            ProcessedEvent.platform == platform,
            ProcessedEvent.event_id == event_id,
            ProcessedEvent.status == "claimed",
            ProcessedEvent.claimed_at < now - timedelta(seconds=lease_seconds),
        )
        .values(owner=owner, claimed_at=now)
    )
    return result.rowcount == 1


# Built once, its values as parameters (see tx.insert_new): every turn runs it.
_MARK_DONE = update(ProcessedEvent).where(
    ProcessedEvent.platform == bindparam("e_platform"), ProcessedEvent.event_id == bindparam("e_event_id")
)


async def mark_done(conn: AsyncConnection, platform: str, event_id: str) -> None:
    """Mark the event handled, inside the caller's transaction."""
    await conn.execute(
        _MARK_DONE,
        {"e_platform": platform, "e_event_id": event_id, "status": "done", "finished_at": utcnow()},
    )
