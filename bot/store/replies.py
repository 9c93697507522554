"""Replies from the first write of a turn to its last: begun (with the question and the event done,
in one transaction), where its messages are, finished (with its usage row), and — after a crash —
found still streaming and marked interrupted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, bindparam, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import StoreError
from bot.store.events import mark_done
from bot.store.history import INSERT_MESSAGE, insert_message
from bot.store.models import Conversation, Message, UsageRow, utcnow
from bot.store.rows import AttachmentRecord, StoredStep, StreamingReply
from bot.store.tool_steps import encode as encode_steps
from bot.store.tx import Transactions, new_id
from bot.types import Author, ConversationKey, Outcome, Usage

_ERROR_MAX_CHARS = 2000
# Credentials that upstream error messages sometimes echo back.
_SECRETS = re.compile(
    r"(?i)\b(?:bearer\s+\S+|xox[abposr]-[\w-]+|xapp-[\w-]+|sk-[\w-]{8,}|(?:api[_-]?key|token|password)=\S+)"
)


class Replies:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def begin(
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
        """A turn's writes before its answer, in one transaction: the question (with its
        attachment rows), the reply row in the streaming state (whose id is returned) and, for
        ``event`` = (platform, event id), the event's claim marked done."""
        now = utcnow()
        records = list(attachments)

        async def work(conn: AsyncConnection) -> int:
            await insert_message(
                conn,
                conversation_id,
                author,
                question,
                role="user",
                platform_id=platform_id,
                now=now,
                records=records,
            )
            reply_id = await insert_reply(conn, conversation_id, model, surface_info)
            if event is not None:
                await mark_done(conn, *event)
            return reply_id

        return await self._tx.write(work)

    async def set_refs(
        self, reply_id: int, refs: Sequence[str], surface_info: Mapping[str, Any] | None = None
    ) -> None:
        """Remember where the reply's parts were posted, so a crash can be cleaned up after."""
        values: dict[str, Any] = {"reply_refs": list(refs)}
        if surface_info is not None:
            values["surface"] = dict(surface_info)

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(_REPLY, {"r_id": reply_id, **values})

        await self._tx.write(work)

    async def finish(
        self,
        reply_id: int,
        text: str,
        outcome: Outcome,
        *,
        usage: Usage | None = None,
        author_id: str = "",
        refs: Sequence[str] | None = None,
        error: str | None = None,
        surface_info: Mapping[str, Any] | None = None,
        tool_steps: Sequence[StoredStep] = (),
        images: Mapping[str, int] | None = None,
    ) -> None:
        """Store the reply's final text and outcome, its tool steps, and its usage row, in one
        transaction.

        ``author_id`` is whom the usage is charged to (the author of the turn); ``refs`` and
        ``surface_info`` replace what :meth:`set_refs` stored; ``error`` is kept with anything
        that looks like a credential masked. ``images`` counts the pictures tools had made, by
        image model: each model gets a usage row of its own.
        """
        if outcome is Outcome.STREAMING:
            raise ValueError("Replies.finish needs a final outcome, not STREAMING")
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
            "tool_steps": encode_steps(tool_steps),
        }
        if refs is not None:
            values["reply_refs"] = list(refs)
        if surface_info is not None:
            values["surface"] = dict(surface_info)

        charge: dict[str, Any] = {
            "u_reply": reply_id,
            "u_user": author_id,
            "u_input": tokens.input_tokens,
            "u_output": tokens.output_tokens,
            "u_thinking": tokens.thinking_tokens,
            "u_at": now,
        }
        pictures = {m: n for m, n in (images or {}).items() if n > 0}

        async def work(conn: AsyncConnection) -> None:
            if (await conn.execute(_REPLY, {"r_id": reply_id, **values})).rowcount != 1:
                raise StoreError(f"database: no reply with id {reply_id}")
            # The usage row takes its conversation, platform and workspace from the reply's own
            # rows in the same statement.
            await conn.execute(_USAGE, charge)
            if pictures:
                await _charge_pictures(conn, reply_id, author_id, now, pictures)

        await self._tx.write(work)

    async def streaming(self, *, platform: str, limit: int = 100) -> list[StreamingReply]:
        """Replies on ``platform`` still marked streaming, oldest first: crashed, or still being
        written (recovery decides which)."""
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
            .where(Message.status == Outcome.STREAMING.value, Conversation.platform == platform)
            .order_by(Message.id)
            .limit(limit)
        )

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

        return await self._tx.read(work)

    async def mark_interrupted(self, reply_id: int, text: str | None = None) -> bool:
        """Mark a reply that is still streaming as interrupted; False if it had finished.

        ``text``: what the reply showed when it stopped (read back from the platform), if known.
        """
        values: dict[str, Any] = {"status": Outcome.INTERRUPTED.value, "finished_at": utcnow()}
        if text is not None:
            values["text"] = text

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                update(Message)
                .where(Message.id == reply_id, Message.status == Outcome.STREAMING.value)
                .values(**values)
            )
            return result.rowcount

        return await self._tx.write(work) == 1


def clean_error(detail: str | None) -> str | None:
    """Bounded, with anything that looks like a credential masked: error text is shown and kept."""
    if detail is None:
        return None
    return _SECRETS.sub("***", detail)[:_ERROR_MAX_CHARS]


async def insert_reply(
    conn: AsyncConnection, conversation_id: int, model: str, surface_info: Mapping[str, Any] | None
) -> int:
    """Insert a reply row in the streaming state inside the caller's transaction; returns its id."""
    result = await conn.execute(
        INSERT_MESSAGE,
        {
            "conversation_id": conversation_id,
            "role": "assistant",
            "author_id": "",
            "author_name": "",
            "text": "",
            "status": Outcome.STREAMING.value,
            "model": model,
            "platform_message_id": "",
            "surface": dict(surface_info) if surface_info is not None else None,
            "created_at": utcnow(),
        },
    )
    return new_id(result)


async def _charge_pictures(
    conn: AsyncConnection, reply_id: int, author_id: str, now: datetime, pictures: Mapping[str, int]
) -> None:
    """A usage row per image model that made pictures for the reply."""
    where = (
        select(Message.conversation_id, Conversation.platform, Conversation.workspace)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id == reply_id)
    )
    row = (await conn.execute(where)).one()
    charged = {
        "message_id": reply_id,
        "conversation_id": row.conversation_id,
        "platform": row.platform,
        "workspace": row.workspace,
        "user_id": author_id,
        "created_at": now,
    }
    await conn.execute(insert(UsageRow), [{**charged, "model": m, "images": n} for m, n in pictures.items()])


def _usage_from_reply() -> Executable:
    """INSERT INTO usage ... SELECT from the reply's row and its conversation's: one statement."""
    columns = UsageRow.__table__.c
    source = (
        select(
            Message.id,
            Message.conversation_id,
            Conversation.platform,
            Conversation.workspace,
            bindparam("u_user", type_=columns.user_id.type),
            func.coalesce(Message.model, ""),
            bindparam("u_input", type_=columns.input_tokens.type),
            bindparam("u_output", type_=columns.output_tokens.type),
            bindparam("u_thinking", type_=columns.thinking_tokens.type),
            bindparam("u_at", type_=columns.created_at.type),
            literal(0, type_=columns.images.type),
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id == bindparam("u_reply"))
    )
    names = [
        "message_id",
        "conversation_id",
        "platform",
        "workspace",
        "user_id",
        "model",
        "input_tokens",
        "output_tokens",
        "thinking_tokens",
        "created_at",
        "images",
    ]
    return insert(UsageRow).from_select(names, source, include_defaults=False)


# Built once, their values as parameters (see tx.insert_new): every turn runs them.
_REPLY = update(Message).where(Message.id == bindparam("r_id"))
_USAGE = _usage_from_reply()
