"""The history store: every read and write the core makes, each one short and index-bounded.

Methods return plain frozen dataclasses, never ORM objects, so nothing leaks a session or a
lazy load. Each method is one short transaction; writes on SQLite take the write lock at
BEGIN (see ``db._install_sqlite_hooks``) and are retried a few times if SQLite still reports
"database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    delete,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from bot.store import db
from bot.store.db import StoreError
from bot.store.models import (
    AttachmentRow,
    Base,
    Blob,
    BlobBytes,
    ChannelSettings,
    Conversation,
    Message,
    ProcessedEvent,
    UsageRow,
    utcnow,
)
from bot.types import Attachment, Author, ConversationKey, Outcome, Usage

T = TypeVar("T")
Role = Literal["user", "assistant"]

_LOCK_RETRIES = 4
_ERROR_MAX_CHARS = 2000
_IN_CHUNK = 500  # ids per IN (...) list, well under every backend's parameter limit
# Credentials that upstream error messages sometimes echo back.
_SECRETS = re.compile(
    r"(?i)\b(?:bearer\s+\S+|xox[abposr]-[\w-]+|xapp-[\w-]+|sk-[\w-]{8,}|(?:api[_-]?key|token|password)=\S+)"
)


# --- what the store returns ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: int
    key: ConversationKey
    model_override: str | None
    system_override: str | None
    reset_after_message_id: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """An attachment to store with a message; ``sha256`` names its bytes in the blobs table."""

    name: str
    media_type: str | None = None
    size: int | None = None
    sha256: str | None = None

    @classmethod
    def from_attachment(cls, attachment: Attachment, sha256: str | None = None) -> AttachmentRecord:
        return cls(attachment.name, attachment.declared_type, attachment.size, sha256)


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    id: int
    message_id: int
    name: str
    media_type: str | None
    size: int | None
    sha256: str | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: Role
    author_id: str
    author_name: str
    text: str
    status: Outcome
    model: str | None
    platform_message_id: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class StreamingReply:
    """A reply the store last saw streaming: its writer crashed, or is still writing it."""

    id: int
    conversation_id: int
    key: ConversationKey
    model: str | None
    reply_refs: tuple[str, ...]
    surface: Mapping[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ModelTotals(Totals):
    model: str = ""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    data: bytes
    size: int
    extracted_text: str | None
    created_at: datetime


# --- blob bytes on SQLite ----------------------------------------------------------------------

# Bytes per blobopen write: SQLite's page cache takes them a slice at a time, never the file whole.
_BLOB_SLICE = 1024 * 1024


def _streams_blobs(conn: AsyncConnection | AsyncEngine) -> bool:
    """Whether blob bytes go through sqlite3's incremental blob I/O instead of bound values.

    Bound bytes cost SQLite two copies of the file on insert (the value, then the row) and a
    select another one (its buffer, then Python's bytes); ``blobopen`` costs none.
    """
    return conn.dialect.driver == "aiosqlite"


def _open_blob(raw: sqlite3.Connection, rowid: int, *, readonly: bool) -> sqlite3.Blob:
    return raw.blobopen(BlobBytes.__tablename__, "data", rowid, readonly=readonly)


def _fill_blob(raw: sqlite3.Connection, rowid: int, data: bytes) -> None:
    view = memoryview(data)
    with _open_blob(raw, rowid, readonly=False) as blob:
        for start in range(0, len(view), _BLOB_SLICE):
            blob.write(view[start : start + _BLOB_SLICE])


def _read_blob(raw: sqlite3.Connection, rowid: int) -> bytes:
    with _open_blob(raw, rowid, readonly=True) as blob:
        return blob.read()  # one bytes object, which SQLite fills page by page


async def _on_sqlite_thread(conn: AsyncConnection, fn: Callable[..., T], *args: Any) -> T:
    """``fn(sqlite3 connection, *args)`` inside ``conn``'s transaction.

    A sqlite3 connection must be used on the thread aiosqlite keeps for it; queued there, ``fn``
    runs between ``conn``'s statements and sees what they wrote.
    """
    driver: Any = (await conn.get_raw_connection()).driver_connection  # an aiosqlite.Connection
    try:
        return await driver._execute(fn, driver._conn, *args)
    except sqlite3.Error as exc:
        # Not wrapped by SQLAlchemy, so _tx would let it through as is; the caller's
        # transaction still rolls back, as the exception leaves it.
        raise StoreError(f"database: {db.describe(exc)}") from exc


# --- helpers ---------------------------------------------------------------------------------


def clean_error(detail: str | None) -> str | None:
    """Bounded, with anything that looks like a credential masked: error text is shown and kept."""
    if detail is None:
        return None
    return _SECRETS.sub("***", detail)[:_ERROR_MAX_CHARS]


def _is_locked(exc: OperationalError) -> bool:
    message = str(exc.orig if exc.orig is not None else exc).lower()
    return "locked" in message or "busy" in message


def _key_filter(key: ConversationKey) -> list[ColumnElement[bool]]:
    return [
        Conversation.platform == key.platform,
        Conversation.workspace == key.workspace,
        Conversation.channel == key.channel,
        Conversation.thread == key.thread,
    ]


def _channel_filter(key: ConversationKey) -> list[ColumnElement[bool]]:
    return [
        ChannelSettings.platform == key.platform,
        ChannelSettings.workspace == key.workspace,
        ChannelSettings.channel == key.channel,
    ]


_CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.platform,
    Conversation.workspace,
    Conversation.channel,
    Conversation.thread,
    Conversation.model_override,
    Conversation.system_override,
    Conversation.reset_after_message_id,
    Conversation.created_at,
    Conversation.updated_at,
)

_MESSAGE_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.role,
    Message.author_id,
    Message.author_name,
    Message.text,
    Message.status,
    Message.model,
    Message.platform_message_id,
    Message.created_at,
    Message.finished_at,
)


def _conversation(row: Any) -> ConversationRow:
    return ConversationRow(
        id=row.id,
        key=ConversationKey(row.platform, row.workspace, row.channel, row.thread),
        model_override=row.model_override,
        system_override=row.system_override,
        reset_after_message_id=row.reset_after_message_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _message(row: Any) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        role=row.role,
        author_id=row.author_id,
        author_name=row.author_name,
        text=row.text,
        status=Outcome(row.status),
        model=row.model,
        platform_message_id=row.platform_message_id,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _usage_filters(
    user_id: str | None,
    conversation_id: int | None,
    workspace: str | None,
    model: str | None,
    platform: str | None,
    since: datetime | None,
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if user_id is not None:
        filters.append(UsageRow.user_id == user_id)
    if conversation_id is not None:
        filters.append(UsageRow.conversation_id == conversation_id)
    if workspace is not None:
        filters.append(UsageRow.workspace == workspace)
    if model is not None:
        filters.append(UsageRow.model == model)
    if platform is not None:
        filters.append(UsageRow.platform == platform)
    if since is not None:
        filters.append(UsageRow.created_at >= since)
    return filters


_TOTALS_COLUMNS = (
    func.count(UsageRow.id).label("requests"),
    func.coalesce(func.sum(UsageRow.input_tokens), 0).label("input_tokens"),
    func.coalesce(func.sum(UsageRow.output_tokens), 0).label("output_tokens"),
    func.coalesce(func.sum(UsageRow.thinking_tokens), 0).label("thinking_tokens"),
)


def _new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StoreError("database: the insert returned no id")
    return int(key[0])


def _attachment_rows(message_id: int, records: Iterable[AttachmentRecord]) -> list[dict[str, Any]]:
    return [
        {
            "message_id": message_id,
            "name": r.name,
            "media_type": r.media_type,
            "size": r.size,
            "sha256": r.sha256,
        }
        for r in records
    ]


async def _insert_new(
    conn: AsyncConnection, table: type[Base], values: Mapping[str, Any]
) -> CursorResult[Any] | None:
    """Insert a row unless its key is taken (then None), without ending the transaction.

    A failed INSERT would void the whole transaction on PostgreSQL, so a taken key is skipped
    instead: ON CONFLICT DO NOTHING where the dialect has it (one statement), else a savepoint.
    """
    if conn.dialect.name in ("sqlite", "postgresql"):
        dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
        result = await conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())
        return result if result.rowcount == 1 else None
    try:
        async with conn.begin_nested():
            return await conn.execute(insert(table).values(**values))
    except IntegrityError:
        return None


def _totals(row: Any) -> Totals:
    return Totals(int(row.requests), int(row.input_tokens), int(row.output_tokens), int(row.thinking_tokens))


async def _claim(
    conn: AsyncConnection, platform: str, event_id: str, owner: str, lease_seconds: float
) -> bool:
    now = utcnow()
    values = {
        "platform": platform,
        "event_id": event_id,
        "status": "claimed",
        "owner": owner,
        "claimed_at": now,
    }
    if await _insert_new(conn, ProcessedEvent, values) is not None:
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


async def _mark_done(conn: AsyncConnection, platform: str, event_id: str) -> None:
    await conn.execute(
        update(ProcessedEvent)
        .where(ProcessedEvent.platform == platform, ProcessedEvent.event_id == event_id)
        .values(status="done", finished_at=utcnow())
    )


async def _conversation_in(conn: AsyncConnection, key: ConversationKey) -> ConversationRow:
    """The conversation of ``key``, created if missing, inside the caller's transaction."""
    query = select(*_CONVERSATION_COLUMNS).where(*_key_filter(key))
    row = (await conn.execute(query)).first()
    if row is not None:
        return _conversation(row)
    now = utcnow()
    values = {
        "platform": key.platform,
        "workspace": key.workspace,
        "channel": key.channel,
        "thread": key.thread,
        "reset_after_message_id": 0,
        "created_at": now,
        "updated_at": now,
    }
    result = await _insert_new(conn, Conversation, values)
    if result is not None:
        return ConversationRow(_new_id(result), key, None, None, 0, now, now)
    # Another process created it after our read (PostgreSQL); the insert waited for its commit.
    row = (await conn.execute(query)).first()
    if row is None:
        raise StoreError(f"database: conversation {key} vanished while being created")
    return _conversation(row)


async def _insert_message(
    conn: AsyncConnection,
    conversation_id: int,
    author: Author,
    text: str,
    *,
    role: Role,
    platform_id: str,
    records: Sequence[AttachmentRecord],
    status: Outcome,
    model: str | None,
    now: datetime,
) -> int:
    result = await conn.execute(
        insert(Message).values(
            conversation_id=conversation_id,
            role=role,
            author_id=author.id,
            author_name=author.name,
            text=text,
            status=status.value,
            model=model,
            platform_message_id=platform_id,
            created_at=now,
            finished_at=now,
        )
    )
    message_id = _new_id(result)
    if records:
        await conn.execute(insert(AttachmentRow), _attachment_rows(message_id, records))
    await conn.execute(update(Conversation).where(Conversation.id == conversation_id).values(updated_at=now))
    return message_id


async def _insert_reply(
    conn: AsyncConnection, conversation_id: int, model: str, surface_info: Mapping[str, Any] | None
) -> int:
    result = await conn.execute(
        insert(Message).values(
            conversation_id=conversation_id,
            role="assistant",
            author_id="",
            author_name="",
            text="",
            status=Outcome.STREAMING.value,
            model=model,
            platform_message_id="",
            surface=dict(surface_info) if surface_info is not None else None,
            created_at=utcnow(),
        )
    )
    return _new_id(result)


# --- the store -------------------------------------------------------------------------------


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = db.writer(engine)
        self._statements = 0
        # SQLite has one write lock per file; queueing this process's writers here is fair and
        # prompt, where contending on the lock means sleeping in SQLite's busy handler.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # An in-memory database is one shared connection: transactions must not interleave on it.
        self._serialize_all = isinstance(engine.pool, StaticPool)
        event.listen(engine.sync_engine, "before_cursor_execute", self._count_statement)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect (creating a SQLite file and its folder if needed) and bring the schema to head.

        Raises :class:`StoreError` naming DATABASE_URL if the database is unusable. With
        ``migrate=False`` nothing is changed (``parley doctor``); see :meth:`is_migrated`.
        """
        engine = await db.open_engine(url)
        if migrate:
            try:
                await db.migrate(engine)
            except BaseException:
                await engine.dispose()
                raise
        return cls(engine)

    async def is_migrated(self) -> bool:
        """Whether the schema is at this Parley's newest migration."""

        async def work(conn: AsyncConnection) -> str | None:
            return await db.current_revision_async(conn)

        return await self._tx(work) == db.head_revision()

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def shared(self) -> bool:
        """Whether other Parley processes may use this database too (PostgreSQL).

        A SQLite file belongs to one ``parley run``; several instances need PostgreSQL.
        """
        return self._engine.dialect.name != "sqlite"

    @property
    def statements(self) -> int:
        """SQL statements sent so far (transaction control excluded), for benchmarks."""
        return self._statements

    def _count_statement(self, *args: Any) -> None:
        statement = args[2]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self._statements += 1

    async def _tx(self, work: Callable[[AsyncConnection], Awaitable[T]], *, write: bool = False) -> T:
        """Run ``work`` in one transaction; retried whole if SQLite reports a lock.

        IntegrityError passes through (callers use it for races); other database failures
        become one-line :class:`StoreError`.
        """
        engine = self._writer if write else self._engine
        lock = self._write_lock if write or self._serialize_all else None
        for attempt in range(_LOCK_RETRIES):
            try:
                async with lock or contextlib.nullcontext(), engine.begin() as conn:
                    return await work(conn)
            except IntegrityError:
                raise
            except OperationalError as exc:
                if not _is_locked(exc) or attempt == _LOCK_RETRIES - 1:
                    raise StoreError(f"database: {db.describe(exc, self._engine.url)}") from exc
                await asyncio.sleep(0.05 * 2**attempt * (1 + random.random()))
            except SQLAlchemyError as exc:
                raise StoreError(f"database: {db.describe(exc, self._engine.url)}") from exc
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        async def work(conn: AsyncConnection) -> None:
            await conn.execute(text("SELECT 1"))

        await self._tx(work)

    # --- exactly-once events -------------------------------------------------------------------

    async def claim_event(self, platform: str, event_id: str, owner: str, lease_seconds: float = 300) -> bool:
        """True if this caller now owns the event and should handle it.

        False if it was handled already, or another owner claimed it within the lease. A claim
        older than the lease belongs to an owner that died, so it is taken over.
        """

        async def work(conn: AsyncConnection) -> bool:
            return await _claim(conn, platform, event_id, owner, lease_seconds)

        return await self._tx(work, write=True)

    async def mark_event_done(self, platform: str, event_id: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            await _mark_done(conn, platform, event_id)

        await self._tx(work, write=True)

    async def release_event(self, platform: str, event_id: str, owner: str) -> None:
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

        await self._tx(work, write=True)

    async def prune_events(self, before: datetime) -> int:
        """Forget handled events claimed before ``before`` (platforms stop redelivering in minutes)."""

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.claimed_at < before, ProcessedEvent.status == "done"
                )
            )
            return result.rowcount

        return await self._tx(work, write=True)

    # --- conversations and settings ------------------------------------------------------------

    async def get_conversation(self, key: ConversationKey) -> ConversationRow | None:
        async def work(conn: AsyncConnection) -> ConversationRow | None:
            row = (await conn.execute(select(*_CONVERSATION_COLUMNS).where(*_key_filter(key)))).first()
            return None if row is None else _conversation(row)

        return await self._tx(work)

    async def get_or_create_conversation(self, key: ConversationKey) -> ConversationRow:
        existing = await self.get_conversation(key)
        if existing is not None:
            return existing

        async def create(conn: AsyncConnection) -> ConversationRow:
            return await _conversation_in(conn, key)

        return await self._tx(create, write=True)

    async def conversation_exists(self, key: ConversationKey) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            query = select(Conversation.id).where(*_key_filter(key)).limit(1)
            return (await conn.execute(query)).first() is not None

        return await self._tx(work)

    async def has_assistant_reply(self, key: ConversationKey) -> bool:
        """Whether Parley has replied in this conversation (adapters answer follow-ups then)."""

        async def work(conn: AsyncConnection) -> bool:
            query = (
                select(Message.id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(*_key_filter(key), Message.role == "assistant")
                .limit(1)
            )
            return (await conn.execute(query)).first() is not None

        return await self._tx(work)

    async def _set_conversation(self, conversation_id: int, **values: Any) -> None:
        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(**values, updated_at=utcnow())
            )

        await self._tx(work, write=True)

    async def set_conversation_model(self, conversation_id: int, model: str | None) -> None:
        await self._set_conversation(conversation_id, model_override=model)

    async def set_conversation_system(self, conversation_id: int, system: str | None) -> None:
        await self._set_conversation(conversation_id, system_override=system)

    async def _set_channel(self, key: ConversationKey, **values: Any) -> None:
        now = utcnow()

        async def work(conn: AsyncConnection) -> None:
            result = await conn.execute(
                update(ChannelSettings).where(*_channel_filter(key)).values(**values, updated_at=now)
            )
            if result.rowcount == 0:
                await conn.execute(
                    insert(ChannelSettings).values(
                        platform=key.platform,
                        workspace=key.workspace,
                        channel=key.channel,
                        **{"model_override": None, "system_override": None, **values},
                        updated_at=now,
                    )
                )

        try:
            await self._tx(work, write=True)
        except IntegrityError:
            await self._tx(work, write=True)  # a concurrent first write won; now the UPDATE applies

    async def set_channel_model(self, key: ConversationKey, model: str | None) -> None:
        """Per-channel default model (``key.thread`` is ignored); None clears it."""
        await self._set_channel(key, model_override=model)

    async def set_channel_system(self, key: ConversationKey, system: str | None) -> None:
        await self._set_channel(key, system_override=system)

    async def effective_model_and_system(
        self, conversation: ConversationRow | int
    ) -> tuple[str | None, str | None]:
        """(model, system prompt) overrides in force: the conversation's, else its channel's.

        None means "use the configured default". Read fresh, so a ``/model`` in another
        thread of the channel applies at once.
        """
        conversation_id = conversation if isinstance(conversation, int) else conversation.id

        async def work(conn: AsyncConnection) -> tuple[str | None, str | None]:
            query = (
                select(
                    Conversation.model_override,
                    Conversation.system_override,
                    ChannelSettings.model_override.label("channel_model"),
                    ChannelSettings.system_override.label("channel_system"),
                )
                .outerjoin(
                    ChannelSettings,
                    (ChannelSettings.platform == Conversation.platform)
                    & (ChannelSettings.workspace == Conversation.workspace)
                    & (ChannelSettings.channel == Conversation.channel),
                )
                .where(Conversation.id == conversation_id)
            )
            row = (await conn.execute(query)).first()
            if row is None:
                return None, None
            model = row.model_override if row.model_override is not None else row.channel_model
            system = row.system_override if row.system_override is not None else row.channel_system
            return model, system

        return await self._tx(work)

    async def reset(self, conversation_id: int) -> None:
        """Start the conversation's context over; the history before stays stored."""
        newest = (
            select(func.coalesce(func.max(Message.id), 0))
            .where(Message.conversation_id == conversation_id)
            .scalar_subquery()
        )
        await self._set_conversation(conversation_id, reset_after_message_id=newest)

    # --- messages ------------------------------------------------------------------------------

    async def add_context_message(
        self,
        conversation_id: int,
        author: Author,
        text: str,
        *,
        role: Role = "user",
        platform_id: str = "",
        attachments: Iterable[AttachmentRecord] = (),
        status: Outcome = Outcome.COMPLETE,
        model: str | None = None,
    ) -> int:
        """Store a finished message: a user turn, or context read back from the platform."""
        now = utcnow()
        records = list(attachments)

        async def work(conn: AsyncConnection) -> int:
            return await _insert_message(
                conn,
                conversation_id,
                author,
                text,
                role=role,
                platform_id=platform_id,
                records=records,
                status=status,
                model=model,
                now=now,
            )

        return await self._tx(work, write=True)

    async def add_user_message(
        self,
        conversation_id: int,
        author: Author,
        text: str,
        platform_id: str = "",
        attachments: Iterable[AttachmentRecord] = (),
    ) -> int:
        return await self.add_context_message(
            conversation_id, author, text, platform_id=platform_id, attachments=attachments
        )

    async def user_message_exists(self, conversation_id: int, platform_id: str) -> bool:
        """Whether a message with this platform id is stored (backfill must not store it twice)."""
        if not platform_id:
            return False
        return bool(await self.known_platform_ids(conversation_id, [platform_id]))

    async def known_platform_ids(self, conversation_id: int, platform_ids: Iterable[str]) -> set[str]:
        """Which of ``platform_ids`` are stored in the conversation: a whole backfill in one query."""
        wanted = sorted({p for p in platform_ids if p})
        if not wanted:
            return set()

        async def work(conn: AsyncConnection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), _IN_CHUNK):
                query = select(Message.platform_message_id).where(
                    Message.conversation_id == conversation_id,
                    Message.platform_message_id.in_(wanted[start : start + _IN_CHUNK]),
                )
                found.update((await conn.execute(query)).scalars())
            return found

        return await self._tx(work)

    async def load_context(self, conversation_id: int, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` messages since the last reset, oldest first.

        One query walking the (conversation_id, id) index backwards from the newest row, so
        its cost depends on ``limit``, not on the length of the thread.
        """
        if limit <= 0:
            return []
        query = self.context_query(conversation_id, limit)

        async def work(conn: AsyncConnection) -> list[StoredMessage]:
            rows = (await conn.execute(query)).all()
            return [_message(row) for row in reversed(rows)]

        return await self._tx(work)

    def context_query(self, conversation_id: int, limit: int) -> Select[*tuple[Any, ...]]:
        """The statement :meth:`load_context` runs (for query-plan checks)."""
        reset_after = (
            select(Conversation.reset_after_message_id)
            .where(Conversation.id == conversation_id)
            .scalar_subquery()
        )
        return (
            select(*_MESSAGE_COLUMNS)
            .where(Message.conversation_id == conversation_id, Message.id > reset_after)
            .order_by(Message.id.desc())
            .limit(limit)
        )

    async def attachments_for(self, message_ids: Iterable[int]) -> dict[int, list[StoredAttachment]]:
        """Attachments of the given messages (e.g. those :meth:`load_context` returned)."""
        ids = sorted(set(message_ids))
        if not ids:
            return {}

        async def work(conn: AsyncConnection) -> dict[int, list[StoredAttachment]]:
            found: dict[int, list[StoredAttachment]] = {}
            for start in range(0, len(ids), _IN_CHUNK):
                query = (
                    select(AttachmentRow)
                    .where(AttachmentRow.message_id.in_(ids[start : start + _IN_CHUNK]))
                    .order_by(AttachmentRow.id)
                )
                for row in (await conn.execute(query)).all():
                    found.setdefault(row.message_id, []).append(
                        StoredAttachment(
                            row.id, row.message_id, row.name, row.media_type, row.size, row.sha256
                        )
                    )
            return found

        return await self._tx(work)

    # --- replies -------------------------------------------------------------------------------

    async def start_reply(
        self, conversation_id: int, model: str, surface_info: Mapping[str, Any] | None = None
    ) -> int:
        """Record a reply as streaming before its first token; returns its message id."""

        async def work(conn: AsyncConnection) -> int:
            return await _insert_reply(conn, conversation_id, model, surface_info)

        return await self._tx(work, write=True)

    async def begin_reply(
        self,
        conversation_id: int,
        author: Author,
        question: str,
        *,
        model: str,
        surface_info: Mapping[str, Any] | None = None,
        platform_id: str = "",
        attachments: Iterable[AttachmentRecord] = (),
        event: tuple[str, str] | None = None,
    ) -> int:
        """A turn's writes before its answer, in one transaction: the question (as
        :meth:`add_user_message`), the streaming reply row (:meth:`start_reply`, whose id is
        returned) and, for ``event`` = (platform, event id), :meth:`mark_event_done`."""
        now = utcnow()
        records = list(attachments)

        async def work(conn: AsyncConnection) -> int:
            await _insert_message(
                conn,
                conversation_id,
                author,
                question,
                role="user",
                platform_id=platform_id,
                records=records,
                status=Outcome.COMPLETE,
                model=None,
                now=now,
            )
            reply_id = await _insert_reply(conn, conversation_id, model, surface_info)
            if event is not None:
                await _mark_done(conn, *event)
            return reply_id

        return await self._tx(work, write=True)

    async def set_reply_refs(
        self, message_id: int, refs: Sequence[str], surface_info: Mapping[str, Any] | None = None
    ) -> None:
        """Remember where the reply's parts were posted, so a crash can be cleaned up after."""
        values: dict[str, Any] = {"reply_refs": list(refs)}
        if surface_info is not None:
            values["surface"] = dict(surface_info)

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(update(Message).where(Message.id == message_id).values(**values))

        await self._tx(work, write=True)

    async def finish_reply(
        self,
        message_id: int,
        text: str,
        outcome: Outcome,
        *,
        usage: Usage | None = None,
        author_id: str = "",
        model: str | None = None,
        refs: Sequence[str] | None = None,
        error: str | None = None,
        surface_info: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the reply's final text and outcome, and its usage row, in one transaction.

        ``author_id`` is whom the usage is charged to (the author of the turn); ``model``
        overrides the one given to :meth:`start_reply` if the request used another; ``refs`` and
        ``surface_info`` replace what :meth:`set_reply_refs` stored.
        """
        if outcome is Outcome.STREAMING:
            raise ValueError("finish_reply needs a final outcome, not STREAMING")
        tokens = usage or Usage()
        now = utcnow()
        values: dict[str, Any] = {
            "text": text,
            "status": outcome.value,
            "input_tokens": tokens.input_tokens,
            "output_tokens": tokens.output_tokens,
            "thinking_tokens": tokens.thinking_tokens,
            "error": clean_error(error),
            "finished_at": now,
        }
        if model is not None:
            values["model"] = model
        if refs is not None:
            values["reply_refs"] = list(refs)
        if surface_info is not None:
            values["surface"] = dict(surface_info)

        async def work(conn: AsyncConnection) -> None:
            where = (
                select(Message.conversation_id, Message.model, Conversation.platform, Conversation.workspace)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.id == message_id)
            )
            row = (await conn.execute(where)).first()
            if row is None:
                raise StoreError(f"database: no reply with id {message_id}")
            await conn.execute(update(Message).where(Message.id == message_id).values(**values))
            await conn.execute(
                insert(UsageRow).values(
                    message_id=message_id,
                    conversation_id=row.conversation_id,
                    platform=row.platform,
                    workspace=row.workspace,
                    user_id=author_id,
                    model=model or row.model or "",
                    input_tokens=tokens.input_tokens,
                    output_tokens=tokens.output_tokens,
                    thinking_tokens=tokens.thinking_tokens,
                    created_at=now,
                )
            )

        await self._tx(work, write=True)

    async def streaming_replies(
        self, *, started_before: datetime | None = None, limit: int = 100, platform: str | None = None
    ) -> list[StreamingReply]:
        """Replies still marked streaming, oldest first, for recovery after a crash.

        With several instances on one database, pass ``started_before`` (e.g. now minus the
        longest a reply can take) so replies another live instance is writing are left alone.
        """
        query = (
            select(
                Message.id,
                Message.conversation_id,
                Message.model,
                Message.reply_refs,
                Message.surface,
                Message.created_at,
                Conversation.platform,
                Conversation.workspace,
                Conversation.channel,
                Conversation.thread,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.status == Outcome.STREAMING.value)
            .order_by(Message.id)
            .limit(limit)
        )
        if started_before is not None:
            query = query.where(Message.created_at < started_before)
        if platform is not None:
            query = query.where(Conversation.platform == platform)

        async def work(conn: AsyncConnection) -> list[StreamingReply]:
            return [
                StreamingReply(
                    id=row.id,
                    conversation_id=row.conversation_id,
                    key=ConversationKey(row.platform, row.workspace, row.channel, row.thread),
                    model=row.model,
                    reply_refs=tuple(row.reply_refs or ()),
                    surface=row.surface,
                    created_at=row.created_at,
                )
                for row in (await conn.execute(query)).all()
            ]

        return await self._tx(work)

    async def mark_interrupted(self, message_id: int, text: str | None = None) -> bool:
        """Mark a reply that is still streaming as interrupted; False if it had finished.

        ``text``: what the reply showed when it stopped (read back from the platform), if known.
        """
        values: dict[str, Any] = {"status": Outcome.INTERRUPTED.value, "finished_at": utcnow()}
        if text is not None:
            values["text"] = text

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == Outcome.STREAMING.value)
                .values(**values)
            )
            return result.rowcount

        return await self._tx(work, write=True) == 1

    # --- usage ---------------------------------------------------------------------------------

    async def usage_totals(
        self,
        *,
        user_id: str | None = None,
        conversation_id: int | None = None,
        workspace: str | None = None,
        model: str | None = None,
        platform: str | None = None,
        since: datetime | None = None,
    ) -> Totals:
        filters = _usage_filters(user_id, conversation_id, workspace, model, platform, since)

        async def work(conn: AsyncConnection) -> Totals:
            row = (await conn.execute(select(*_TOTALS_COLUMNS).where(*filters))).one()
            return _totals(row)

        return await self._tx(work)

    async def usage_by_model(
        self,
        *,
        user_id: str | None = None,
        conversation_id: int | None = None,
        workspace: str | None = None,
        platform: str | None = None,
        since: datetime | None = None,
    ) -> list[ModelTotals]:
        filters = _usage_filters(user_id, conversation_id, workspace, None, platform, since)
        query = (
            select(UsageRow.model, *_TOTALS_COLUMNS)
            .where(*filters)
            .group_by(UsageRow.model)
            .order_by(UsageRow.model)
        )

        async def work(conn: AsyncConnection) -> list[ModelTotals]:
            return [
                ModelTotals(
                    int(row.requests),
                    int(row.input_tokens),
                    int(row.output_tokens),
                    int(row.thinking_tokens),
                    model=row.model,
                )
                for row in (await conn.execute(query)).all()
            ]

        return await self._tx(work)

    # --- blobs ---------------------------------------------------------------------------------

    async def put_blob(self, sha256: str, data: bytes, extracted_text: str | None = None) -> None:
        """Store ``data`` under its SHA-256 (once; storing it again only adds missing text)."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("put_blob: sha256 does not match the data")

        async def create(conn: AsyncConnection) -> None:
            # The metadata row first: storing known bytes again fails here, before any copying.
            await conn.execute(
                insert(Blob).values(
                    sha256=sha256, size=len(data), extracted_text=extracted_text, created_at=utcnow()
                )
            )
            if not _streams_blobs(conn):
                await conn.execute(insert(BlobBytes).values(sha256=sha256, data=data))
                return
            # Reserve the blob (zeros SQLite writes without holding them: data is the row's last
            # column), then fill it in place in this transaction, so a failure leaves no row.
            result = await conn.execute(
                insert(BlobBytes).values(sha256=sha256, data=func.zeroblob(len(data)))
            )
            await _on_sqlite_thread(conn, _fill_blob, result.lastrowid, data)

        try:
            await self._tx(create, write=True)
        except IntegrityError:
            if extracted_text is not None:
                await self.set_blob_text(sha256, extracted_text, only_if_missing=True)

    async def set_blob_text(self, sha256: str, extracted_text: str, *, only_if_missing: bool = False) -> None:
        async def work(conn: AsyncConnection) -> None:
            query = update(Blob).where(Blob.sha256 == sha256)
            if only_if_missing:
                query = query.where(Blob.extracted_text.is_(None))
            await conn.execute(query.values(extracted_text=extracted_text))

        await self._tx(work, write=True)

    async def get_blob(self, sha256: str) -> StoredBlob | None:
        streamed = _streams_blobs(self._engine)
        # On SQLite, where the bytes are rather than the bytes: they are read in place below.
        data = (
            literal_column(f"{BlobBytes.__tablename__}.rowid").label("data")
            if streamed
            else BlobBytes.data.label("data")
        )
        query = (
            select(Blob.sha256, Blob.size, Blob.extracted_text, Blob.created_at, data)
            .join(BlobBytes, BlobBytes.sha256 == Blob.sha256)
            .where(Blob.sha256 == sha256)
        )

        async def work(conn: AsyncConnection) -> StoredBlob | None:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            # Read in the same transaction as the row, so a prune in between cannot split them.
            stored = await _on_sqlite_thread(conn, _read_blob, row.data) if streamed else bytes(row.data)
            return StoredBlob(row.sha256, stored, row.size, row.extracted_text, row.created_at)

        return await self._tx(work)

    async def has_blob(self, sha256: str) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            query = select(literal(1)).where(Blob.sha256 == sha256)
            return (await conn.execute(query)).first() is not None

        return await self._tx(work)

    # --- files (bot/files) ---------------------------------------------------------------------

    async def conversation_files(self, conversation_id: int, limit: int) -> list[StoredAttachment]:
        """Stored files (attachments with bytes) of the conversation since its last reset, newest
        first, at most ``limit``: what a follow-up question may refer to."""
        if limit <= 0:
            return []
        reset_after = (
            select(Conversation.reset_after_message_id)
            .where(Conversation.id == conversation_id)
            .scalar_subquery()
        )
        query = (
            select(AttachmentRow)
            .join(Message, Message.id == AttachmentRow.message_id)
            .where(
                Message.conversation_id == conversation_id,
                Message.id > reset_after,
                AttachmentRow.sha256.is_not(None),
            )
            .order_by(Message.id.desc(), AttachmentRow.id.desc())
            .limit(limit)
        )

        async def work(conn: AsyncConnection) -> list[StoredAttachment]:
            return [
                StoredAttachment(row.id, row.message_id, row.name, row.media_type, row.size, row.sha256)
                for row in (await conn.execute(query)).all()
            ]

        return await self._tx(work)

    async def platform_messages(
        self, conversation_id: int, platform_ids: Iterable[str]
    ) -> dict[str, tuple[int, int]]:
        """For stored messages with these platform ids: (message id, how many attachment rows)."""
        wanted = sorted({p for p in platform_ids if p})
        if not wanted:
            return {}

        async def work(conn: AsyncConnection) -> dict[str, tuple[int, int]]:
            found: dict[str, tuple[int, int]] = {}
            for start in range(0, len(wanted), _IN_CHUNK):
                query = (
                    select(Message.platform_message_id, Message.id, func.count(AttachmentRow.id))
                    .outerjoin(AttachmentRow, AttachmentRow.message_id == Message.id)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.platform_message_id.in_(wanted[start : start + _IN_CHUNK]),
                    )
                    .group_by(Message.platform_message_id, Message.id)
                )
                for platform_id, message_id, count in (await conn.execute(query)).all():
                    found.setdefault(platform_id, (message_id, count))
            return found

        return await self._tx(work)

    async def add_attachments(self, message_id: int, records: Iterable[AttachmentRecord]) -> None:
        """Link files to a message stored earlier (e.g. thread context read before its files)."""
        rows = _attachment_rows(message_id, records)
        if not rows:
            return

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(insert(AttachmentRow), rows)

        await self._tx(work, write=True)

    async def prune_blobs(self, before: datetime) -> int:
        """Delete file bytes stored before ``before`` (the retention period); attachment rows stay,
        so the history still says a file was there."""

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(delete(Blob).where(Blob.created_at < before))
            return result.rowcount

        return await self._tx(work, write=True)

    async def blob_text(self, sha256: str) -> str | None:
        """The text extracted from a stored file, without loading its bytes (None if none)."""

        async def work(conn: AsyncConnection) -> str | None:
            query = select(Blob.extracted_text).where(Blob.sha256 == sha256)
            return (await conn.execute(query)).scalar_one_or_none()

        return await self._tx(work)
