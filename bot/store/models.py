"""The history store's tables. ``migrations/versions`` must build exactly this schema.

A test compares these models with the migrated database (Alembic autogenerate), so a change
here without a migration fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so later migrations can drop/alter them by name on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; plain INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Ids and names that platforms hand us (Slack/Discord ids, console thread names, model names).
Name = String(255)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones and returns naive values, which
    are UTC by construction here, so they are made aware again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        # SQLite compares the stored text, so every value must be written in the same (UTC) form.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "thread"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(Name)
    channel: Mapped[str] = mapped_column(Name)
    thread: Mapped[str] = mapped_column(Name)
    model_override: Mapped[str | None] = mapped_column(Name)
    system_override: Mapped[str | None] = mapped_column(Text)
    # /reset: context starts after this message id; history before it stays stored.
    reset_after_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelSettings(Base):
    __tablename__ = "channel_settings"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace: Mapped[str] = mapped_column(Name, primary_key=True)
    channel: Mapped[str] = mapped_column(Name, primary_key=True)
    model_override: Mapped[str | None] = mapped_column(Name)
    system_override: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The context query: WHERE conversation_id = ? AND id > ? ORDER BY id DESC LIMIT n.
        Index(None, "conversation_id", "id"),
        # Backfill de-duplication: is this platform message stored already?
        Index(None, "conversation_id", "platform_message_id"),
        # Crash recovery looks for the few rows still "streaming".
        Index(None, "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(BigId, ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    author_id: Mapped[str] = mapped_column(Name, default="")
    author_name: Mapped[str] = mapped_column(Name, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # an Outcome value
    model: Mapped[str | None] = mapped_column(Name)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    thinking_tokens: Mapped[int] = mapped_column(Integer, default=0)
    platform_message_id: Mapped[str] = mapped_column(Name, default="")  # the user message's id
    reply_refs: Mapped[list[str] | None] = mapped_column(JSON)  # refs of the reply's parts
    surface: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what an edit after a crash needs
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    # A reply's tool loop: each step's text, calls and (capped) results, replayed in later prompts
    # (bot/store/tool_steps.py has the shape). On the row it belongs to, so the context query
    # reads it without a second statement; None for replies that called no tool.
    tool_steps: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # A user message typed in a burst and answered together with a later one: that message's id.
    merged_into: Mapped[int | None] = mapped_column(BigInteger)


class AttachmentRow(Base):
    __tablename__ = "attachments"
    __table_args__ = (Index(None, "message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name)
    media_type: Mapped[str | None] = mapped_column(Name)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the bytes in blobs, once fetched


class Blob(Base):
    """A stored file, content-addressed and shared by every attachment with the same content.

    Its bytes are in :class:`BlobBytes`, so this row stays small to update.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    extracted_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlobBytes(Base):
    """A blob's bytes, written and deleted with its :class:`Blob` row.

    ``data`` must stay the last column: SQLite fills a ``zeroblob`` in place without a copy of
    the file only when the blob ends its row (``Store.put_blob``).
    """

    __tablename__ = "blob_bytes"

    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("blobs.sha256", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ProcessedEvent(Base):
    """Exactly-once delivery: the primary key makes a second claim of the same event fail."""

    __tablename__ = "processed_events"
    __table_args__ = (Index(None, "claimed_at"),)

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(Name, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # claimed | done
    owner: Mapped[str] = mapped_column(Name)
    claimed_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class UsageRow(Base):
    __tablename__ = "usage"
    __table_args__ = (
        Index(None, "user_id"),
        Index(None, "conversation_id"),
        Index(None, "model"),
        Index(None, "workspace"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Usage outlives deleted conversations: it is what was spent.
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="SET NULL")
    )
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(Name)
    user_id: Mapped[str] = mapped_column(Name)
    model: Mapped[str] = mapped_column(Name)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    thinking_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Pictures a tool had made (generate_image), on a row of their own per image model; such a
    # row is not a reply and counts no tokens.
    images: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FeedbackRow(Base):
    """One person's 👍 or 👎 on one reply: changeable, never two (the unique pair)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("reply_id", "user_id"), Index(None, "model"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reply_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(Name)
    # Copied from the reply and its conversation, so the counts need no join.
    platform: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(Name)
    value: Mapped[str] = mapped_column(String(8))  # up | down
    comment: Mapped[str | None] = mapped_column(Text)  # "what was wrong?", when asked and answered
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- several instances on one database (docs/deploy.md, "Scaling out") ------------------------


class Instance(Base):
    """A ``parley run`` process that is alive while its ``seen_at`` keeps moving (a heartbeat).

    On PostgreSQL the others take an instance silent for ``PARLEY_INSTANCE_TIMEOUT`` for dead:
    its replies are closed and its waiting turns answered elsewhere. On SQLite the table only
    lets ``parley doctor`` see that several processes share one file.
    """

    __tablename__ = "instances"
    __table_args__ = (Index(None, "seen_at"),)

    process: Mapped[str] = mapped_column(Name, primary_key=True)  # fresh for every start
    name: Mapped[str | None] = mapped_column(Name)  # PARLEY_INSTANCE_ID, when set
    host: Mapped[str] = mapped_column(Name, default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    platforms: Mapped[str] = mapped_column(Name, default="")  # "discord,slack": adapters it runs
    started_at: Mapped[datetime] = mapped_column()
    seen_at: Mapped[datetime] = mapped_column()


class TurnRow(Base):
    """A turn admitted on a shared database, from its claim until a minute after it ended.

    The conversation's queue: turns run one at a time, oldest ``queued_at`` first; the one
    ``running`` holds the conversation's lease. ``origin`` is what the adapter needs to rebuild
    the message in another process, should this one die while the turn waits. Ended turns stay
    a minute for the per-minute admission limits, then they are pruned.
    """

    __tablename__ = "turns"
    __table_args__ = (
        Index(None, "conversation", "state"),
        Index(None, "owner"),
        Index(None, "author"),
        Index(None, "state", "queued_at"),
    )

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(Name, primary_key=True)
    conversation: Mapped[str] = mapped_column(Text)  # str(ConversationKey)
    workspace: Mapped[str] = mapped_column(Name)
    channel: Mapped[str] = mapped_column(Name)
    author: Mapped[str] = mapped_column(Name)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str] = mapped_column(Name)  # the process answering it ("" once handed back)
    state: Mapped[str] = mapped_column(String(16))  # waiting | running | done
    queued_at: Mapped[datetime] = mapped_column()  # the database's clock, so instances agree
    finished_at: Mapped[datetime | None] = mapped_column()
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    revived: Mapped[int] = mapped_column(Integer, default=0)  # times another process took it over


class BudgetSlot(Base):
    """One platform call counted against a shared rate budget (``bot/store/budgets.py``).

    ``ends_at`` is when it stops counting, in seconds on the database's clock: while ``held``
    (sent, no answer yet) a provisional bound, then the answer's time plus the window. Only
    PostgreSQL uses it; the reservation itself is the ``parley_take_budget`` function.
    """

    __tablename__ = "budget_slots"
    __table_args__ = (Index(None, "key", "ends_at"), Index(None, "grant_id"), Index(None, "owner"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(Name)
    grant_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(Name)
    span: Mapped[float] = mapped_column(Float)  # window + margin, seconds
    ends_at: Mapped[float] = mapped_column(Float)
    held: Mapped[bool] = mapped_column(Boolean)
