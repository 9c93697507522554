"""OpenAI chat-completions format (``POST /v1/chat/completions``), as the gateway serves it for
Gemini and every other non-Claude model."""

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

_OUTCOMES = {
    "stop": Outcome.COMPLETE,
    "tool_calls": Outcome.COMPLETE,
    "function_call": Outcome.COMPLETE,
    "length": Outcome.LENGTH,
    "content_filter": Outcome.FILTERED,
    # Raw Gemini reasons some gateways pass through unmapped.
    "safety": Outcome.FILTERED,
    "recitation": Outcome.FILTERED,
    "blocklist": Outcome.FILTERED,
    "prohibited_content": Outcome.FILTERED,
    "spii": Outcome.FILTERED,
    "max_tokens": Outcome.LENGTH,
}


def _data_uri(media_type: str, data: bytes) -> Base64Data:
    return Base64Data(data, f"data:{media_type};base64,")


def _content(turn: Turn) -> str | list[dict[str, Any]]:
    # Plain strings where possible: some upstreams reject list content on assistant turns.
    if all(isinstance(part, TextPart) for part in turn.parts):
        # Separate blocks stay separate: a file's text must not run into the question.
        return "\n\n".join(part.text for part in turn.parts if isinstance(part, TextPart))
    out: list[dict[str, Any]] = []
    for part in turn.parts:
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            out.append({"type": "image_url", "image_url": {"url": _data_uri(part.media_type, part.data)}})
        elif isinstance(part, DocumentPart):
            # The gateway does not fetch URLs in file_data: the bytes travel inline.
            out.append(
                {
                    "type": "file",
                    "file": {"filename": part.name, "file_data": _data_uri(part.media_type, part.data)},
                }
            )
    return out


def build_openai_body(request: ChatRequest) -> dict[str, Any]:
    """The request body as plain JSON data (files inline as base64 text)."""
    body: dict[str, Any] = materialize(lazy_openai_body(request))
    return body


def lazy_openai_body(request: ChatRequest) -> dict[str, Any]:
    """The request body with files as :class:`Base64Data`, encoded only while sending.

    ``thinking_budget`` has no portable field in this format (Gemini thinks through ``-thinking``
    model names or gateway-specific fields): set those through ``extra``."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend({"role": turn.role, "content": _content(turn)} for turn in request.turns if turn.parts)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    body.update(request.extra)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _nested(raw: dict[str, Any], outer: str, inner: str) -> int:
    details = raw.get(outer)
    return _int(details.get(inner)) if isinstance(details, dict) else 0


def parse_openai_usage(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),  # reasoning included, as OpenAI counts
        thinking_tokens=_nested(raw, "completion_tokens_details", "reasoning_tokens"),
        cache_read_tokens=_nested(raw, "prompt_tokens_details", "cached_tokens"),
    )


class OpenAIChatDecoder:
    __slots__ = ("_done", "_secret", "stop_reason", "usage")

    def __init__(self, secret: str | None = None) -> None:
        self.usage = Usage()
        self.stop_reason: str | None = None
        self._done = False
        self._secret = secret

    @property
    def done(self) -> bool:
        return self._done

    @property
    def complete(self) -> bool:
        # A stalled upstream can still send usage and [DONE]; only finish_reason means finished.
        return self.stop_reason is not None

    def feed(self, item: SSEEvent | BareLine) -> list[StreamEvent]:
        if isinstance(item, SSEEvent) and item.data == "[DONE]":
            self._done = True
            return []
        payload = loads(item.text if isinstance(item, BareLine) else item.data)
        if not isinstance(payload, dict):
            return []
        if payload.get("error"):
            raise error_from_stream(payload, secret=self._secret)
        out: list[StreamEvent] = []
        choices = payload.get("choices")
        if choices and isinstance(choices, list) and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta")
            if isinstance(delta, dict):
                thinking = delta.get("reasoning_content") or delta.get("reasoning")
                if thinking and isinstance(thinking, str):
                    out.append(ThinkingDelta(thinking))
                text = delta.get("content")
                if text and isinstance(text, str):
                    out.append(TextDelta(text))
            reason = choice.get("finish_reason")
            if reason and isinstance(reason, str):
                self.stop_reason = reason
        usage = payload.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = parse_openai_usage(usage)
            out.append(UsageReport(self.usage))
        return out

    def finish(self, error: ProviderError | None) -> Finish:
        if self.stop_reason is None:
            return Finish(Outcome.TRUNCATED, None, self.usage, error)
        # finish_reason arrived, so the text is whole even if the connection broke afterwards.
        outcome = _OUTCOMES.get(self.stop_reason.lower(), Outcome.COMPLETE)
        return Finish(outcome, self.stop_reason, self.usage)


class OpenAIChatProvider(StreamingProvider):
    wire_format = "openai"
    path = "/v1/chat/completions"

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        return build_openai_body(request)

    def build_lazy_body(self, request: ChatRequest) -> dict[str, Any]:
        return lazy_openai_body(request)

    def new_decoder(self) -> WireDecoder:
        return OpenAIChatDecoder(self._api_key)
