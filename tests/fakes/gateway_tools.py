"""Tool calls for the fake gateway: scripted calls streamed the way real providers stream them,
and readers for the tool turns a client sends back.

Shapes follow real captures (tests/fixtures/streams: GPT-4o, DeepSeek, Claude):

- OpenAI format: a call opens with a fragment carrying ``index``, ``id``, ``type: "function"`` and
  ``function.name`` with empty ``arguments``; its arguments follow in many small string fragments
  keyed by ``index`` alone. With several calls the fragments interleave by index (``interleave``;
  some providers do, and it is the case a client keyed on anything but the index gets wrong).
  The stream ends with ``finish_reason: "tool_calls"``.
- Anthropic format: text first (its own block), then one ``tool_use`` block per call
  (``input: {}``), an empty ``input_json_delta`` and then the JSON in small ``partial_json``
  fragments, ``content_block_stop``; ``stop_reason: "tool_use"``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

Choices = list[dict[str, Any]]


@dataclass
class FakeToolCall:
    """A call the fake model makes. ``arguments`` as a dict is sent as its JSON; as a string it
    is sent exactly (malformed JSON included). ``id`` None gets a realistic one per format."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str | None = None

    def text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)

    def ident(self, fmt: str) -> str:
        if self.id is None:
            # Fixed per call object, so a test can read it back from the request that follows.
            prefix = "toolu_01" if fmt == "anthropic" else "call_"
            self.id = prefix + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")[:24]
        return self.id


def fragments(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def openai_tool_chunks(calls: list[FakeToolCall], size: int, interleave: bool) -> list[Choices]:
    """The ``choices`` of each OpenAI-format chunk that streams ``calls``."""

    def choice(fragment: dict[str, Any]) -> Choices:
        return [{"index": 0, "delta": {"tool_calls": [fragment]}, "logprobs": None, "finish_reason": None}]

    opening = [
        choice(
            {
                "index": i,
                "id": call.ident("openai"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
        )
        for i, call in enumerate(calls)
    ]
    pieces = [fragments(call.text(), size) for call in calls]
    rest: list[Choices] = []
    if interleave:
        for step in range(max((len(p) for p in pieces), default=0)):
            rest += [
                choice({"index": i, "function": {"arguments": p[step]}})
                for i, p in enumerate(pieces)
                if step < len(p)
            ]
        return [*opening, *rest]
    out: list[Choices] = []
    for i, (first, parts) in enumerate(zip(opening, pieces, strict=True)):
        out.append(first)
        out += [choice({"index": i, "function": {"arguments": part}}) for part in parts]
    return out


def anthropic_tool_events(calls: list[FakeToolCall], size: int, first_index: int) -> list[dict[str, Any]]:
    """The events of the ``tool_use`` blocks that stream ``calls``, from block ``first_index``."""
    events: list[dict[str, Any]] = []
    for offset, call in enumerate(calls):
        index = first_index + offset
        block = {"type": "tool_use", "id": call.ident("anthropic"), "name": call.name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for part in ["", *fragments(call.text(), size)]:
            delta = {"type": "input_json_delta", "partial_json": part}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    return events


# Reading what a client sent.


@dataclass(frozen=True)
class SentResult:
    """A tool result found in a request, in either format."""

    call_id: str
    content: Any
    is_error: bool | None  # None: the format has no flag (OpenAI)


def _messages(body: Any) -> list[dict[str, Any]]:
    messages = body.get("messages") if isinstance(body, dict) else None
    return [m for m in messages or [] if isinstance(m, dict)]


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    return (
        [b for b in content if isinstance(b, dict) and b.get("type") == kind]
        if isinstance(content, list)
        else []
    )


def tool_results(body: Any) -> list[SentResult]:
    """Every tool result in the request, in order: OpenAI ``role: "tool"`` messages, Anthropic
    ``tool_result`` blocks."""
    out: list[SentResult] = []
    for message in _messages(body):
        if message.get("role") == "tool":
            out.append(SentResult(str(message.get("tool_call_id")), message.get("content"), None))
        for block in _blocks(message, "tool_result"):
            out.append(
                SentResult(str(block.get("tool_use_id")), block.get("content"), bool(block.get("is_error")))
            )
    return out


def replayed_calls(body: Any) -> list[tuple[str, str, Any]]:
    """Every call the request's history replays, as (id, name, arguments): OpenAI's arguments
    string, Anthropic's ``input`` object."""
    out: list[tuple[str, str, Any]] = []
    for message in _messages(body):
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            out.append((str(call.get("id")), str(function.get("name")), function.get("arguments")))
        for block in _blocks(message, "tool_use"):
            out.append((str(block.get("id")), str(block.get("name")), block.get("input")))
    return out


def declared_tools(body: Any) -> list[str]:
    """The names of the tools a request declares, in either format."""
    tools = body.get("tools") if isinstance(body, dict) else None
    names = []
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        names.append(str(function.get("name")))
    return names
