"""OpenAI chat-completions format (``POST /v1/chat/completions``), as the gateway serves it for
Gemini and every other non-Claude model: the request body. The stream is read by
:mod:`bot.providers.openai_decode`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from bot.providers.openai_decode import OpenAIChatDecoder, parse_openai_usage
from bot.providers.streaming import StreamingProvider, WireDecoder
from bot.providers.tools import object_schema, openai_arguments, result_text, wire_id

__all__ = [
    "OpenAIChatDecoder",
    "OpenAIChatProvider",
    "build_openai_body",
    "lazy_openai_body",
    "parse_openai_usage",
]


def _data_uri(media_type: str, data: bytes) -> Base64Data:
    return Base64Data(data, f"data:{media_type};base64,")


def _file_part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": _data_uri(part.media_type, part.data)}}
    if isinstance(part, DocumentPart):
        # The gateway does not fetch URLs in file_data: the bytes travel inline.
        return {
            "type": "file",
            "file": {"filename": part.name, "file_data": _data_uri(part.media_type, part.data)},
        }
    return None  # tool parts travel as messages of their own


def _content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    # Plain strings where possible: some upstreams reject list content on assistant turns.
    if all(isinstance(part, TextPart) for part in parts):
        # Separate blocks stay separate: a file's text must not run into the question.
        return "\n\n".join(part.text for part in parts if isinstance(part, TextPart))
    return [block for part in parts if (block := _file_part(part)) is not None]


def _assistant(turn: Turn) -> dict[str, Any]:
    calls = [part.call for part in turn.parts if isinstance(part, ToolCallPart)]
    if not calls:
        return {"role": "assistant", "content": _content(turn.parts)}
    text = "\n\n".join(part.text for part in turn.parts if isinstance(part, TextPart) and part.text)
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": wire_id(call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": openai_arguments(call)},
            }
            for call in calls
        ],
    }


def _user(turn: Turn) -> list[dict[str, Any]]:
    """One ``tool`` message per result (they must follow the assistant's calls directly), then
    a user message for anything else the turn holds."""
    messages: list[dict[str, Any]] = [
        {"role": "tool", "tool_call_id": wire_id(part.call_id), "content": result_text(part)}
        for part in turn.parts
        if isinstance(part, ToolResultPart)
    ]
    rest = [part for part in turn.parts if not isinstance(part, ToolResultPart)]
    if rest:
        messages.append({"role": turn.role, "content": _content(rest)})
    return messages


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for turn in request.turns:
        if not turn.parts:
            continue
        if turn.role == "assistant":
            messages.append(_assistant(turn))
        else:
            messages.extend(_user(turn))
    return messages


def _tools(request: ChatRequest) -> dict[str, Any]:
    """``tools`` and ``tool_choice``. With nothing offered nothing is declared: this format
    takes tool history without declarations."""
    if not request.tools:
        return {}
    fields: dict[str, Any] = {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": object_schema(spec.parameters),
                },
            }
            for spec in request.tools
        ]
    }
    if request.tool_choice == "none":
        fields["tool_choice"] = "none"
    return fields


def build_openai_body(request: ChatRequest) -> dict[str, Any]:
    """The request body as plain JSON data (files inline as base64 text)."""
    body: dict[str, Any] = materialize(lazy_openai_body(request))
    return body


def lazy_openai_body(request: ChatRequest) -> dict[str, Any]:
    """The request body with files as :class:`Base64Data`, encoded only while sending.

    ``thinking_budget`` has no portable field in this format (Gemini thinks through ``-thinking``
    model names or gateway-specific fields): set those through ``extra``."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request),
        "max_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    body.update(_tools(request))
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
