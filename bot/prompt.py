"""Turns stored history into the model's prompt: system text, attributed turns, a size budget, and
the tool steps of earlier replies replayed where they happened."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.providers.base import Part, TextPart, ToolCall, ToolCallPart, ToolResultPart, Turn
from bot.types import Outcome

# Replies that produced no usable text are left out of the prompt: the model should not learn
# from its own error notes.
_USABLE = {Outcome.COMPLETE, Outcome.LENGTH, Outcome.TRUNCATED, Outcome.STOPPED, Outcome.INTERRUPTED}
# How a message of the assistant's that opens the history is put to it (see build_turns).
EARLIER_OWN_MESSAGE = "(Earlier in this conversation you wrote:)\n\n"


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One step of a reply's tool loop: what the model wrote before its calls, the calls, and the
    result of each (in the same order). As turns: the assistant's text and calls, then a user
    turn of the results."""

    text: str
    calls: tuple[ToolCall, ...]
    results: tuple[ToolResultPart, ...]

    def turns(self) -> list[Turn]:
        lead = (TextPart(self.text),) if self.text.strip() else ()
        calls = tuple(ToolCallPart(call) for call in self.calls)
        return [Turn("assistant", (*lead, *calls)), Turn("user", self.results)]

    @property
    def size(self) -> int:
        """Characters it adds to a prompt (what the history budget counts)."""
        calls = sum(len(call.name) + len(call.arguments) for call in self.calls)
        return len(self.text) + calls + sum(len(result.content) for result in self.results)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    role: str  # "user" | "assistant"
    author_name: str
    text: str  # an assistant's whole answer, the text of its tool steps included
    status: str = Outcome.COMPLETE
    steps: tuple[ToolStep, ...] = ()  # an assistant reply's tool loop, oldest first


def system_prompt(base: str, *, platform: str, today: dt.date | None = None) -> str:
    date = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    where = {
        "slack": "a Slack workspace (Slack shows standard Markdown)",
        "discord": "a Discord server (Discord shows Markdown but not tables)",
        "console": "a terminal",
    }.get(platform, platform)
    return (
        f"{base}\n\nToday's date is {date}. You are talking in {where}. "
        "When several people talk in one thread, each of their messages starts with the "
        "speaker's name in square brackets."
    )


def _attributed(entries: Sequence[HistoryEntry]) -> bool:
    return len({e.author_name for e in entries if e.role == "user"}) > 1


def build_turns(
    history: Sequence[HistoryEntry],
    current: HistoryEntry,
    *,
    budget_chars: int,
    current_parts: Sequence[Part] = (),
) -> list[Turn]:
    """The turns for one request, oldest first, ending with ``current``.

    History is trimmed to ``budget_chars``: first the tool steps of the oldest replies go (their
    answers stay), then whole user/assistant exchanges from the oldest end, so the model never
    sees an answer without its question; the newest turn is always kept, whatever its size.
    Adjacent turns of one role are merged because the Anthropic format requires strict
    alternation.
    """
    usable = [e for e in history if (e.text.strip() or e.steps) and (e.role == "user" or e.status in _USABLE)]
    attributed = _attributed([*usable, current])

    def text_of(entry: HistoryEntry) -> str:
        if entry.role == "user" and attributed:
            return f"[{entry.author_name}] {entry.text}"
        return entry.text

    def size_of(entry: HistoryEntry) -> int:
        return len(text_of(entry)) + sum(step.size for step in entry.steps)

    used = len(text_of(current))
    usable = _without_old_steps(usable, budget_chars - used, size_of)
    kept: list[HistoryEntry] = []
    # Walk back exchange by exchange: an assistant turn is kept only with the user turn before it.
    i = len(usable) - 1
    while i >= 0:
        start = i
        while start > 0 and usable[start].role == "assistant":
            start -= 1
        while start > 0 and usable[start - 1].role == "user" and usable[start].role == "user":
            start -= 1
        block = usable[start : i + 1]
        size = sum(size_of(e) for e in block)
        if used + size > budget_chars:
            break
        kept[:0] = block
        used += size
        i = start - 1
    turns: list[Turn] = []
    # The oldest kept message can be the assistant's own (a reply to Parley's message, a thread
    # Parley started). Both formats must open with a user turn, so it is quoted to the model as
    # what it said earlier, not dropped: "what did you mean by this?" needs it.
    while kept and kept[0].role == "assistant":
        _append(turns, Turn.text("user", EARLIER_OWN_MESSAGE + kept.pop(0).text))
    for entry in kept:
        if entry.role == "user":
            _append(turns, Turn.text("user", text_of(entry)))
            continue
        for step in entry.steps:
            for turn in step.turns():
                _append(turns, turn)
        rest = _after_steps(entry.text, entry.steps)
        if rest.strip():
            _append(turns, Turn.text("assistant", rest))
    question = text_of(current)
    parts: tuple[Part, ...] = (*current_parts, TextPart(question)) if question else tuple(current_parts)
    _append(turns, Turn("user", parts or (TextPart(question),)))
    return turns


def _without_old_steps(
    entries: list[HistoryEntry], room: int, size_of: Callable[[HistoryEntry], int]
) -> list[HistoryEntry]:
    """``entries`` with the tool steps of the oldest replies left out while they overflow ``room``:
    bulky fetched pages go before any question or answer does. A reply left without its steps
    and without text is left out whole."""
    total = sum(size_of(e) for e in entries)
    out = list(entries)
    for index, entry in enumerate(out):
        if total <= room:
            break
        if entry.steps:
            total -= sum(step.size for step in entry.steps)
            out[index] = replace(entry, steps=())
    return [e for e in out if e.text.strip() or e.steps]


def _after_steps(text: str, steps: Sequence[ToolStep]) -> str:
    """The part of an answer written after its tool steps (each step's text was shown first)."""
    rest = text
    for step in steps:
        lead = step.text.strip()
        if lead and rest.lstrip().startswith(lead):
            rest = rest.lstrip()[len(lead) :]
    return rest.strip()


def _append(turns: list[Turn], turn: Turn) -> None:
    if turns and turns[-1].role == turn.role:
        previous = turns.pop()
        turns.append(Turn(turn.role, _join(previous.parts, turn.parts)))
    else:
        turns.append(turn)


def _join(first: tuple[Part, ...], second: tuple[Part, ...]) -> tuple[Part, ...]:
    if first and second and isinstance(first[-1], TextPart) and isinstance(second[0], TextPart):
        return (*first[:-1], TextPart(f"{first[-1].text}\n\n{second[0].text}"), *second[1:])
    return (*first, *second)
