"""Reading an Anthropic messages stream: text and thinking blocks, ``tool_use`` blocks, usage.

Events are dispatched on their ``type``: ``message_start`` (first usage), ``content_block_start``
(a text, thinking or ``tool_use`` block begins), ``content_block_delta`` (``text_delta``,
``thinking_delta``, ``input_json_delta``; ``signature_delta`` and later kinds are ignored),
``content_block_stop`` (a tool call's JSON is whole), ``message_delta`` (stop reason, cumulative
usage), ``message_stop`` and ``error``. Event types nobody has taught us are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bot.providers.base import Finish, StreamEvent, TextDelta, ThinkingDelta, UsageReport
from bot.providers.calls import CallBook
from bot.providers.classify import error_from_stream
from bot.providers.errors import ProviderError
from bot.providers.sse import BareLine, SSEEvent
from bot.providers.streaming import loads
from bot.types import Outcome, Usage

_OUTCOMES = {
    "end_turn": Outcome.COMPLETE,
    "stop_sequence": Outcome.COMPLETE,
    "tool_use": Outcome.COMPLETE,
    "pause_turn": Outcome.COMPLETE,
    "max_tokens": Outcome.LENGTH,
    "model_context_window_exceeded": Outcome.LENGTH,
    "refusal": Outcome.FILTERED,
}

_USAGE_FIELDS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_read_input_tokens", "cache_read"),
    ("cache_creation_input_tokens", "cache_write"),
)

_NOTHING: tuple[StreamEvent, ...] = ()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _text(cls: type[TextDelta] | type[ThinkingDelta], value: object) -> Sequence[StreamEvent]:
    return [cls(value)] if isinstance(value, str) and value else _NOTHING


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("index")
    return index if isinstance(index, int) else -1


class AnthropicDecoder:
    """Per-response state: stop reason, merged usage, the ``tool_use`` blocks being assembled."""

    __slots__ = ("_calls", "_counts", "_done", "_secret", "stop_reason", "usage")

    def __init__(self, secret: str | None = None) -> None:
        self.usage = Usage()
        self.stop_reason: str | None = None
        self._done = False
        self._secret = secret
        self._counts: dict[str, int] = {}
        self._calls = CallBook()

    @property
    def done(self) -> bool:
        return self._done

    @property
    def complete(self) -> bool:
        # An upstream error may not be forwarded, so only message_stop proves the end.
        return self._done

    def feed(self, item: SSEEvent | BareLine) -> Sequence[StreamEvent]:
        payload = loads(item.text if isinstance(item, BareLine) else item.data)
        if not isinstance(payload, dict):
            return _NOTHING
        kind = payload.get("type") or (item.event if isinstance(item, SSEEvent) else None)
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            return handler(self, payload)
        if kind is None and "error" in payload:
            raise error_from_stream(payload, secret=self._secret)
        return _NOTHING

    # One method per event type.
    def _block_delta(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return _NOTHING
        kind = delta.get("type")
        if kind == "text_delta":
            return _text(TextDelta, delta.get("text"))
        if kind == "thinking_delta":
            return _text(ThinkingDelta, delta.get("thinking"))
        if kind == "input_json_delta":
            call = self._calls.get(_index(payload))
            if call is not None:
                call.add_arguments(delta.get("partial_json"))
        return _NOTHING  # signature_delta, and whatever comes next

    def _message_start(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        message = payload.get("message")
        if isinstance(message, dict):
            self._count(message.get("usage"))
        return _NOTHING

    def _block_start(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        block = payload.get("content_block")
        if not isinstance(block, dict):
            return _NOTHING
        kind = block.get("type")
        if kind == "text":
            return _text(TextDelta, block.get("text"))
        if kind == "thinking":
            return _text(ThinkingDelta, block.get("thinking"))
        if kind == "tool_use":
            return self._tool_start(_index(payload), block)
        return _NOTHING  # redacted_thinking, server tools' blocks: not ours to run

    def _tool_start(self, index: int, block: dict[str, Any]) -> Sequence[StreamEvent]:
        call = self._calls.open(index, block.get("id"), block.get("name"))
        given = block.get("input")
        if isinstance(given, dict) and given:
            call.initial = json.dumps(given, ensure_ascii=False)
        out: list[StreamEvent] = []
        call.announce(out)
        return out

    def _block_stop(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        self._calls.close(_index(payload))  # later deltas at that index belong to no call
        return _NOTHING

    def _message_delta(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        delta = payload.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
            self.stop_reason = delta["stop_reason"]
        if self._count(payload.get("usage")):
            return [UsageReport(self.usage)]
        return _NOTHING

    def _message_stop(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        self._done = True
        return _NOTHING

    def _error(self, payload: dict[str, Any]) -> Sequence[StreamEvent]:
        raise error_from_stream(payload, secret=self._secret)

    def _count(self, raw: object) -> bool:
        """Merge a usage object (message_start's, then message_delta's cumulative ones)."""
        if not isinstance(raw, dict):
            return False
        counts = self._counts
        for wire, name in _USAGE_FIELDS:
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
            # Cut off, perhaps mid-call: no call is handed on, since its input may be partial.
            return Finish(Outcome.TRUNCATED, self.stop_reason, self.usage, error)
        outcome = _OUTCOMES.get(self.stop_reason or "", Outcome.COMPLETE)
        calls = self._calls.complete() if outcome is Outcome.COMPLETE and self._calls else ()
        return Finish(outcome, self.stop_reason, self.usage, tool_calls=calls)


_Handler = Callable[[AnthropicDecoder, dict[str, Any]], Sequence[StreamEvent]]
_HANDLERS: dict[str, _Handler] = {
    "content_block_delta": AnthropicDecoder._block_delta,
    "message_start": AnthropicDecoder._message_start,
    "content_block_start": AnthropicDecoder._block_start,
    "content_block_stop": AnthropicDecoder._block_stop,
    "message_delta": AnthropicDecoder._message_delta,
    "message_stop": AnthropicDecoder._message_stop,
    "error": AnthropicDecoder._error,
}
