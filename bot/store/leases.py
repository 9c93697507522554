"""The turns of every conversation on a shared database, in arrival order, one at a time.

A row in ``turns`` is a turn admitted on PostgreSQL, from its claim until a minute after it
ended. Its ``queued_at`` is the claim's time on the database's clock (not when an instance
happened to wake), so the order is the same whichever instance received which message.

- :meth:`Turns.claim`: claim the event, check the admission limits against every instance's
  turns, and queue the turn: one transaction, so two instances never both admit past a limit.
- :meth:`Turns.take`: the conversation's lease. A turn may run when no other turn of its
  conversation is running and none queued before it still waits; it is then ``running``.
- :meth:`Turns.finish`: the turn is over (``done``); the next may run (and is told, below).
- :meth:`Turns.adopt`: the turns of processes that stopped heart-beating. One that had begun its
  reply is closed by recovery and only dropped here; one that had not is taken over, to be
  rebuilt from its ``origin`` and answered by this process, in its place in the queue.
- :meth:`Turns.hand_back`: at shutdown, waiting turns are left for a live instance to adopt.

Every change that may let a waiting turn run sends ``NOTIFY parley_turns, '<conversation>'``, so
instances waiting on another's turn hear of it at once (``bot/store/notify.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.events import take_claim
from bot.store.instances import db_now
from bot.store.models import Instance, ProcessedEvent, TurnRow, utcnow
from bot.store.tx import Transactions
from bot.types import ConversationKey

WAITING, RUNNING, DONE = "waiting", "running", "done"
OPEN = (WAITING, RUNNING)
NOTIFY_CHANNEL = "parley_turns"
# A turn whose message broke every process that tried to answer it is not tried again.
MAX_REVIVALS = 3
# Admission reads every instance's turns under one lock, so two never admit past a limit.
_ADMISSION_LOCK = 0x7061726C6579_02


@dataclass(frozen=True, slots=True)
class TurnCounts:
    """What the admission limits count, over every instance (see ``bot/limits.py``)."""

    user_open: int  # the author's turns waiting or running
    user_last_minute: int  # the author's turns admitted in the last minute
    channel_open: int
    all_open: int
    bot_last_minute: int  # bot turns admitted in this conversation in the last minute


@dataclass(frozen=True, slots=True)
class TurnEntry:
    """A queued turn, as its owner (or the process that adopted it) knows it."""

    platform: str
    event_id: str
    conversation: str
    author: str
    queued_at: datetime
    origin: Mapping[str, Any] | None = None
    revived: int = 0


@dataclass(frozen=True, slots=True)
class TurnClaim:
    """What :meth:`Turns.claim` found: a duplicate (nothing else), a refusal, or a queued turn."""

    claimed: bool
    refusal: str | None = None
    entry: TurnEntry | None = None
    running: bool = False  # the turn holds its conversation's lease already


class Lease(enum.Enum):
    TAKEN = "taken"  # this turn runs now
    WAIT = "wait"  # another turn of the conversation comes first
    LOST = "lost"  # the turn is no longer this process's (adopted elsewhere, or gone)


Decide = Callable[[TurnCounts], str | None]


@dataclass(frozen=True, slots=True)
class Adopted:
    """What :meth:`Turns.adopt` did: turns taken over to be answered here, conversations whose
    queue moved (their waiters are told), turns given up after too many revivals."""

    revive: Sequence[TurnEntry] = ()
    moved: frozenset[str] = frozenset()
    given_up: Sequence[TurnEntry] = ()


class Turns:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def claim(
        self,
        key: ConversationKey,
        event_id: str,
        owner: str,
        *,
        author: str,
        is_bot: bool,
        origin: Mapping[str, Any] | None = None,
        decide: Decide | None = None,
        take: bool = True,
        lease_seconds: float = 300,
    ) -> TurnClaim:
        """Claim the event and, unless ``decide`` refuses it, queue its turn; one transaction.

        ``decide`` sees every instance's counts and returns a refusal's name, or None to admit;
        without it nothing is counted (no limit is set). With ``take``, the turn also takes its
        conversation's lease in the same transaction when nothing is ahead of it (the usual
        case: a new thread), saving the round trips of a separate :meth:`take`.
        """
        conversation = str(key)

        async def work(conn: AsyncConnection) -> TurnClaim:
            if not await take_claim(conn, key.platform, event_id, owner, lease_seconds):
                return TurnClaim(False)
            if decide is not None:
                if conn.dialect.name == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADMISSION_LOCK})
                refusal = decide(await _counts(conn, key, author))
                if refusal is not None:
                    return TurnClaim(True, refusal)
            values = {
                "platform": key.platform,
                "event_id": event_id,
                "conversation": conversation,
                "workspace": key.workspace,
                "channel": key.channel,
                "author": author,
                "is_bot": is_bot,
                "owner": owner,
                "state": WAITING,
                "queued_at": db_now(conn),
                "origin": dict(origin) if origin is not None else None,
                "revived": 0,
            }
            inserted = await conn.execute(_queue_turn(conn, values).returning(TurnRow.queued_at))
            queued_at = inserted.scalar_one()
            entry = TurnEntry(key.platform, event_id, conversation, author, queued_at, origin)
            running = take and await _take(conn, entry, owner) is Lease.TAKEN
            return TurnClaim(True, None, entry, running)

        return await self._tx.write(work)

    async def take(self, entry: TurnEntry, owner: str) -> Lease:
        """The conversation's lease for ``entry``, if it is its turn now."""

        async def work(conn: AsyncConnection) -> Lease:
            return await _take(conn, entry, owner)

        return await self._tx.write(work)

    async def finish(self, entry: TurnEntry) -> None:
        """The turn is over (answered, refused or given up): the next of its conversation may run."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                update(TurnRow)
                .where(TurnRow.platform == entry.platform, TurnRow.event_id == entry.event_id)
                .values(state=DONE, finished_at=db_now(conn))
            )
            await _notify(conn, [entry.conversation])

        await self._tx.write(work)

    async def hand_back(self, owner: str, entry: TurnEntry | None = None) -> list[TurnEntry]:
        """Leave ``owner``'s waiting turns (or only ``entry``) to whichever live instance adopts
        them first."""
        which = [TurnRow.owner == owner, TurnRow.state == WAITING]
        if entry is not None:
            which += [TurnRow.platform == entry.platform, TurnRow.event_id == entry.event_id]

        async def work(conn: AsyncConnection) -> list[TurnEntry]:
            rows = (
                await conn.execute(update(TurnRow).where(*which).values(owner="").returning(*_ENTRY))
            ).all()
            return [_entry(r) for r in rows]

        return await self._tx.write(work)

    async def adopt(self, owner: str, platforms: Sequence[str], *, silent_for: float) -> Adopted:
        """Take over the open turns on ``platforms`` of processes silent for ``silent_for`` s.

        A turn whose reply had begun (its claim is done) is only marked done: recovery closes
        its reply, and no one answers it again. Any other is this process's from now on, still
        waiting in its place; the claim is refreshed too, so a late redelivery does not take
        it. A turn adopted :data:`MAX_REVIVALS` times already is given up.
        """
        if not platforms:
            return Adopted()

        async def work(conn: AsyncConnection) -> Adopted:
            orphaned = and_(
                TurnRow.state.in_(OPEN),
                TurnRow.platform.in_(list(platforms)),
                TurnRow.owner.not_in(
                    select(Instance.process).where(
                        Instance.seen_at >= db_now(conn) - timedelta(seconds=silent_for)
                    )
                ),
            )
            begun = exists(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.platform == TurnRow.platform,
                    ProcessedEvent.event_id == TurnRow.event_id,
                    ProcessedEvent.status == "done",
                )
            )
            now = db_now(conn)
            done = (
                await conn.execute(
                    update(TurnRow)
                    .where(orphaned, or_(begun, TurnRow.revived >= MAX_REVIVALS))
                    .values(state=DONE, finished_at=now)
                    .returning(*_ENTRY)
                )
            ).all()
            taken = (
                await conn.execute(
                    update(TurnRow)
                    .where(orphaned)
                    .values(owner=owner, state=WAITING, revived=TurnRow.revived + 1)
                    .returning(*_ENTRY)
                )
            ).all()
            for row in taken:
                await conn.execute(
                    update(ProcessedEvent)
                    .where(ProcessedEvent.platform == row.platform, ProcessedEvent.event_id == row.event_id)
                    .values(owner=owner, claimed_at=utcnow())
                )
            moved = {r.conversation for r in (*done, *taken)}
            await _notify(conn, moved)
            given_up = [_entry(r) for r in done if r.revived >= MAX_REVIVALS]
            return Adopted(tuple(_entry(r) for r in taken), frozenset(moved), tuple(given_up))

        return await self._tx.write(work)

    async def tidy(self, owner: str, known: Sequence[tuple[str, str]], *, older_than: float = 30.0) -> int:
        """Open turns of ``owner`` that it no longer knows of (its wait or finish failed, e.g. the
        database was unreachable for a moment): a waiting one is left for adoption, a running
        one ended, so no conversation stays blocked by a live process. Rows younger than
        ``older_than`` seconds are left alone: their turn may not be registered yet."""

        async def work(conn: AsyncConnection) -> int:
            stale = [
                TurnRow.owner == owner,
                TurnRow.state.in_(OPEN),
                TurnRow.queued_at < db_now(conn) - timedelta(seconds=older_than),
            ]
            if known:
                stale.append(tuple_(TurnRow.platform, TurnRow.event_id).not_in(list(known)))
            handed = await conn.execute(
                update(TurnRow)
                .where(*stale, TurnRow.state == WAITING)
                .values(owner="")
                .returning(TurnRow.conversation)
            )
            ended = await conn.execute(
                update(TurnRow)
                .where(*stale, TurnRow.state == RUNNING)
                .values(state=DONE, finished_at=db_now(conn))
                .returning(TurnRow.conversation)
            )
            rows = [*handed.scalars(), *ended.scalars()]
            await _notify(conn, set(rows))
            return len(rows)

        return await self._tx.write(work)

    async def prune(self, older_than: float = 120.0) -> int:
        """Forget turns that ended more than ``older_than`` seconds ago (past every per-minute limit)."""

        async def work(conn: AsyncConnection) -> int:
            cutoff = db_now(conn) - timedelta(seconds=older_than)
            result = await conn.execute(
                delete(TurnRow).where(TurnRow.state == DONE, TurnRow.finished_at < cutoff)
            )
            return result.rowcount

        return await self._tx.write(work)

    async def any_open(self, conversation: ConversationKey) -> bool:
        """Whether a turn of ``conversation`` is waiting or running in any instance (its reply may
        not be stored yet: a follow-up written meanwhile belongs to a followed thread)."""

        async def work(conn: AsyncConnection) -> bool:
            query = (
                select(TurnRow.event_id)
                .where(TurnRow.conversation == str(conversation), TurnRow.state.in_(OPEN))
                .limit(1)
            )
            return (await conn.execute(query)).first() is not None

        return await self._tx.read(work)

    async def open_turns(self, conversation: ConversationKey) -> list[TurnEntry]:
        """The conversation's turns waiting or running, oldest first (tests, diagnostics)."""

        async def work(conn: AsyncConnection) -> list[TurnEntry]:
            query = (
                select(*_ENTRY)
                .where(TurnRow.conversation == str(conversation), TurnRow.state.in_(OPEN))
                .order_by(TurnRow.queued_at, TurnRow.event_id)
            )
            return [_entry(r) for r in (await conn.execute(query)).all()]

        return await self._tx.read(work)


_ENTRY = (
    TurnRow.platform,
    TurnRow.event_id,
    TurnRow.conversation,
    TurnRow.author,
    TurnRow.queued_at,
    TurnRow.origin,
    TurnRow.revived,
)


def _queue_turn(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    """INSERT the turn; over a row left by an earlier claim of the same event (a claim taken over
    after its lease ran out, its turn given up meanwhile), which this claim replaces."""
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    keys = ("platform", "event_id")
    statement = dialect_insert(TurnRow).values(**values)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={k: v for k, v in values.items() if k not in keys}
    )


async def _take(conn: AsyncConnection, entry: TurnEntry, owner: str) -> Lease:
    """:meth:`Turns.take` inside the caller's transaction."""
    if conn.dialect.name == "postgresql":
        # Two turns of one conversation deciding at once must see each other's decision.
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:c, 0))"),
            {"c": "parley-turn:" + entry.conversation},
        )
    other = TurnRow.__table__.alias("other")
    ahead = (
        select(other.c.event_id)
        .where(
            other.c.conversation == entry.conversation,
            other.c.state.in_(OPEN),
            tuple_(other.c.platform, other.c.event_id) != tuple_(entry.platform, entry.event_id),
            or_(
                other.c.state == RUNNING,
                tuple_(other.c.queued_at, other.c.event_id) < tuple_(TurnRow.queued_at, TurnRow.event_id),
            ),
        )
        .correlate(TurnRow)
    )
    taken = await conn.execute(
        update(TurnRow)
        .where(
            TurnRow.platform == entry.platform,
            TurnRow.event_id == entry.event_id,
            TurnRow.owner == owner,
            TurnRow.state == WAITING,
            ~exists(ahead),
        )
        .values(state=RUNNING)
    )
    if taken.rowcount == 1:
        return Lease.TAKEN
    row = (
        await conn.execute(
            select(TurnRow.owner, TurnRow.state).where(
                TurnRow.platform == entry.platform, TurnRow.event_id == entry.event_id
            )
        )
    ).first()
    if row is None or row.owner != owner or row.state != WAITING:
        return Lease.LOST
    return Lease.WAIT


def _entry(row: Any) -> TurnEntry:
    return TurnEntry(
        row.platform, row.event_id, row.conversation, row.author, row.queued_at, row.origin, row.revived
    )


async def _notify(conn: AsyncConnection, conversations: Sequence[str] | set[str]) -> None:
    if conn.dialect.name != "postgresql":
        return
    for conversation in sorted(conversations):
        await conn.execute(text("SELECT pg_notify(:ch, :c)"), {"ch": NOTIFY_CHANNEL, "c": conversation})


async def _counts(conn: AsyncConnection, key: ConversationKey, author: str) -> TurnCounts:
    minute_ago = db_now(conn) - timedelta(seconds=60)
    is_open = TurnRow.state.in_(OPEN)
    mine = and_(TurnRow.platform == key.platform, TurnRow.author == author)
    recent = TurnRow.queued_at >= minute_ago
    channel = and_(
        TurnRow.platform == key.platform, TurnRow.workspace == key.workspace, TurnRow.channel == key.channel
    )
    bots = and_(TurnRow.conversation == str(key), TurnRow.is_bot.is_(True), recent)

    def count(*where: Any) -> Any:
        return select(func.count()).select_from(TurnRow).where(*where).scalar_subquery()

    row = (
        await conn.execute(
            select(
                count(mine, is_open),
                count(mine, recent),
                count(channel, is_open),
                count(is_open),
                count(bots),
            )
        )
    ).one()
    return TurnCounts(*(int(v) for v in row))
