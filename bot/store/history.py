"""A conversation's messages: the context a turn is built from, and the platform's own messages
(thread history, reply chains) stored once so that later turns see them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store import tool_steps
from bot.store.models import AttachmentRow, Conversation, Message, utcnow
from bot.store.rows import AttachmentRecord, KnownMessage, Role, StoredMessage
from bot.store.tx import Transactions, chunks, new_id
from bot.types import Author, Outcome


class History:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def load(self, conversation_id: int, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` messages since the last reset, oldest first.

        One query walking the (conversation_id, id) index backwards from the newest row, so
        its cost depends on ``limit``, not on the length of the thread.
        """
        if limit <= 0:
            return []
        params = context_params(conversation_id, limit)

        async def work(conn: AsyncConnection) -> list[StoredMessage]:
            rows = (await conn.execute(_CONTEXT, params)).all()
            return [_message(row) for row in reversed(rows)]

        return await self._tx.read(work)

    async def add(
        self, conversation_id: int, author: Author, text: str, *, role: Role = "user", platform_id: str = ""
    ) -> int:
        """Store a finished message read back from the platform (thread history, a reply chain);
        returns its id. A turn's own question is stored with its reply (``Replies.begin``)."""
        now = utcnow()

        async def work(conn: AsyncConnection) -> int:
            return await insert_message(
                conn, conversation_id, author, text, role=role, platform_id=platform_id, now=now
            )

        return await self._tx.write(work)

    async def known(self, conversation_id: int, platform_ids: Iterable[str]) -> dict[str, KnownMessage]:
        """Which of ``platform_ids`` are stored in the conversation (a whole backfill in one query
        per 500 ids), each with its message id and how many attachment rows it has."""
        wanted = sorted({p for p in platform_ids if p})
        if not wanted:
            return {}

        async def work(conn: AsyncConnection) -> dict[str, KnownMessage]:
            found: dict[str, KnownMessage] = {}
            for chunk in chunks(wanted):
                query = (
                    select(Message.platform_message_id, Message.id, func.count(AttachmentRow.id))
                    .outerjoin(AttachmentRow, AttachmentRow.message_id == Message.id)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.platform_message_id.in_(chunk),
                    )
                    .group_by(Message.platform_message_id, Message.id)
                )
                for platform_id, message_id, count in (await conn.execute(query)).all():
                    found.setdefault(platform_id, KnownMessage(message_id, count))
            return found

        return await self._tx.read(work)

    async def mark_merged(self, conversation_id: int, platform_ids: Iterable[str], into: str) -> int:
        """Mark the user messages ``platform_ids`` as answered together with the later message
        ``into`` (platform ids in this conversation); returns how many were marked."""
        merged = sorted({p for p in platform_ids if p and p != into})
        if not merged or not into:
            return 0

        async def work(conn: AsyncConnection) -> int:
            target = (
                select(func.max(Message.id))
                .where(
                    Message.conversation_id == conversation_id,
                    Message.platform_message_id == into,
                    Message.role == "user",
                )
                .scalar_subquery()
            )
            result = await conn.execute(
                update(Message)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.platform_message_id.in_(merged),
                    Message.role == "user",
                )
                .values(merged_into=target)
            )
            return result.rowcount

        return await self._tx.write(work)


_COLUMNS = (
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
    Message.tool_steps,
    Message.merged_into,
)


def since_reset(conversation: str) -> list[ColumnElement[bool]]:
    """The messages of the conversation whose id is parameter ``conversation``, after its last
    ``/reset``: what a turn's context and a follow-up's files are drawn from."""
    reset_after = (
        select(Conversation.reset_after_message_id)
        .where(Conversation.id == bindparam(conversation))
        .scalar_subquery()
    )
    return [Message.conversation_id == bindparam(conversation), Message.id > reset_after]


def _context_template() -> Select[*tuple[Any, ...]]:
    return (
        select(*_COLUMNS)
        .where(*since_reset("h_conversation"))
        .order_by(Message.id.desc())
        .limit(bindparam("h_limit", type_=Integer))
    )


# Built once, its values as parameters (see tx.insert_new): every turn runs it.
_CONTEXT = _context_template()


def context_params(conversation_id: int, limit: int) -> dict[str, int]:
    return {"h_conversation": conversation_id, "h_limit": limit}


def context_query(conversation_id: int, limit: int) -> Select[*tuple[Any, ...]]:
    """The statement :meth:`History.load` runs, with its values (its query plan is checked in
    the tests)."""
    return _CONTEXT.params(context_params(conversation_id, limit))


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
        tool_steps=tool_steps.decode(row.tool_steps),
        merged_into=row.merged_into,
    )


def attachment_rows(message_id: int, records: Iterable[AttachmentRecord]) -> list[dict[str, Any]]:
    """The attachments table's rows for ``records`` on message ``message_id``."""
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


async def insert_message(
    conn: AsyncConnection,
    conversation_id: int,
    author: Author,
    text: str,
    *,
    role: Role,
    platform_id: str,
    now: datetime,
    records: Sequence[AttachmentRecord] = (),
) -> int:
    """Insert one finished message (and its attachment rows) inside the caller's transaction."""
    result = await conn.execute(
        INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "role": role,
            "author_id": author.id,
            "author_name": author.name,
            "text": text,
            "status": Outcome.COMPLETE.value,
            "model": None,
            "platform_message_id": platform_id,
            "created_at": now,
            "finished_at": now,
        },
    )
    message_id = new_id(result)
    if records:
        await conn.execute(insert(AttachmentRow), attachment_rows(message_id, records))
    await conn.execute(_TOUCH, {"c_id": conversation_id, "updated_at": now})
    return message_id


# Built once (see tx.insert_new): the values travel as parameters.
INSERT_MESSAGE = insert(Message)
_TOUCH = update(Conversation).where(Conversation.id == bindparam("c_id"))
