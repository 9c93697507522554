"""Feedback: one 👍 or 👎 per person and reply, changeable, and the answer to "what was wrong?".

A vote is one transaction that says whether anything changed, so that a counter fed from it
counts each vote cast once: the same click again (or delivered twice, or to two instances)
changes nothing. The per-model counts are each person's current vote per reply.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.models import Conversation, FeedbackRow, Message, ProcessedEvent, utcnow
from bot.store.rows import FeedbackTotals, Voted
from bot.store.tx import Transactions, insert_new

VALUES = frozenset({"up", "down"})
COMMENT_MAX_CHARS = 3000


class FeedbackLedger:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def vote(
        self, reply_id: int, user_id: str, value: str, *, platform: str, click_id: str = ""
    ) -> Voted | None:
        """Record ``user_id``'s ``value`` (``up`` or ``down``) on reply ``reply_id``.

        None when there is no such reply of Parley's on ``platform``. ``click_id`` names the
        click (the platform's interaction id): a click seen before is a duplicate delivery and
        changes nothing, even after a later vote.
        """
        if value not in VALUES:
            raise ValueError(f"a vote is up or down, not {value!r}")

        async def work(conn: AsyncConnection) -> Voted | None:
            return await _vote(conn, reply_id, user_id, value, platform, click_id)

        return await self._tx.write(work)

    async def explain(self, reply_id: int, user_id: str, comment: str) -> bool:
        """Keep what ``user_id`` said was wrong with reply ``reply_id``; False if they never voted."""
        text = comment.strip()[:COMMENT_MAX_CHARS]

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                update(FeedbackRow)
                .where(FeedbackRow.reply_id == reply_id, FeedbackRow.user_id == user_id)
                .values(comment=text or None, updated_at=utcnow())
            )
            return result.rowcount

        return await self._tx.write(work) == 1

    async def by_model(self, *, platform: str | None = None) -> list[FeedbackTotals]:
        """Current 👍 and 👎 per model, in model name order."""
        ups = func.coalesce(func.sum(case((FeedbackRow.value == "up", 1), else_=0)), 0)
        downs = func.coalesce(func.sum(case((FeedbackRow.value == "down", 1), else_=0)), 0)
        query = select(FeedbackRow.model, ups.label("up"), downs.label("down"))
        if platform is not None:
            query = query.where(FeedbackRow.platform == platform)
        query = query.group_by(FeedbackRow.model).order_by(FeedbackRow.model)

        async def work(conn: AsyncConnection) -> list[FeedbackTotals]:
            rows = (await conn.execute(query)).all()
            return [FeedbackTotals(row.model, int(row.up), int(row.down)) for row in rows]

        return await self._tx.read(work)

    async def of_reply(self, reply_id: int) -> dict[str, tuple[str, str | None]]:
        """Each voter's current vote on ``reply_id`` and their comment: user id -> (value, comment)."""
        query = select(FeedbackRow.user_id, FeedbackRow.value, FeedbackRow.comment).where(
            FeedbackRow.reply_id == reply_id
        )

        async def work(conn: AsyncConnection) -> dict[str, tuple[str, str | None]]:
            return {row.user_id: (row.value, row.comment) for row in (await conn.execute(query)).all()}

        return await self._tx.read(work)


async def _vote(
    conn: AsyncConnection, reply_id: int, user_id: str, value: str, platform: str, click_id: str
) -> Voted | None:
    now = utcnow()
    reply = (
        await conn.execute(
            select(Message.model, Conversation.platform)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == reply_id, Message.role == "assistant")
        )
    ).first()
    if reply is None or reply.platform != platform:
        return None
    model = reply.model or ""
    if click_id:
        # The click's own exactly-once claim, forgotten with the other claims after a day.
        claim = {
            "platform": platform,
            "event_id": f"vote:{click_id}"[:255],
            "status": "done",
            "owner": "",
            "claimed_at": now,
            "finished_at": now,
        }
        if await insert_new(conn, ProcessedEvent, claim) is None:
            return Voted(reply_id, platform, model, value, changed=False, duplicate=True)
    row = {
        "reply_id": reply_id,
        "user_id": user_id,
        "platform": platform,
        "model": model,
        "value": value,
        "created_at": now,
        "updated_at": now,
    }
    if await insert_new(conn, FeedbackRow, row) is not None:
        return Voted(reply_id, platform, model, value, changed=True)
    # One conditional UPDATE: of racing voters with the same value only one sees a change.
    result = await conn.execute(
        update(FeedbackRow)
        .where(
            FeedbackRow.reply_id == reply_id,
            FeedbackRow.user_id == user_id,
            FeedbackRow.value != value,
        )
        .values(value=value, updated_at=now)
    )
    return Voted(reply_id, platform, model, value, changed=result.rowcount == 1)
