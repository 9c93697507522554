"""OpenAI chat-completions format (``POST /v1/chat/completions``), as the gateway serves it for
Gemini and every other non-Claude model: the request body. The stream is read by
:mod:`bot.providers.openai_decode`."""

from __future__ import annotations

from typing import Any

from bot.providers.base import ChatRequest, DocumentPart, ImagePart, TextPart, Turn
from bot.providers.body import Base64Data, materialize
from bot.providers.openai_decode import OpenAIChatDecoder, parse_openai_usage
from bot.providers.streaming import StreamingProvider, WireDecoder

__all__ = [
    "OpenAIChatDecoder",
    "OpenAIChatProvider",
    "build_openai_body",
    "lazy_openai_body",
    "parse_openai_usage",
]


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


class OpenAIChatProvider(StreamingProvider):
    wire_format = "openai"
    path = "/v1/chat/completions"

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        return build_openai_body(request)

    def build_lazy_body(self, request: ChatRequest) -> dict[str, Any]:
        return lazy_openai_body(request)

    def new_decoder(self) -> WireDecoder:
        return OpenAIChatDecoder(self._api_key)
