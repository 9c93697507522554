"""Anthropic messages format (``POST /v1/messages``), which the gateway passes through for Claude."""

from __future__ import annotations

from typing import Any

from bot.providers.base import (
    ChatRequest,
    DocumentPart,
    Finish,
    ImagePart,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    Turn,
    UsageReport,
)
from bot.providers.body import Base64Data, materialize
from bot.providers.classify import error_from_stream
from bot.providers.errors import ProviderError
from bot.providers.sse import BareLine, SSEEvent
from bot.providers.streaming import StreamingProvider, WireDecoder, loads
from bot.types import Outcome, Usage

ANTHROPIC_VERSION = "2023-06-01"

_OUTCOMES = {
    "end_turn": Outcome.COMPLETE,
    "stop_sequence": Outcome.COMPLETE,
    "tool_use": Outcome.COMPLETE,
    "pause_turn": Outcome.COMPLETE,
    "max_tokens": Outcome.LENGTH,
    "model_context_window_exceeded": Outcome.LENGTH,
    "refusal": Outcome.FILTERED,
}


_CACHE = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API rejects a request with more cache_control blocks


def _b64(data: bytes) -> Base64Data:
    return Base64Data(data)


def _blocks(turn: Turn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in turn.parts:
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                text: dict[str, Any] = {"type": "text", "text": part.text}
                if part.cache:
                    text["cache_control"] = dict(_CACHE)
                out.append(text)
        elif isinstance(part, ImagePart):
            out.append(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": part.media_type, "data": _b64(part.data)},
                }
            )
        elif isinstance(part, DocumentPart):
            block: dict[str, Any] = {
                "type": "document",
                "source": {"type": "base64", "media_type": part.media_type, "data": _b64(part.data)},
            }
            if part.name:
                block["title"] = part.name
            if part.cache:
                block["cache_control"] = dict(_CACHE)
            out.append(block)
    return out


def _keep_last_breakpoints(messages: list[dict[str, Any]]) -> None:
    """Drop the earliest cache markers beyond the API's limit: a later breakpoint caches the
    longer prefix, so those are the ones worth keeping."""
    marked = [block for m in messages for block in m["content"] if "cache_control" in block]
    for block in marked[: max(0, len(marked) - MAX_CACHE_BREAKPOINTS)]:
        del block["cache_control"]


def build_anthropic_body(request: ChatRequest) -> dict[str, Any]:
    """The request body as plain JSON data (files inline as base64 text)."""
    body: dict[str, Any] = materialize(lazy_anthropic_body(request))
    return body


def lazy_anthropic_body(request: ChatRequest) -> dict[str, Any]:
    """The request body with files as :class:`Base64Data`, encoded only while sending.

    With thinking, the budget counts inside ``max_tokens``; when the configured ``max_tokens``
    does not exceed the budget, the answer keeps its configured room on top of the budget rather
    than having the request rejected. Temperature is left out then, as the API requires.
    """
    messages = [{"role": turn.role, "content": blocks} for turn in request.turns if (blocks := _blocks(turn))]
    _keep_last_breakpoints(messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    if request.system:
        body["system"] = request.system
    if request.thinking_budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
        if request.max_tokens <= request.thinking_budget:
            body["max_tokens"] = request.thinking_budget + request.max_tokens
    elif request.temperature is not None:
        body["temperature"] = request.temperature
    body.update(request.extra)
    body["stream"] = True
    return body


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


class AnthropicDecoder:
    __slots__ = ("_counts", "_done", "_secret", "stop_reason", "usage")

    def __init__(self, secret: str | None = None) -> None:
        self.usage = Usage()
        self.stop_reason: str | None = None
        self._done = False
        self._secret = secret
        self._counts: dict[str, int] = {}

    @property
    def done(self) -> bool:
        return self._done

    @property
    def complete(self) -> bool:
        # An upstream error may not be forwarded, so only message_stop proves the end.
        return self._done

    def feed(self, item: SSEEvent | BareLine) -> list[StreamEvent]:
        payload = loads(item.text if isinstance(item, BareLine) else item.data)
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or (item.event if isinstance(item, SSEEvent) else None)
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict):
                kind = delta.get("type")
                if kind == "text_delta":
                    return self._text(TextDelta, delta.get("text"))
                if kind == "thinking_delta":
                    return self._text(ThinkingDelta, delta.get("thinking"))
            return []  # signature_delta, input_json_delta, and whatever comes next
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                self._count(message.get("usage"))
            return []
        if kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, dict):
                if block.get("type") == "text":
                    return self._text(TextDelta, block.get("text"))
                if block.get("type") == "thinking":
                    return self._text(ThinkingDelta, block.get("thinking"))
            return []
        if kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop_reason = delta["stop_reason"]
            if self._count(payload.get("usage")):
                return [UsageReport(self.usage)]
            return []
        if kind == "message_stop":
            self._done = True
        elif kind == "error" or (kind is None and "error" in payload):
            raise error_from_stream(payload, secret=self._secret)
        return []

    @staticmethod
    def _text(cls: type[TextDelta] | type[ThinkingDelta], value: object) -> list[StreamEvent]:
        return [cls(value)] if isinstance(value, str) and value else []

    def _count(self, raw: object) -> bool:
        """Merge a usage object (message_start's, then message_delta's cumulative ones)."""
        if not isinstance(raw, dict):
            return False
        counts = self._counts
        for wire, name in (
            ("input_tokens", "input"),
            ("output_tokens", "output"),
            ("cache_read_input_tokens", "cache_read"),
            ("cache_creation_input_tokens", "cache_write"),
        ):
            value = _int(raw.get(wire))
            if value is not None:
                counts[name] = value
        details = raw.get("output_tokens_details")
        if isinstance(details, dict) and (thinking := _int(details.get("thinking_tokens"))) is not None:
            counts["thinking"] = thinking
        self.usage = Usage(
            input_tokens=counts.get("input", 0),
            output_tokens=counts.get("output", 0),  # thinking included, as Anthropic bills it
            thinking_tokens=counts.get("thinking", 0),
            cache_read_tokens=counts.get("cache_read", 0),
            cache_write_tokens=counts.get("cache_write", 0),
        )
        return True

    def finish(self, error: ProviderError | None) -> Finish:
        if not self._done:
            return Finish(Outcome.TRUNCATED, self.stop_reason, self.usage, error)
        outcome = _OUTCOMES.get(self.stop_reason or "", Outcome.COMPLETE)
        return Finish(outcome, self.stop_reason, self.usage)


class AnthropicProvider(StreamingProvider):
    wire_format = "anthropic"
    path = "/v1/messages"

    def headers(self, api_key: str) -> dict[str, str]:
        # The gateway reads the Bearer token; x-api-key keeps a direct Anthropic endpoint working.
        return {**super().headers(api_key), "x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        return build_anthropic_body(request)

    def build_lazy_body(self, request: ChatRequest) -> dict[str, Any]:
        return lazy_anthropic_body(request)

    def new_decoder(self) -> WireDecoder:
        return AnthropicDecoder(self._api_key)
