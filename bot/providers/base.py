"""What every provider (one per wire format) takes and yields.

A provider turns a :class:`ChatRequest` into an async stream of :class:`TextDelta`,
:class:`ThinkingDelta` and :class:`UsageReport` events that always ends with exactly one
:class:`Finish`. Failures before the first token raise :class:`~bot.providers.errors.ProviderError`
(after the retries the policy allows); failures after it end the stream with a ``Finish`` whose
outcome says what happened, so text already shown is never taken back or sent twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.types import Outcome

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    cache: bool = False  # ask for prompt caching up to here (Anthropic ``cache_control``)


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A PDF sent as a document (Anthropic ``document`` block / OpenAI ``file`` part)."""

    data: bytes
    name: str
    media_type: str = "application/pdf"
    cache: bool = False  # ask for prompt caching (Anthropic ``cache_control``)


@dataclass(frozen=True, slots=True)
class ImagePart:
    data: bytes
    media_type: str  # image/png, image/jpeg, image/gif, image/webp
    name: str = ""


Part = TextPart | DocumentPart | ImagePart


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def text(cls, role: Role, text: str) -> Turn:
        return cls(role, (TextPart(text),))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    system: str
    turns: Sequence[Turn]
    max_tokens: int = 4096
    temperature: float | None = None
    thinking_budget: int | None = None  # tokens; None = no thinking requested
    extra: dict[str, object] = field(default_factory=dict)  # gateway-specific body fields


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0  # includes thinking tokens where the format counts them together
    thinking_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: Outcome  # COMPLETE, LENGTH, FILTERED, TRUNCATED or ERROR
    stop_reason: str | None  # as the wire said it (stop, end_turn, length, …) or None
    usage: Usage
    error: Exception | None = None  # the failure that ended a started stream, if any


StreamEvent = TextDelta | ThinkingDelta | UsageReport | Finish


class Provider(Protocol):
    wire_format: str

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
