"""The request a turn sends: the stored history (earlier replies' tool steps replayed where they
happened), the question with its files, the overrides in force and the tools on offer, made into
one :class:`ChatRequest` by the providers' own ``build_request`` (which applies the per-model
options). Also the two conversions of a tool step: as the loop made it, and as the store keeps it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.files import PreparedFiles
from bot.prompt import HistoryEntry, ToolStep, build_turns, system_prompt
from bot.providers.base import ChatRequest, ToolCall, ToolResultPart, ToolSpec
from bot.providers.gateway import build_request
from bot.settings import Settings
from bot.store import Overrides, StoredMessage
from bot.store.rows import StoredCall, StoredStep


@dataclass(frozen=True, slots=True)
class Question:
    """What is asked in this turn, and by whom, where."""

    platform: str
    author_name: str
    text: str  # the question as the model reads it (the files may have replaced it)
    model: str


def history_rows(settings: Settings) -> int:
    """How many stored messages a turn reads as its history.

    The question is stored with the reply row, after the request is built, so everything loaded
    comes before it: the question's own slot of ``PARLEY_HISTORY_TURNS`` stays unused, as it
    always has.
    """
    return settings.parley_history_turns - 1


def build(
    settings: Settings,
    question: Question,
    overrides: Overrides,
    history: Sequence[StoredMessage],
    files: PreparedFiles,
    *,
    tools: Sequence[ToolSpec] = (),
    last_step: bool = False,
) -> ChatRequest:
    """The turn's request: history within ``PARLEY_HISTORY_CHARS``, then the question with its
    files; earlier files lead the turns, where prompt caching pays off. ``tools`` are offered,
    callable unless this is the turn's ``last_step`` (``PARLEY_TOOL_STEPS`` = 1)."""
    # Parley's fixed notes are not something the model said, so they are not history it reads.
    said = [m for m in history if not m.note]
    entries = [HistoryEntry(m.role, m.author_name, m.text, m.status, replayed(m.tool_steps)) for m in said]
    turns = build_turns(
        entries,
        HistoryEntry("user", question.author_name, question.text),
        budget_chars=settings.parley_history_chars,
        current_parts=files.parts,
    )
    system = system_prompt(overrides.system or settings.parley_system_prompt, platform=question.platform)
    return build_request(
        settings,
        question.model,
        system,
        files.lead(turns),
        tools=tools,
        tool_choice="none" if last_step else "auto",
    )


def replayed(steps: Sequence[StoredStep]) -> tuple[ToolStep, ...]:
    """Stored steps as the prompt replays them."""
    return tuple(
        ToolStep(
            step.text,
            tuple(ToolCall(c.id, c.name, c.arguments) for c in step.calls),
            tuple(ToolResultPart(c.id, c.name, c.result, c.is_error) for c in step.calls),
        )
        for step in steps
    )


def stored(steps: Sequence[ToolStep]) -> tuple[StoredStep, ...]:
    """The loop's steps as the store keeps them (each call with its result)."""
    return tuple(
        StoredStep(
            step.text,
            tuple(
                StoredCall(call.id, call.name, call.arguments, result.content, result.is_error)
                for call, result in zip(step.calls, step.results, strict=True)
            ),
        )
        for step in steps
    )
