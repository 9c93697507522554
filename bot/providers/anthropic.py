"""Anthropic messages format (``POST /v1/messages``), which the gateway passes through for Claude:
the request body. The stream is read by :mod:`bot.providers.anthropic_decode`."""

from __future__ import annotations

from typing import Any

from bot.providers.anthropic_decode import AnthropicDecoder
from bot.providers.base import ChatRequest, DocumentPart, ImagePart, TextPart, Turn
from bot.providers.body import Base64Data, materialize
from bot.providers.streaming import StreamingProvider, WireDecoder

__all__ = ["AnthropicDecoder", "AnthropicProvider", "build_anthropic_body", "lazy_anthropic_body"]

ANTHROPIC_VERSION = "2023-06-01"

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
