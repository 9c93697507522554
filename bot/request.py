"""The request a turn sends: the stored history, the question with its files, and the overrides in
force, made into one :class:`ChatRequest` by the providers' own ``build_request`` (which applies
the per-model options). Tool history will join the turns here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.files import PreparedFiles
from bot.prompt import HistoryEntry, build_turns, system_prompt
from bot.providers.base import ChatRequest
from bot.providers.gateway import build_request
from bot.settings import Settings
from bot.store import Overrides, StoredMessage


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
) -> ChatRequest:
    """The turn's request: history within ``PARLEY_HISTORY_CHARS``, then the question with its
    files; earlier files lead the turns, where prompt caching pays off."""
    entries = [HistoryEntry(m.role, m.author_name, m.text, m.status) for m in history]
    turns = build_turns(
        entries,
        HistoryEntry("user", question.author_name, question.text),
        budget_chars=settings.parley_history_chars,
        current_parts=files.parts,
    )
    system = system_prompt(overrides.system or settings.parley_system_prompt, platform=question.platform)
    return build_request(settings, question.model, system, files.lead(turns))
