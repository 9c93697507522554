"""Neutral types that every adapter hands to the core.

An adapter turns a platform event into an :class:`IncomingMessage` and gives the core a
:class:`~bot.render.surface.ReplySurface` to answer on; nothing else crosses the seam.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.render.surface import ReplySurface


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives. ``thread`` is "" for a conversation that is the whole channel (a DM)."""

    platform: str  # "slack" | "discord" | "console"
    workspace: str  # Slack team id, Discord guild id ("" for DMs), "" for the console
    channel: str
    thread: str = ""

    def __str__(self) -> str:
        return ":".join((self.platform, self.workspace or "-", self.channel, self.thread or "-"))


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    name: str
    is_bot: bool = False


# Downloads at most ``max_bytes`` and returns the bytes; raises bot.files errors on refusal.
Fetcher = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file on a platform message, fetched only when the core decides it needs it."""

    name: str
    declared_type: str | None
    size: int | None
    fetch: Fetcher
    source_id: str = ""  # the platform's id for the file, for de-duplication in the thread


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """A message the adapter read from the platform (thread backfill, reply chain), oldest first."""

    author: Author
    text: str
    from_assistant: bool = False
    attachments: Sequence[Attachment] = ()
    platform_id: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model request used, as the gateway reported them."""

    input_tokens: int = 0
    output_tokens: int = 0  # includes thinking tokens where the format counts them together
    thinking_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class Outcome(enum.StrEnum):
    """How a reply ended; stored on the message and shown to the user when not COMPLETE."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    LENGTH = "length"  # the model hit its token limit
    FILTERED = "filtered"  # content filter or refusal
    TRUNCATED = "truncated"  # the stream ended without a stop reason
    ERROR = "error"  # failed (before or after the first token)
    STOPPED = "stopped"  # a user pressed Stop
    INTERRUPTED = "interrupted"  # shutdown or crash mid-reply


@dataclass(slots=True)
class IncomingMessage:
    key: ConversationKey
    event_id: str  # platform event id, for exactly-once; unique per platform
    author: Author
    text: str  # mention stripped
    surface: ReplySurface
    attachments: Sequence[Attachment] = ()
    context: Sequence[ContextMessage] = ()
    platform_message_id: str = ""
    model: str | None = None  # a one-off model choice (console --model); else the conversation's
    # What the adapter needs to rebuild this message in another process (plain JSON: Slack's
    # event, Discord's channel and message ids), should the process that took it stop before
    # its turn came (several instances on one database). None: it cannot be rebuilt.
    origin: Mapping[str, Any] | None = None


@dataclass(slots=True)
class ReplyResult:
    """How a turn ended, as :meth:`ConversationService.handle` returns it."""

    outcome: Outcome
    text: str  # the model's answer (no notes)
    shown: str  # what the user finally saw
    model: str
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
