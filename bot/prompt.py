"""Turns stored history into the model's prompt: system text, attributed turns, a size budget."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.providers.base import Part, TextPart, Turn
from bot.types import Outcome

# Replies that produced no usable text are left out of the prompt: the model should not learn
# from its own error notes.
_USABLE = {Outcome.COMPLETE, Outcome.LENGTH, Outcome.TRUNCATED, Outcome.STOPPED, Outcome.INTERRUPTED}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    role: str  # "user" | "assistant"
    author_name: str
    text: str
    status: str = Outcome.COMPLETE


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

    History is trimmed from the oldest end to ``budget_chars`` in whole user/assistant
    exchanges, so the model never sees an answer without its question; the newest turn is
    always kept, whatever its size. Adjacent turns of one role are merged because the
    Anthropic format requires strict alternation.
    """
    usable = [e for e in history if e.text.strip() and (e.role == "user" or e.status in _USABLE)]
    attributed = _attributed([*usable, current])

    def text_of(entry: HistoryEntry) -> str:
        if entry.role == "user" and attributed:
            return f"[{entry.author_name}] {entry.text}"
        return entry.text

    kept: list[HistoryEntry] = []
    used = len(text_of(current))
    # Walk back exchange by exchange: an assistant turn is kept only with the user turn before it.
    i = len(usable) - 1
    while i >= 0:
        start = i
        while start > 0 and usable[start].role == "assistant":
            start -= 1
        while start > 0 and usable[start - 1].role == "user" and usable[start].role == "user":
            start -= 1
        block = usable[start : i + 1]
        size = sum(len(text_of(e)) for e in block)
        if used + size > budget_chars:
            break
        kept[:0] = block
        used += size
        i = start - 1
    while kept and kept[0].role == "assistant":
        kept.pop(0)

    turns: list[Turn] = []
    for entry in kept:
        _append(turns, Turn.text("user" if entry.role == "user" else "assistant", text_of(entry)))
    question = text_of(current)
    parts: tuple[Part, ...] = (*current_parts, TextPart(question)) if question else tuple(current_parts)
    _append(turns, Turn("user", parts or (TextPart(question),)))
    return turns


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
