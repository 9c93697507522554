"""Files: their bytes stored once under their SHA-256 (with the text extracted from them), and the
attachment rows that say which message carried which file.

On SQLite the bytes go through sqlite3's incremental blob I/O, a slice at a time, instead of bound
values: a 30 MB PDF then costs about the file once, not three copies of it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store import db
from bot.store.db import StoreError
from bot.store.history import attachment_rows, since_reset
from bot.store.models import AttachmentRow, Blob, BlobBytes, Message, utcnow
from bot.store.rows import AttachmentRecord, StoredAttachment, StoredBlob
from bot.store.tx import Transactions

T = TypeVar("T")

# Bytes per blobopen write: SQLite's page cache takes them a slice at a time, never the file whole.
_BLOB_SLICE = 1024 * 1024


class Blobs:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def put(self, sha256: str, data: bytes, extracted_text: str | None = None) -> None:
        """Store ``data`` under its SHA-256 (once; storing it again only adds missing text)."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("Blobs.put: sha256 does not match the data")

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
            await self._tx.write(create)
        except IntegrityError:
            if extracted_text is not None:
                await self.add_text(sha256, extracted_text)

    async def add_text(self, sha256: str, extracted_text: str) -> None:
        """Keep the text extracted from a stored file, unless it has some already."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                update(Blob)
                .where(Blob.sha256 == sha256, Blob.extracted_text.is_(None))
                .values(extracted_text=extracted_text)
            )

        await self._tx.write(work)

    async def get(self, sha256: str) -> StoredBlob | None:
        streamed = _streams_blobs(self._tx.engine)
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

        return await self._tx.read(work)

    async def exists(self, sha256: str) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            query = select(literal(1)).where(Blob.sha256 == sha256)
            return (await conn.execute(query)).first() is not None

        return await self._tx.read(work)

    async def text(self, sha256: str) -> str | None:
        """The text extracted from a stored file, without loading its bytes (None if none)."""

        async def work(conn: AsyncConnection) -> str | None:
            query = select(Blob.extracted_text).where(Blob.sha256 == sha256)
            return (await conn.execute(query)).scalar_one_or_none()

        return await self._tx.read(work)

    async def prune(self, before: datetime) -> int:
        """Delete file bytes stored before ``before`` (the retention period); attachment rows stay,
        so the history still says a file was there."""

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(delete(Blob).where(Blob.created_at < before))
            return result.rowcount

        return await self._tx.write(work)

    # --- attachment rows ---------------------------------------------------------------------

    async def attach(self, message_id: int, records: Iterable[AttachmentRecord]) -> None:
        """Link files to a message stored earlier (e.g. thread context read before its files)."""
        rows = attachment_rows(message_id, records)
        if not rows:
            return

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(insert(AttachmentRow), rows)

        await self._tx.write(work)

    async def files(self, conversation_id: int, limit: int) -> list[StoredAttachment]:
        """Stored files (attachments with bytes) of the conversation since its last reset, newest
        first, at most ``limit``: what a follow-up question may refer to."""
        if limit <= 0:
            return []
        params = {"f_conversation": conversation_id, "f_limit": limit}

        async def work(conn: AsyncConnection) -> list[StoredAttachment]:
            return [
                StoredAttachment(row.id, row.message_id, row.name, row.media_type, row.size, row.sha256)
                for row in (await conn.execute(_FILES, params)).all()
            ]

        return await self._tx.read(work)


def _files_query() -> Select[Any]:
    return (
        select(AttachmentRow)
        .join(Message, Message.id == AttachmentRow.message_id)
        .where(*since_reset("f_conversation"), AttachmentRow.sha256.is_not(None))
        .order_by(Message.id.desc(), AttachmentRow.id.desc())
        .limit(bindparam("f_limit", type_=Integer))
    )


# Built once, its values as parameters (see tx.insert_new): every turn runs it.
_FILES = _files_query()


# --- blob bytes on SQLite ----------------------------------------------------------------------


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
        result: T = await driver._execute(fn, driver._conn, *args)
    except sqlite3.Error as exc:
        # Not wrapped by SQLAlchemy, so Transactions would let it through as is; the caller's
        # transaction still rolls back, as the exception leaves it.
        raise StoreError(f"database: {db.describe(exc)}") from exc
    return result
