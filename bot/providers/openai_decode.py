"""Reading an OpenAI chat-completions stream: every content shape, reasoning, tool calls, usage.

OpenAI-compatible providers do not agree on ``choices[0].delta``. ``content`` may be a string,
``null``, or a list of typed parts: ``{"type": "text", "text": …}`` is answer text;
``{"type": "thinking", "thinking": [{"type": "text", "text": …}]}`` (Mistral's reasoning models)
and ``reasoning`` parts are thinking, and their text may nest further lists of parts. Reasoning
may also come beside the content as ``reasoning_content`` (DeepSeek, Gemini through the gateway,
xAI) or ``reasoning`` (Groq, OpenRouter, Ollama); ``refusal`` is the answer of a model that
declines. Everything is emitted in stream order; a part type nobody has taught us is ignored
(noted once at debug level), never a crash and never a guess.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.providers.base import (
    Finish,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    UsageReport,
)
from bot.providers.calls import CallBook, PendingCall
from bot.providers.classify import error_from_stream
from bot.providers.errors import ProviderError
from bot.providers.sse import BareLine, SSEEvent
from bot.providers.streaming import loads
from bot.types import Outcome, Usage

log = logging.getLogger("bot.providers")

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

# Part types whose text is the model's reasoning, and the field each keeps it in (falling back
# to ``text``/``content``).
_THINKING_PARTS = frozenset({"thinking", "reasoning", "reasoning_text", "reasoning_content"})
_TEXT_PARTS = frozenset({"text", "output_text"})
_unknown_logged: set[str] = set()


def _note_unknown(kind: object) -> None:
    name = str(kind)[:40]
    if name not in _unknown_logged:
        _unknown_logged.add(name)
        log.debug("gateway stream: ignored a content part of type %r", name)


def _emit(text: str, thinking: bool, out: list[StreamEvent]) -> None:
    if text:
        out.append(ThinkingDelta(text) if thinking else TextDelta(text))


def walk_parts(value: object, thinking: bool, out: list[StreamEvent]) -> None:
    """Events for a content value: a string, or a list of parts that may nest further lists.

    ``thinking`` says what plain text inside this value is: inside a thinking part, a ``text``
    part is still thinking.
    """
    if isinstance(value, str):
        _emit(value, thinking, out)
    elif isinstance(value, list):
        for item in value:
            walk_parts(item, thinking, out)
    elif isinstance(value, dict):
        _part(value, thinking, out)


def _part(part: dict[str, Any], thinking: bool, out: list[StreamEvent]) -> None:
    kind = part.get("type")
    if not isinstance(kind, str | None):
        _note_unknown(kind)
    elif kind in _TEXT_PARTS:
        walk_parts(part.get("text"), thinking, out)
    elif kind in _THINKING_PARTS:
        inner = part.get(kind)
        if inner is None:
            inner = part.get("text", part.get("content"))
        walk_parts(inner, True, out)
    elif kind is None and isinstance(part.get("text"), str):
        _emit(part["text"], thinking, out)  # a bare {"text": …}
    else:
        _note_unknown(kind)


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
    """Per-response state: stop reason, usage, the tool calls being assembled."""

    __slots__ = ("_calls", "_done", "_secret", "stop_reason", "usage")

    def __init__(self, secret: str | None = None) -> None:
        self.usage = Usage()
        self.stop_reason: str | None = None
        self._done = False
        self._secret = secret
        self._calls = CallBook()

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
            self._choice(choices[0], out)
        usage = payload.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = parse_openai_usage(usage)
            out.append(UsageReport(self.usage))
        return out

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, out)
        reason = choice.get("finish_reason")
        if reason and isinstance(reason, str):
            self.stop_reason = reason

    def _delta(self, delta: dict[str, Any], out: list[StreamEvent]) -> None:
        # Some servers send the same reasoning under both names: take one.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            walk_parts(reasoning, True, out)
        content = delta.get("content")
        if isinstance(content, str):
            if content:  # the common case, once per token: no walk
                out.append(TextDelta(content))
        elif content:
            walk_parts(content, False, out)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            out.append(TextDelta(refusal))
        fragments = delta.get("tool_calls")
        if fragments and isinstance(fragments, list):
            self._tool_fragments(fragments, out)

    def _tool_fragments(self, fragments: list[Any], out: list[StreamEvent]) -> None:
        """Partial calls keyed by ``index``: id, type and name come with an index's first
        fragment, argument text with the later ones; indexes may interleave."""
        for position, fragment in enumerate(fragments):
            if not isinstance(fragment, dict):
                continue
            function = fragment.get("function")
            function = function if isinstance(function, dict) else {}
            ident, name = fragment.get("id"), function.get("name")
            call = self._slot(fragment.get("index"), position, ident, name)
            call.adopt(ident, name)
            call.add_arguments(function.get("arguments"))
            call.announce(out)

    def _slot(self, index: object, position: int, ident: object, name: object) -> PendingCall:
        """The call a fragment continues, or a new one."""
        positional = not isinstance(index, int)
        key = position if not isinstance(index, int) else index
        call = self._calls.get(key)
        if call is None or call.is_another(ident):
            return self._calls.open(key)
        if positional and name and call.parts:
            # No index: a fragment naming a tool after this position's call has its arguments
            # is the next call (providers that send each call whole).
            return self._calls.open(key)
        return call

    def finish(self, error: ProviderError | None) -> Finish:
        if self.stop_reason is None:
            # Cut off, perhaps mid-call: no call is handed on, since its arguments may be partial.
            return Finish(Outcome.TRUNCATED, None, self.usage, error)
        # finish_reason arrived, so the answer is whole even if the connection broke afterwards.
        outcome = _OUTCOMES.get(self.stop_reason.lower(), Outcome.COMPLETE)
        calls = self._calls.complete() if outcome is Outcome.COMPLETE and self._calls else ()
        return Finish(outcome, self.stop_reason, self.usage, tool_calls=calls)
