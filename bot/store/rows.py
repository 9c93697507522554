"""What the store returns (and the one value it takes in): plain frozen dataclasses, never ORM
objects, so nothing leaks a session or a lazy load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.types import Attachment, ConversationKey, Outcome

Role = Literal["user", "assistant"]


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
class Overrides:
    """The model and system prompt in force for a conversation: its own, else its channel's.
    None means "use the configured default"."""

    model: str | None = None
    system: str | None = None


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
class StoredCall:
    """One tool call of a stored step, with the result the model was given for it."""

    id: str  # the model's id for the call (results refer to it)
    name: str
    arguments: str  # the JSON text the model wrote ("{}" when it was too long to keep)
    result: str  # what the model read back, capped
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class StoredStep:
    """One step of a reply's tool loop: what the model wrote before its calls, and the calls."""

    text: str
    calls: tuple[StoredCall, ...]


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
    tool_steps: tuple[StoredStep, ...] = ()  # a reply's tool loop, oldest step first
    merged_into: int | None = None  # typed in a burst: the message it was answered with

    @property
    def note(self) -> bool:
        """One of Parley's fixed notes (a "busy" refusal, a bare mention's hint): a reply stored
        with no model (""), unlike an answer (its model) or platform context (None)."""
        return self.role == "assistant" and self.model == ""


@dataclass(frozen=True, slots=True)
class KnownMessage:
    """A message already stored under a platform id: its id, and how many attachment rows it has."""

    id: int
    attachments: int


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
    images: int = 0  # pictures tools had made (on their image model's rows)

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


@dataclass(frozen=True, slots=True)
class Voted:
    """What a vote did: ``changed`` False when the person's vote already had this value (or the
    click was a duplicate delivery, ``duplicate``)."""

    reply_id: int
    platform: str
    model: str
    value: str  # up | down
    changed: bool
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class FeedbackTotals:
    """The current votes on one model's replies (each person's last vote per reply)."""

    model: str
    up: int
    down: int
