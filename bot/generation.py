"""Generation: the model's stream of events turned into an answer, its thinking, its usage and how
it ended, shown live as it grows; with tools, the loop model → calls → results → model again.

::

    generation = await generate(provider, request, sink, show_thinking=False, tools=use)

The turn runs this as a task it may cancel (Stop, shutdown, the reply timeout: a running tool is
cancelled with it); it then reads what came so far from the same :class:`Generation`, passed in
as ``into``. With ``tools`` (:class:`~bot.tool_loop.ToolUse`) a request that ends in tool calls
is followed by the calls (at once, see :mod:`bot.tool_loop`) and another request carrying their
results, at most ``max_steps`` requests, the last of which may call none. Text written before or
between calls stays part of the answer; while tools run the live reply shows a status line after
it, which the final text never has. Usage is summed over the requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from bot import notes as say
from bot.prompt import ToolStep
from bot.providers.base import (
    ChatRequest,
    Finish,
    Provider,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallStarted,
    UsageReport,
)
from bot.providers.errors import ProviderError
from bot.render.surface import THINKING_PLACEHOLDER
from bot.tool_loop import ToolUse, next_request, run_step, with_status
from bot.tools import OutFile, ToolOutcome
from bot.types import Outcome, Usage

log = logging.getLogger("parley.conversation")

# An answer (with its thinking) longer than max_tokens times this, or this floor, is cut off.
CHARS_PER_TOKEN_CAP = 16
MIN_ANSWER_CAP = 100_000


class Sink(Protocol):
    """Where a generation's text goes while it grows."""

    def show(self, text: str) -> None:
        """What the live reply should show now (the latest full snapshot)."""

    async def checkpoint(self) -> None:
        """Called after every event: a moment to store progress (e.g. the reply's new messages)."""


@dataclass(slots=True)
class Generation:
    """What the model has produced so far; whole once :func:`generate` returns."""

    answer: str = ""
    thinking: str = ""
    outcome: Outcome = Outcome.ERROR
    usage: Usage = field(default_factory=Usage)
    error: Exception | None = None
    first_token_at: float | None = None  # time.monotonic() of the first answer text
    steps: list[ToolStep] = field(default_factory=list)  # tool steps whose calls all finished
    files: list[OutFile] = field(default_factory=list)  # made by tools, for the reply
    images: dict[str, int] = field(default_factory=dict)  # pictures tools had made, by image model
    note: str | None = None  # shown after the answer but not part of it
    status: tuple[str, ...] = ()  # what the tools running now are doing
    usage_before: Usage = field(default_factory=Usage)  # of the requests before this one
    step_start: int = 0  # where in the answer this request's text starts
    new_step: bool = False  # the next text starts a new paragraph (after tool calls)

    def shown(self, show_thinking: bool) -> str:
        """The answer as the live reply shows it: after the thinking, quoted, if it is shown."""
        if not (show_thinking and self.thinking):
            return self.answer
        quoted = "\n".join(f"> {line}" if line else ">" for line in self.thinking.strip().splitlines())
        return f"{quoted}\n\n{self.answer}" if self.answer else quoted

    def live(self, show_thinking: bool) -> str:
        """What the live reply shows: the answer, and a status line while tools run."""
        return with_status(self.shown(show_thinking), self.status)

    def took(self, outcome: ToolOutcome) -> None:
        """Keep what a finished call made for the reply (pictures) and what it spent."""
        self.files.extend(outcome.files)
        if outcome.usage is not None and outcome.usage.images:
            model = outcome.usage.model
            self.images[model] = self.images.get(model, 0) + outcome.usage.images


async def generate(
    provider: Provider,
    request: ChatRequest,
    sink: Sink,
    *,
    show_thinking: bool = False,
    into: Generation | None = None,
    tools: ToolUse | None = None,
) -> Generation:
    """Stream ``request`` to the end, showing the answer in ``sink``, and with ``tools`` run the
    calls it ends in and ask again, up to ``tools.max_steps`` requests. Never raises but for
    cancellation (a failure is the outcome ERROR with its ``error``)."""
    state = into if into is not None else Generation()
    step = 1
    while True:
        calls = await _stream(provider, request, sink, state, show_thinking, tools)
        if not calls or tools is None or state.outcome is not Outcome.COMPLETE:
            break
        if step >= tools.max_steps:
            # The last request let the model call nothing, and it did anyway: there is no answer
            # to wait for.
            log.warning("the model called tools on the last of %d steps; ending the turn", step)
            state.note = say.TOOL_STEPS_USED
            break
        await _run_calls(tools, calls, sink, state, show_thinking)
        request = next_request(request, state.steps[-1], last=step + 1 >= tools.max_steps)
        step += 1
    return state


async def _stream(
    provider: Provider,
    request: ChatRequest,
    sink: Sink,
    state: Generation,
    show_thinking: bool,
    tools: ToolUse | None = None,
) -> tuple[ToolCall, ...]:
    """One model request into ``state``; the tool calls it ended in (none unless COMPLETE)."""
    # A model keeps to max_tokens; a gateway that streams on regardless is cut off here.
    cap = max(MIN_ANSWER_CAP, request.max_tokens * CHARS_PER_TOKEN_CAP)
    state.usage_before = state.usage
    state.step_start = len(state.answer)
    calls: tuple[ToolCall, ...] = ()
    events = provider.stream(request)
    try:
        async for event in events:
            if isinstance(event, Finish):
                calls = event.tool_calls
            elif isinstance(event, ToolCallStarted) and tools is not None:
                # Named before its arguments stream in: say so at once (they may take a while,
                # a picture's prompt for one).
                state.status = (*state.status, tools.tools.status(ToolCall(event.id, event.name, "")))
            if not _take(state, event, sink, cap, show_thinking):
                break
            await sink.checkpoint()
    except ProviderError as exc:
        state.outcome = Outcome.ERROR
        state.error = exc
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("provider stream failed")
        state.outcome = Outcome.ERROR
        state.error = exc
    finally:
        state.status = ()
        close = getattr(events, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()  # a cut-off answer closes its connection now, not when collected
    return calls if state.outcome is Outcome.COMPLETE else ()


async def _run_calls(
    tools: ToolUse, calls: tuple[ToolCall, ...], sink: Sink, state: Generation, show_thinking: bool
) -> None:
    """One tool step: the calls run with their status line showing; the step kept in ``state``."""

    def running(statuses: tuple[str, ...]) -> None:
        state.status = statuses
        sink.show(state.live(show_thinking) or THINKING_PLACEHOLDER)

    text = state.answer[state.step_start :].strip()  # what the model wrote before these calls
    results = await run_step(tools, calls, running=running, done=state.took)
    state.steps.append(ToolStep(text, calls, results))
    state.new_step = True


def _take(state: Generation, event: StreamEvent, sink: Sink, cap: int, show_thinking: bool) -> bool:
    """Add one event to ``state`` and show the result; False once the answer passed ``cap``."""
    if isinstance(event, TextDelta):
        if state.first_token_at is None:
            state.first_token_at = time.monotonic()
        if state.new_step:
            # Text after tool calls starts its own paragraph, not the end of the last sentence.
            state.new_step = False
            if state.answer.strip():
                state.answer = state.answer.rstrip() + "\n\n"
                state.step_start = len(state.answer)
        state.answer += event.text
        over = len(state.answer) + len(state.thinking) > cap
        if over:
            _cut(state, cap)
        sink.show(state.live(show_thinking))
        return not over
    if isinstance(event, ThinkingDelta):
        state.thinking += event.text
        if len(state.answer) + len(state.thinking) > cap:
            _cut(state, cap)
            return False
        if show_thinking:
            sink.show(state.live(show_thinking))
        elif not state.answer:
            sink.show(THINKING_PLACEHOLDER)
    elif isinstance(event, ToolCallStarted):
        sink.show(state.live(show_thinking))  # its status line, added by the caller
    elif isinstance(event, UsageReport):
        state.usage = _sum(state.usage_before, event.usage)
    elif isinstance(event, Finish):
        state.outcome = event.outcome
        state.usage = _sum(state.usage_before, event.usage)
        state.error = event.error
        state.status = ()
    return True


def _sum(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        thinking_tokens=a.thinking_tokens + b.thinking_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
    )


def _cut(state: Generation, cap: int) -> None:
    log.warning("the gateway passed %d characters for one answer; cutting it off", cap)
    state.thinking = state.thinking[:cap]
    state.answer = state.answer[: max(0, cap - len(state.thinking))]
    state.outcome = Outcome.LENGTH
