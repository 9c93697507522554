"""How the store runs SQL: one short transaction per call, retried whole when SQLite is locked.

Writes on SQLite take the write lock at BEGIN (see ``db._install_sqlite_hooks``) and queue on an
``asyncio.Lock`` in this process first; a "database is locked" that still gets through is retried
a few times before it becomes one clear :class:`StoreError`. Also here: the few statement
helpers every repository uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ClauseElement, CursorResult, Executable, event, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from bot.store import db
from bot.store.db import StoreError
from bot.store.models import Base

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]

_LOCK_RETRIES = 4
IN_CHUNK = 500  # ids per IN (...) list, well under every backend's parameter limit


class Transactions:
    """The engine, and :meth:`read` / :meth:`write` to run one transaction on it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = db.writer(engine)
        self._statements = 0
        # SQLite has one write lock per file; queueing this process's writers here is fair and
        # prompt, where contending on the lock means sleeping in SQLite's busy handler.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # An in-memory database is one shared connection: transactions must not interleave on it.
        self._serialize_all = isinstance(engine.pool, StaticPool)
        event.listen(engine.sync_engine, "before_cursor_execute", self._count_statement)

    @property
    def statements(self) -> int:
        """SQL statements sent so far (transaction control excluded), for benchmarks."""
        return self._statements

    def _count_statement(self, *args: Any) -> None:
        statement = args[2]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self._statements += 1

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` in one read transaction."""
        return await self._run(work, write=False)

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in one write transaction (on SQLite: BEGIN IMMEDIATE, queued here first)."""
        return await self._run(work, write=True)

    async def _run(self, work: Work[T], *, write: bool) -> T:
        """Retried whole if SQLite reports a lock. IntegrityError passes through (callers use it
        for races); other database failures become one-line :class:`StoreError`."""
        engine = self._writer if write else self.engine
        lock = self._write_lock if write or self._serialize_all else None
        for attempt in range(_LOCK_RETRIES):
            try:
                async with lock or contextlib.nullcontext(), engine.begin() as conn:
                    return await work(conn)
            except IntegrityError:
                raise
            except OperationalError as exc:
                if not _is_locked(exc) or attempt == _LOCK_RETRIES - 1:
                    raise StoreError(f"database: {db.describe(exc, self.engine.url)}") from exc
                await asyncio.sleep(0.05 * 2**attempt * (1 + random.random()))
            except SQLAlchemyError as exc:
                raise StoreError(f"database: {db.describe(exc, self.engine.url)}") from exc
        raise AssertionError("unreachable")


def _is_locked(exc: OperationalError) -> bool:
    message = str(exc.orig if exc.orig is not None else exc).lower()
    return "locked" in message or "busy" in message


# --- statement helpers -----------------------------------------------------------------------


def new_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT just created."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StoreError("database: the insert returned no id")
    return int(key[0])


async def insert_new(
    conn: AsyncConnection, table: type[Base], values: Mapping[str, Any]
) -> CursorResult[Any] | None:
    """Insert a row unless its key is taken (then None), without ending the transaction.

    A failed INSERT would void the whole transaction on PostgreSQL, so a taken key is skipped
    instead: ON CONFLICT DO NOTHING where the dialect has it (one statement), else a savepoint.
    """
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        dialect_insert = sqlite_insert if name == "sqlite" else postgresql_insert
        if any(isinstance(value, ClauseElement) for value in values.values()):
            # A value the database computes (its clock, say) is part of the statement.
            result = await conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())
        else:
            statement = _SKIP_TAKEN.get((name, table))
            if statement is None:
                statement = _SKIP_TAKEN[name, table] = dialect_insert(table).on_conflict_do_nothing()
            result = await conn.execute(statement, dict(values))
        return result if result.rowcount == 1 else None
    try:
        async with conn.begin_nested():
            return await conn.execute(insert(table).values(**values))
    except IntegrityError:
        return None


# One INSERT ... ON CONFLICT DO NOTHING per dialect and table, built once: the values travel as
# parameters, so SQLAlchemy neither rebuilds the statement nor recomputes its cache key per call
# (together about 0.3 ms, more than SQLite takes to run it).
_SKIP_TAKEN: dict[tuple[str, type[Base]], Executable] = {}


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices short enough for one ``IN (...)`` list."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]
