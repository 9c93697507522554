"""Anthropic messages format (``POST /v1/messages``), which the gateway passes through for Claude:
the request body. The stream is read by :mod:`bot.providers.anthropic_decode`."""

from __future__ import annotations

from typing import Any

from bot.providers.anthropic_decode import AnthropicDecoder
from bot.providers.base import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Turn,
)
from bot.providers.body import Base64Data, materialize
from bot.providers.streaming import StreamingProvider, WireDecoder
from bot.providers.tools import has_tool_parts, object_schema, wire_id, with_stubs

__all__ = ["AnthropicDecoder", "AnthropicProvider", "build_anthropic_body", "lazy_anthropic_body"]

ANTHROPIC_VERSION = "2023-06-01"

_CACHE = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API rejects a request with more cache_control blocks


def _b64(data: bytes) -> Base64Data:
    return Base64Data(data)


def _text_block(part: TextPart) -> dict[str, Any] | None:
    if not part.text:
        return None  # the API rejects empty text blocks
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache:
        block["cache_control"] = dict(_CACHE)
    return block


def _document_block(part: DocumentPart) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": part.media_type, "data": _b64(part.data)},
    }
    if part.name:
        block["title"] = part.name
    if part.cache:
        block["cache_control"] = dict(_CACHE)
    return block


def _tool_use_block(part: ToolCallPart) -> dict[str, Any]:
    # input must be an object: arguments the model garbled replay as {} (the core already
    # answered that call with an error result).
    call = part.call
    return {"type": "tool_use", "id": wire_id(call.id), "name": call.name, "input": call.parsed() or {}}


def _tool_result_block(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": wire_id(part.call_id),
        "content": part.content or "(no output)",  # empty content blocks are refused
    }
    if part.is_error:
        block["is_error"] = True
    return block


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return _text_block(part)
    if isinstance(part, ImagePart):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": part.media_type, "data": _b64(part.data)},
        }
    if isinstance(part, DocumentPart):
        return _document_block(part)
    if isinstance(part, ToolCallPart):
        return _tool_use_block(part)
    return _tool_result_block(part)


def _blocks(turn: Turn) -> list[dict[str, Any]]:
    # Results lead their user message: the API wants each tool_use answered at the very start
    # of the next message.
    parts = sorted(turn.parts, key=lambda part: not isinstance(part, ToolResultPart))
    return [block for part in parts if (block := _block(part)) is not None]


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


def _tool_fields(request: ChatRequest) -> dict[str, Any]:
    """``tools`` and ``tool_choice``. Tools the history calls but nobody offers now are declared
    as stubs, and with nothing offered the choice is ``none``: the API refuses tool blocks in a
    request that declares no tools."""
    history = has_tool_parts(request.turns)
    if not request.tools and not history:
        return {}
    specs = with_stubs(request.tools, request.turns) if history else request.tools
    fields: dict[str, Any] = {
        "tools": [
            {
                "name": spec.name,
                "description": spec.description,
                "input_schema": object_schema(spec.parameters),
            }
            for spec in specs
        ]
    }
    if request.tool_choice == "none" or not request.tools:
        fields["tool_choice"] = {"type": "none"}
    return fields


def _ends_in_tool_use(turns: list[Turn]) -> bool:
    last = next((turn for turn in reversed(turns) if turn.role == "assistant"), None)
    return last is not None and any(isinstance(part, ToolCallPart) for part in last.parts)


def lazy_anthropic_body(request: ChatRequest) -> dict[str, Any]:
    """The request body with files as :class:`Base64Data`, encoded only while sending.

    With thinking, the budget counts inside ``max_tokens``; when the configured ``max_tokens``
    does not exceed the budget, the answer keeps its configured room on top of the budget rather
    than having the request rejected. Temperature is left out then, as the API requires.

    Thinking is not asked for while a tool loop runs (the last assistant turn called tools): the
    API then wants that turn to open with the signed thinking block it streamed, which Parley does
    not keep, and refuses the request without it.
    """
    turns = list(request.turns)
    messages = [{"role": turn.role, "content": blocks} for turn in turns if (blocks := _blocks(turn))]
    _keep_last_breakpoints(messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    if request.system:
        body["system"] = request.system
    if request.thinking_budget and not _ends_in_tool_use(turns):
        body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
        if request.max_tokens <= request.thinking_budget:
            body["max_tokens"] = request.thinking_budget + request.max_tokens
    elif request.temperature is not None:
        body["temperature"] = request.temperature
    body.update(_tool_fields(request))
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
