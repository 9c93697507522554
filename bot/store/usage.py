"""Token usage: one row per finished reply (written by ``Replies.finish``), plus one per image
model whose pictures a reply's tools had made, summed on demand for ``/usage`` and
``parley usage``. ``requests`` counts replies: a pictures row is not one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.models import UsageRow
from bot.store.rows import ModelTotals, Totals
from bot.store.tx import Transactions


class UsageLedger:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    async def totals(
        self,
        *,
        user_id: str | None = None,
        conversation_id: int | None = None,
        workspace: str | None = None,
        model: str | None = None,
        platform: str | None = None,
        since: datetime | None = None,
    ) -> Totals:
        """The sums over the replies that match every filter given."""
        filters = _filters(user_id, conversation_id, workspace, model, platform, since)

        async def work(conn: AsyncConnection) -> Totals:
            row = (await conn.execute(select(*_SUMS).where(*filters))).one()
            return Totals(
                int(row.requests),
                int(row.input_tokens),
                int(row.output_tokens),
                int(row.thinking_tokens),
                int(row.images),
            )

        return await self._tx.read(work)

    async def by_model(
        self,
        *,
        user_id: str | None = None,
        conversation_id: int | None = None,
        workspace: str | None = None,
        platform: str | None = None,
        since: datetime | None = None,
    ) -> list[ModelTotals]:
        """The same sums per model, in model name order."""
        filters = _filters(user_id, conversation_id, workspace, None, platform, since)
        query = (
            select(UsageRow.model, *_SUMS).where(*filters).group_by(UsageRow.model).order_by(UsageRow.model)
        )

        async def work(conn: AsyncConnection) -> list[ModelTotals]:
            return [
                ModelTotals(
                    int(row.requests),
                    int(row.input_tokens),
                    int(row.output_tokens),
                    int(row.thinking_tokens),
                    int(row.images),
                    model=row.model,
                )
                for row in (await conn.execute(query)).all()
            ]

        return await self._tx.read(work)


_SUMS = (
    func.coalesce(func.sum(case((UsageRow.images == 0, 1), else_=0)), 0).label("requests"),
    func.coalesce(func.sum(UsageRow.input_tokens), 0).label("input_tokens"),
    func.coalesce(func.sum(UsageRow.output_tokens), 0).label("output_tokens"),
    func.coalesce(func.sum(UsageRow.thinking_tokens), 0).label("thinking_tokens"),
    func.coalesce(func.sum(UsageRow.images), 0).label("images"),
)


def _filters(
    user_id: str | None,
    conversation_id: int | None,
    workspace: str | None,
    model: str | None,
    platform: str | None,
    since: datetime | None,
) -> list[ColumnElement[Any]]:
    wanted: list[tuple[Any, object]] = [
        (UsageRow.user_id, user_id),
        (UsageRow.conversation_id, conversation_id),
        (UsageRow.workspace, workspace),
        (UsageRow.model, model),
        (UsageRow.platform, platform),
    ]
    filters: list[ColumnElement[Any]] = [column == value for column, value in wanted if value is not None]
    if since is not None:
        filters.append(UsageRow.created_at >= since)
    return filters
