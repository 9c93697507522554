"""Initial schema: conversations, channel settings, messages, attachments, blobs, events, usage.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A snapshot of bot.store.models at this revision; later models must not change it.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(length=255)
Platform = sa.String(length=32)


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("platform", Platform, nullable=False),
        sa.Column("workspace", Name, nullable=False),
        sa.Column("channel", Name, nullable=False),
        sa.Column("thread", Name, nullable=False),
        sa.Column("model_override", Name, nullable=True),
        sa.Column("system_override", sa.Text(), nullable=True),
        sa.Column("reset_after_message_id", sa.BigInteger(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "platform",
            "workspace",
            "channel",
            "thread",
            name=op.f("uq_conversations_platform_workspace_channel_thread"),
        ),
    )
    op.create_table(
        "channel_settings",
        sa.Column("platform", Platform, nullable=False),
        sa.Column("workspace", Name, nullable=False),
        sa.Column("channel", Name, nullable=False),
        sa.Column("model_override", Name, nullable=True),
        sa.Column("system_override", sa.Text(), nullable=True),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("platform", "workspace", "channel", name=op.f("pk_channel_settings")),
    )
    op.create_table(
        "messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("author_id", Name, nullable=False),
        sa.Column("author_name", Name, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", Name, nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("thinking_tokens", sa.Integer(), nullable=False),
        sa.Column("platform_message_id", Name, nullable=False),
        sa.Column("reply_refs", sa.JSON(), nullable=True),
        sa.Column("surface", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at"),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_conversation_id_id"), "messages", ["conversation_id", "id"])
    op.create_index(
        op.f("ix_messages_conversation_id_platform_message_id"),
        "messages",
        ["conversation_id", "platform_message_id"],
    )
    op.create_index(op.f("ix_messages_status"), "messages", ["status"])

    op.create_table(
        "attachments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("media_type", Name, nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_attachments_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index(op.f("ix_attachments_message_id"), "attachments", ["message_id"])

    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("extracted_text", sa.Text(), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )

    op.create_table(
        "processed_events",
        sa.Column("platform", Platform, nullable=False),
        sa.Column("event_id", Name, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", Name, nullable=False),
        _time("claimed_at"),
        _time("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("platform", "event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(op.f("ix_processed_events_claimed_at"), "processed_events", ["claimed_at"])

    op.create_table(
        "usage",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", BigId, nullable=True),
        sa.Column("conversation_id", BigId, nullable=True),
        sa.Column("platform", Platform, nullable=False),
        sa.Column("workspace", Name, nullable=False),
        sa.Column("user_id", Name, nullable=False),
        sa.Column("model", Name, nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("thinking_tokens", sa.Integer(), nullable=False),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_usage_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_usage_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage")),
    )
    for column in ("user_id", "conversation_id", "model", "workspace", "created_at"):
        op.create_index(op.f(f"ix_usage_{column}"), "usage", [column])


def downgrade() -> None:
    # Dropping a table drops its indexes on every backend.
    for table in (
        "usage",
        "processed_events",
        "blobs",
        "attachments",
        "messages",
        "channel_settings",
        "conversations",
    ):
        op.drop_table(table)
