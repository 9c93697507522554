"""Feedback on replies, and user messages merged into a later one.

``feedback``: one row per person and reply (👍 ``up`` or 👎 ``down``, changeable), with the
platform and model copied from the reply for the counts, and the answer to "what was wrong?".
``messages.merged_into``: a message typed in a burst and answered together with a later message
of the same person points at that message (PARLEY_MERGE_WINDOW).

Revision ID: 0004
Revises: 0003
Create Date: 2026-06-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(length=255)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("reply_id", BigId, nullable=False),
        sa.Column("user_id", Name, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("model", Name, nullable=False),
        sa.Column("value", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["messages.id"], name=op.f("fk_feedback_reply_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("reply_id", "user_id", name=op.f("uq_feedback_reply_id_user_id")),
    )
    op.create_index(op.f("ix_feedback_model"), "feedback", ["model"], unique=False)
    # Nullable without a default: a plain ALTER on every backend, no table rebuild.
    op.add_column("messages", sa.Column("merged_into", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # A plain ALTER on SQLite too (3.35+): no batch rebuild of messages, whose rows others reference.
    op.drop_column("messages", "merged_into")
    op.drop_index(op.f("ix_feedback_model"), table_name="feedback")
    op.drop_table("feedback")
