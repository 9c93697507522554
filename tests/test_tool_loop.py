"""The tool loop as a unit: a scripted model and a tool box that records what it was asked.

Model → calls → results → model again; text before and between calls kept in the answer; the
status line live but never final; the step limit (the last request may call nothing); calls of
one step at once; Stop cancelling a running tool; usage summed and pictures counted; each call
on behalf of the asking user within the reply's time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bot.generation import Generation, generate
from bot.prompt import ToolStep
from bot.providers.base import (
    ChatRequest,
    Finish,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolCallStarted,
    ToolResultPart,
    ToolSpec,
    Turn,
    UsageReport,
)
from bot.tool_loop import ToolUse, status_line, with_status, without_status
from bot.tools import OutFile, ToolContext, ToolOutcome, ToolUsage
from bot.types import Author, ConversationKey, Outcome, Usage

KEY = ConversationKey("slack", "T1", "C1", "171.1")
ADA = Author("U1", "Ada")
SPEC = ToolSpec("read_url", "Read a page", {"type": "object", "properties": {"url": {"type": "string"}}})
REQUEST = ChatRequest(
    model="m", system="", turns=(Turn.text("user", "what does it say?"),), max_tokens=100, tools=(SPEC,)
)


def calls(*names: str) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(f"call_{i}", name, '{"url": "https://example.com/news"}') for i, name in enumerate(names)
    )


def step(
    *events: StreamEvent, usage: Usage = Usage(10, 2), tool_calls: Sequence[ToolCall] = ()
) -> list[StreamEvent]:
    started = [ToolCallStarted(i, c.id, c.name) for i, c in enumerate(tool_calls)]
    return [
        *events,
        *started,
        UsageReport(usage),
        Finish(Outcome.COMPLETE, "stop", usage, tool_calls=tuple(tool_calls)),
    ]


@dataclass
class Model:
    """A provider answering each request with the next script, recording the requests."""

    scripts: list[list[StreamEvent]]
    requests: list[ChatRequest] = field(default_factory=list)
    wire_format: str = "openai"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        for event in script:
            await asyncio.sleep(0)
            yield event

    async def aclose(self) -> None:
        return None


@dataclass
class Box:
    """A tool box: each call waits ``pause`` (or for ``gate``), then answers with its URL."""

    pause: float = 0.0
    gate: asyncio.Event | None = None
    files: tuple[OutFile, ...] = ()
    contexts: list[ToolContext] = field(default_factory=list)
    running: int = 0
    most_at_once: int = 0
    cancelled: int = 0

    def specs(self) -> tuple[ToolSpec, ...]:
        return (SPEC,)

    def status(self, call: ToolCall) -> str:
        url = (call.parsed() or {}).get("url")
        return f"Reading {url}" if url else "Reading a web page"

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        self.contexts.append(ctx)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.pause)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        usage = ToolUsage("img-model", images=len(self.files)) if self.files else None
        return ToolOutcome(ToolResultPart(call.id, call.name, f"page text for {call.id}"), self.files, usage)


@dataclass
class Recorder:
    shown: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, text: str) -> None:
        self.shown.append(text)
        self.changed.set()

    async def checkpoint(self) -> None:
        return None

    async def until(self, predicate: object, within: float = 5.0) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + within
        while not predicate():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))


def use(box: Box, steps: int = 6, deadline: float | None = None) -> ToolUse:
    return ToolUse(box, KEY, ADA, steps, deadline)


async def test_calls_run_and_their_results_go_back_to_the_model() -> None:
    model = Model(
        [
            step(TextDelta("Let me read it."), tool_calls=calls("read_url")),
            step(TextDelta("It says the harbour opens in May."), usage=Usage(30, 8)),
        ]
    )
    sink = Recorder()
    result = await generate(model, REQUEST, sink, tools=use(Box()))

    assert (result.outcome, result.answer) == (
        Outcome.COMPLETE,
        "Let me read it.\n\nIt says the harbour opens in May.",
    )
    assert result.usage == Usage(40, 10)  # both requests
    first, second = model.requests
    assert (first.tool_choice, second.tool_choice) == ("auto", "auto")
    assert second.turns[:1] == first.turns
    assert second.turns[1] == Turn(
        "assistant", (TextPart("Let me read it."), ToolCallPart(calls("read_url")[0]))
    )
    assert second.turns[2] == Turn("user", (ToolResultPart("call_0", "read_url", "page text for call_0"),))
    assert result.steps == [
        ToolStep(
            "Let me read it.",
            calls("read_url"),
            (ToolResultPart("call_0", "read_url", "page text for call_0"),),
        )
    ]
    # The status line showed while the tool ran (first while the model named it), never after.
    assert "Let me read it.\n\n_Reading a web page…_" in sink.shown
    assert "Let me read it.\n\n_Reading https://example.com/news…_" in sink.shown
    assert sink.shown[-1] == result.answer


async def test_the_step_limit_holds_and_the_last_request_may_call_nothing() -> None:
    model = Model([step(tool_calls=calls("read_url"))])  # calls a tool every time it is asked
    result = await generate(model, REQUEST, Recorder(), tools=use(Box(), steps=3))
    assert [r.tool_choice for r in model.requests] == ["auto", "auto", "none"]
    assert all(r.tools == (SPEC,) for r in model.requests)  # still declared beside the history
    assert len(result.steps) == 2
    assert result.note is not None  # it called anyway on the last step: said, not run
    one = Model([step(tool_calls=calls("read_url"))])
    single = await generate(one, REQUEST, Recorder(), tools=use(Box(), steps=1))
    assert len(one.requests) == 1 and single.steps == []


async def test_the_calls_of_one_step_run_at_once() -> None:
    gate = asyncio.Event()
    box = Box(gate=gate)
    model = Model([step(tool_calls=calls("read_url", "read_url", "read_url")), step(TextDelta("done"))])
    sink = Recorder()
    task = asyncio.create_task(generate(model, REQUEST, sink, tools=use(box)))
    await sink.until(lambda: box.running == 3)  # all three started before any could finish
    gate.set()
    result = await asyncio.wait_for(task, 5)
    assert box.most_at_once == 3
    assert [r.call_id for r in result.steps[0].results] == ["call_0", "call_1", "call_2"]  # in call order


async def test_stop_cancels_a_running_tool_and_keeps_what_was_written() -> None:
    box = Box(pause=30)
    model = Model([step(TextDelta("Reading."), tool_calls=calls("read_url")), step(TextDelta("never"))])
    sink, so_far = Recorder(), Generation()
    task = asyncio.create_task(generate(model, REQUEST, sink, into=so_far, tools=use(box)))
    await sink.until(lambda: box.running == 1)
    assert sink.shown[-1] == "Reading.\n\n_Reading https://example.com/news…_"
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() and box.cancelled == 1
    assert so_far.answer == "Reading." and so_far.steps == []  # an unfinished step is not history
    assert len(model.requests) == 1


async def test_each_call_is_for_the_asking_user_within_the_time_left() -> None:
    box = Box(files=(OutFile("picture-1.png", "image/png", b"\x89PNG..."),))
    model = Model([step(tool_calls=calls("read_url", "read_url")), step(TextDelta("Here."))])
    deadline = time.monotonic() + 50
    result = await generate(model, REQUEST, Recorder(), tools=use(box, deadline=deadline))
    assert [(c.key, c.author) for c in box.contexts] == [(KEY, ADA), (KEY, ADA)]
    assert all(c.timeout is not None and 45 < c.timeout <= 50 for c in box.contexts)
    assert [f.name for f in result.files] == ["picture-1.png", "picture-1.png"]
    assert result.images == {"img-model": 2}


async def test_without_tools_a_call_ends_the_turn() -> None:
    model = Model([step(TextDelta("Hm."), tool_calls=calls("read_url"))])
    result = await generate(model, REQUEST, Recorder())
    assert (result.answer, result.outcome, len(model.requests)) == ("Hm.", Outcome.COMPLETE, 1)


def test_the_status_line_is_plain_emphasis_whatever_the_tool_says() -> None:
    assert status_line(["Reading example.com/a_b*c", "Asking docs: search"]) == (
        r"_Reading example.com/a\_b\*c… · Asking docs: search…_"
    )
    assert status_line(["Reading example.com/very-long…"]) == "_Reading example.com/very-long…_"
    assert status_line([]) == ""
    # After a code fence the model left open, the fence is closed first.
    assert with_status("```py\nx = 1\n", ["Drawing a picture"]) == "```py\nx = 1\n```\n\n_Drawing a picture…_"
    assert with_status("", ["Drawing a picture"]) == "_Drawing a picture…_"
    # What a crash leaves is read back without the line; an answer's own italics stay.
    shown = with_status("Let me look.", ["Reading a_b", "Drawing a picture"])
    assert without_status(shown) == "Let me look." and without_status("_Drawing…_") == ""
    assert without_status("It ends _in italics_") == "It ends _in italics_"
