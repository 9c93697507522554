"""Generation as a unit: provider events in, an answer, its thinking, usage and outcome out, shown
live through a sink; and the request a turn sends, built through the providers' build_request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.files import PreparedFiles
from bot.generation import MIN_ANSWER_CAP, Generation, generate
from bot.options import ModelOptions
from bot.providers.base import (
    ChatRequest,
    Finish,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    Turn,
    UsageReport,
)
from bot.providers.errors import ProviderError, RateLimitedError
from bot.render.surface import THINKING_PLACEHOLDER
from bot.request import Question, build
from bot.settings import Settings
from bot.store import Overrides, StoredMessage
from bot.types import Outcome, Usage

USAGE = Usage(input_tokens=12, output_tokens=3)


@dataclass
class Scripted:
    """A provider that yields the given events, optionally waiting before each."""

    events: Sequence[StreamEvent | Exception]
    pause: float = 0.0
    closed: bool = False
    wire_format: str = "openai"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            for event in self.events:
                if self.pause:
                    await asyncio.sleep(self.pause)
                if isinstance(event, Exception):
                    raise event
                yield event
        finally:
            self.closed = True

    async def aclose(self) -> None:
        return None


@dataclass
class Recorder:
    shown: list[str] = field(default_factory=list)
    checkpoints: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, text: str) -> None:
        self.shown.append(text)
        self.changed.set()

    async def checkpoint(self) -> None:
        self.checkpoints += 1


REQUEST = ChatRequest(model="m", system="", turns=(Turn.text("user", "hi"),), max_tokens=100)


async def test_the_answer_grows_in_the_sink_and_the_finish_says_how_it_ended() -> None:
    provider = Scripted(
        [TextDelta("Hel"), TextDelta("lo."), UsageReport(USAGE), Finish(Outcome.COMPLETE, "stop", USAGE)]
    )
    sink = Recorder()
    result = await generate(provider, REQUEST, sink)
    assert (result.answer, result.outcome, result.usage, result.error) == (
        "Hello.",
        Outcome.COMPLETE,
        USAGE,
        None,
    )
    assert sink.shown == ["Hel", "Hello."]
    assert sink.checkpoints == 4  # after every event
    assert result.first_token_at is not None and provider.closed


async def test_thinking_shows_a_placeholder_unless_it_is_to_be_shown() -> None:
    events = [ThinkingDelta("Let me see.\nYes."), TextDelta("42"), Finish(Outcome.COMPLETE, "stop", USAGE)]
    hidden = Recorder()
    result = await generate(Scripted(events), REQUEST, hidden)
    assert hidden.shown == [THINKING_PLACEHOLDER, "42"]
    assert result.thinking == "Let me see.\nYes." and result.answer == "42"
    shown = Recorder()
    await generate(Scripted(events), REQUEST, shown, show_thinking=True)
    assert shown.shown == ["> Let me see.\n> Yes.", "> Let me see.\n> Yes.\n\n42"]


async def test_an_answer_past_the_cap_is_cut_and_its_stream_closed() -> None:
    provider = Scripted([TextDelta("x" * 60_000), TextDelta("y" * 60_000), TextDelta("never read")])
    sink = Recorder()
    result = await generate(provider, REQUEST, sink)
    assert result.outcome is Outcome.LENGTH
    assert len(result.answer) == MIN_ANSWER_CAP and result.answer.endswith("y")
    assert sink.shown[-1] == result.answer and provider.closed


async def test_a_failure_is_an_outcome_not_an_exception() -> None:
    refused = await generate(Scripted([RateLimitedError("busy")]), REQUEST, Recorder())
    assert refused.outcome is Outcome.ERROR and isinstance(refused.error, ProviderError)
    broken = await generate(Scripted([TextDelta("half"), ValueError("bug")]), REQUEST, Recorder())
    assert (broken.answer, broken.outcome) == ("half", Outcome.ERROR) and isinstance(broken.error, ValueError)


async def test_a_cancelled_generation_leaves_what_came_so_far() -> None:
    provider = Scripted([TextDelta("first "), TextDelta("second "), TextDelta("third")], pause=0.05)
    so_far, sink = Generation(), Recorder()
    task = asyncio.create_task(generate(provider, REQUEST, sink, into=so_far))
    while "second" not in so_far.answer:
        sink.changed.clear()
        await asyncio.wait_for(sink.changed.wait(), 5)
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() and so_far.answer == "first second " and provider.closed


def test_the_request_carries_history_question_files_overrides_and_model_options() -> None:
    settings = Settings(
        parley_system_prompt="Be kind.",
        parley_models={"big": ModelOptions(max_tokens=999, temperature=0.2)},
    )
    now = datetime.now(UTC)
    history = [
        StoredMessage(1, 1, "user", "U1", "Ann", "earlier question", Outcome.COMPLETE, None, "", now, now),
        StoredMessage(2, 1, "assistant", "", "", "earlier answer", Outcome.COMPLETE, "big", "", now, now),
    ]
    files = PreparedFiles(parts=[TextPart("file text")], question="and now?")
    request = build(
        settings, Question("slack", "Ann", "and now?", "big"), Overrides("big", None), history, files
    )
    assert (request.model, request.max_tokens, request.temperature) == ("big", 999, 0.2)
    assert "Be kind." in request.system
    assert [t.role for t in request.turns] == ["user", "assistant", "user"]
    assert request.turns[-1].parts == (TextPart("file text"), TextPart("and now?"))
    terse = build(settings, Question("slack", "Ann", "q", "small"), Overrides(None, "Be terse."), [], files)
    assert "Be terse." in terse.system and "Be kind." not in terse.system
    assert terse.max_tokens == settings.parley_max_tokens
