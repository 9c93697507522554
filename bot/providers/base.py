"""What every provider (one per wire format) takes and yields.

A provider turns a :class:`ChatRequest` into an async stream of :class:`TextDelta`,
:class:`ThinkingDelta` and :class:`UsageReport` events that always ends with exactly one
:class:`Finish`. Failures before the first token raise :class:`~bot.providers.errors.ProviderError`
(after the retries the policy allows); failures after it end the stream with a ``Finish`` whose
outcome says what happened, so text already shown is never taken back or sent twice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.types import Outcome, Usage

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


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: its name, one paragraph on what it does, and the JSON Schema
    (an ``object`` schema) of its arguments. Each wire format declares it in its own shape."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made, assembled from the stream (OpenAI ``tool_calls`` fragments by
    index, Anthropic ``tool_use`` + ``input_json_delta``)."""

    id: str
    name: str
    arguments: str  # the JSON text exactly as the model wrote it; it may be malformed

    def parsed(self) -> dict[str, Any] | None:
        """The arguments as a JSON object, or None when the model wrote something else."""
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """In an assistant turn: a call the model made (after any text it wrote first)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """In the user turn right after the calls: what one call gave back. OpenAI sends each as a
    ``role: "tool"`` message, Anthropic as a leading ``tool_result`` block (``is_error``)."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


Part = TextPart | DocumentPart | ImagePart | ToolCallPart | ToolResultPart


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
    tools: tuple[ToolSpec, ...] = ()  # offered to the model
    # "none": the model may not call a tool (the last step of a turn); the declarations may still
    # be sent where the format needs them beside tool history.
    tool_choice: Literal["auto", "none"] = "auto"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """The model has named a tool it is calling (its arguments still streaming): enough for the
    live reply's status line. The complete calls come in :attr:`Finish.tool_calls`."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: Outcome  # COMPLETE, LENGTH, FILTERED, TRUNCATED or ERROR
    stop_reason: str | None  # as the wire said it (stop, end_turn, length, …) or None
    usage: Usage
    error: Exception | None = None  # the failure that ended a started stream, if any
    # The calls the model made, in order, when it stopped to call tools (stop_reason
    # "tool_calls" / "tool_use"; outcome COMPLETE).
    tool_calls: tuple[ToolCall, ...] = ()


StreamEvent = TextDelta | ThinkingDelta | UsageReport | ToolCallStarted | Finish


class Provider(Protocol):
    wire_format: str

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
