"""Conversations (one per thread or DM) and the settings that apply to them: per-conversation and
per-channel model and system prompt overrides, /reset, and whether Parley has answered there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import StoreError
from bot.store.models import ChannelSettings, Conversation, Message, utcnow
from bot.store.rows import ConversationRow, Overrides
from bot.store.tx import Transactions, insert_new, new_id
from bot.types import ConversationKey


class Conversations:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def find(self, key: ConversationKey) -> ConversationRow | None:
        """The conversation of ``key``, or None if there is none (nothing is created)."""

        async def work(conn: AsyncConnection) -> ConversationRow | None:
            row = (await conn.execute(_BY_KEY, _key_params(key))).first()
            return None if row is None else _conversation(row)

        return await self._tx.read(work)

    async def find_or_create(self, key: ConversationKey) -> ConversationRow:
        existing = await self.find(key)
        if existing is not None:
            return existing

        async def create(conn: AsyncConnection) -> ConversationRow:
            return await _find_or_create_in(conn, key)

        return await self._tx.write(create)

    async def has_reply(self, key: ConversationKey) -> bool:
        """Whether Parley has replied in this conversation (a followed thread: adapters answer
        follow-ups there without a mention)."""

        async def work(conn: AsyncConnection) -> bool:
            query = (
                select(Message.id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(*_here(), Message.role == "assistant")
                .limit(1)
            )
            return (await conn.execute(query, _key_params(key))).first() is not None

        return await self._tx.read(work)

    async def overrides(self, key: ConversationKey) -> Overrides:
        """The model and system prompt in force in ``key``: the conversation's, else its channel's.

        One statement, creating nothing (a channel's settings can be shown before anyone has
        talked there). Read fresh, so a ``/model`` in another thread of the channel applies at once.
        """

        async def work(conn: AsyncConnection) -> Overrides:
            row = (await conn.execute(_OVERRIDES, _key_params(key))).one()
            return Overrides(
                model=row.model if row.model is not None else row.c_model,
                system=row.system if row.system is not None else row.c_system,
            )

        return await self._tx.read(work)

    async def set_model(self, conversation_id: int, model: str | None) -> None:
        """This conversation's model; None clears it (its channel's, or the default, applies)."""
        await self._update(conversation_id, model_override=model)

    async def set_system(self, conversation_id: int, system: str | None) -> None:
        """This conversation's system prompt; None clears it."""
        await self._update(conversation_id, system_override=system)

    async def set_channel_model(self, key: ConversationKey, model: str | None) -> None:
        """The default model of ``key``'s channel (``key.thread`` is ignored); None clears it."""
        await self._set_channel(key, model_override=model)

    async def set_channel_system(self, key: ConversationKey, system: str | None) -> None:
        """The default system prompt of ``key``'s channel; None clears it."""
        await self._set_channel(key, system_override=system)

    async def reset(self, conversation_id: int) -> None:
        """Start the conversation's context over; the history before stays stored."""
        newest = (
            select(func.coalesce(func.max(Message.id), 0))
            .where(Message.conversation_id == conversation_id)
            .scalar_subquery()
        )
        await self._update(conversation_id, reset_after_message_id=newest)

    async def _update(self, conversation_id: int, **values: Any) -> None:
        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(**values, updated_at=utcnow())
            )

        await self._tx.write(work)

    async def _set_channel(self, key: ConversationKey, **values: Any) -> None:
        now = utcnow()

        async def work(conn: AsyncConnection) -> None:
            result = await conn.execute(
                update(ChannelSettings).where(*_channel_here()).values(**values, updated_at=now),
                _channel_params(key),
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
            await self._tx.write(work)
        except IntegrityError:
            await self._tx.write(work)  # a concurrent first write won; now the UPDATE applies


_COLUMNS = (
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


# A key's conversation and its channel's settings are found by parameters (``_key_params``), so
# the statements every turn runs are built once (see tx.insert_new).
_KEY_PARAMS = ("k_platform", "k_workspace", "k_channel", "k_thread")


def _key_params(key: ConversationKey) -> dict[str, str]:
    return dict(zip(_KEY_PARAMS, (key.platform, key.workspace, key.channel, key.thread), strict=True))


def _channel_params(key: ConversationKey) -> dict[str, str]:
    """For a statement that filters only on the channel (an UPDATE takes no unused parameter)."""
    return dict(zip(_KEY_PARAMS[:3], (key.platform, key.workspace, key.channel), strict=True))


def _here() -> list[ColumnElement[bool]]:
    """The key's conversation (``_key_params``)."""
    columns = (Conversation.platform, Conversation.workspace, Conversation.channel, Conversation.thread)
    return [column == bindparam(name) for column, name in zip(columns, _KEY_PARAMS, strict=True)]


def _channel_here() -> list[ColumnElement[bool]]:
    """The key's channel settings (``_key_params`` or ``_channel_params``)."""
    columns = (ChannelSettings.platform, ChannelSettings.workspace, ChannelSettings.channel)
    return [column == bindparam(name) for column, name in zip(columns, _KEY_PARAMS, strict=False)]


_BY_KEY = select(*_COLUMNS).where(*_here())


def _overrides_query() -> Select[Any]:
    here, channel = _here(), _channel_here()
    return select(
        select(Conversation.model_override).where(*here).scalar_subquery().label("model"),
        select(Conversation.system_override).where(*here).scalar_subquery().label("system"),
        select(ChannelSettings.model_override).where(*channel).scalar_subquery().label("c_model"),
        select(ChannelSettings.system_override).where(*channel).scalar_subquery().label("c_system"),
    )


_OVERRIDES = _overrides_query()


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


async def _find_or_create_in(conn: AsyncConnection, key: ConversationKey) -> ConversationRow:
    """The conversation of ``key``, created if missing, inside the caller's transaction.

    The insert comes first: this runs after a read found nothing, so it usually creates the row
    (one statement); a conversation created meanwhile is then read.
    """
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
    result = await insert_new(conn, Conversation, values)
    if result is not None:
        return ConversationRow(new_id(result), key, None, None, 0, now, now)
    # Created since the caller's read (another turn, or another process on PostgreSQL, whose
    # commit the insert waited for).
    row = (await conn.execute(_BY_KEY, _key_params(key))).first()
    if row is None:
        raise StoreError(f"database: conversation {key} vanished while being created")
    return _conversation(row)
