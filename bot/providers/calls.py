"""Tool calls assembled from a stream, the same way for both wire formats.

A call arrives in pieces: its id and name first, then its arguments as JSON text in fragments
(OpenAI ``function.arguments`` strings keyed by ``index``; Anthropic ``input_json_delta``
``partial_json`` keyed by content block). A :class:`PendingCall` gathers one call's pieces and
:class:`CallBook` keeps them in the order the model began them. Nothing is parsed here: the
arguments stay the text the model wrote (see :meth:`bot.providers.base.ToolCall.parsed`).
"""

from __future__ import annotations

import json
import logging
import secrets

from bot.providers.base import StreamEvent, ToolCall, ToolCallStarted

log = logging.getLogger("bot.providers")


def _as_text(value: object) -> str:
    """Argument text from a fragment: a string as sent, an object some providers send whole."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return ""


class PendingCall:
    """One call still streaming: its id, name and the argument fragments so far."""

    __slots__ = ("announced", "id", "initial", "name", "ordinal", "parts", "synthetic")

    def __init__(self, ordinal: int, ident: object = None, name: object = None) -> None:
        self.ordinal = ordinal  # 0, 1, … in the order the model began its calls
        self.id = ident if isinstance(ident, str) else ""
        self.name = name if isinstance(name, str) else ""
        self.parts: list[str] = []
        # Arguments that came whole with the start of the call (an Anthropic ``tool_use`` block
        # whose ``input`` is already filled), used when no fragments follow.
        self.initial = ""
        self.synthetic = False  # the id is ours: the provider sent none (yet)
        self.announced = False

    def add_arguments(self, value: object) -> None:
        text = _as_text(value)
        if text:
            self.parts.append(text)

    def adopt(self, ident: object, name: object) -> None:
        """Take an id or name this fragment carries, never overwriting one already known with a
        blank (providers repeat ``"name": ""`` on later fragments)."""
        if isinstance(ident, str) and ident and (not self.id or self.synthetic):
            self.id, self.synthetic = ident, False
        if isinstance(name, str) and name and not self.name:
            self.name = name

    def is_another(self, ident: object) -> bool:
        """A fragment at this call's index carrying a different id starts a new call: some
        providers number every parallel call 0."""
        return (
            isinstance(ident, str)
            and bool(ident)
            and bool(self.id)
            and not self.synthetic
            and ident != self.id
            and bool(self.name)
        )

    def announce(self, out: list[StreamEvent]) -> None:
        """Emit :class:`ToolCallStarted` once, as soon as the name is known."""
        if self.announced or not self.name:
            return
        if not self.id:
            self.id, self.synthetic = f"call_{secrets.token_hex(12)}", True
        self.announced = True
        out.append(ToolCallStarted(self.ordinal, self.id, self.name))

    def build(self) -> ToolCall:
        return ToolCall(self.id, self.name, "".join(self.parts) or self.initial)


class CallBook:
    """The calls of one response, in order, with a lookup by the wire's key for each."""

    __slots__ = ("_by_key", "calls")

    def __init__(self) -> None:
        self.calls: list[PendingCall] = []
        self._by_key: dict[int, PendingCall] = {}

    def __bool__(self) -> bool:
        return bool(self.calls)

    def get(self, key: int) -> PendingCall | None:
        return self._by_key.get(key)

    def open(self, key: int, ident: object = None, name: object = None) -> PendingCall:
        call = PendingCall(len(self.calls), ident, name)
        self.calls.append(call)
        self._by_key[key] = call
        return call

    def close(self, key: int) -> PendingCall | None:
        return self._by_key.pop(key, None)

    def complete(self) -> tuple[ToolCall, ...]:
        """Every named call, in order (a call that never got a name cannot be run or answered)."""
        out = []
        for call in self.calls:
            if not call.name:
                log.warning("gateway stream: dropped a tool call that never named its tool")
                continue
            if not call.id:
                call.id, call.synthetic = f"call_{secrets.token_hex(12)}", True
            out.append(call.build())
        return tuple(out)
