"""One step of a turn's tool loop: the model's calls run at once, on behalf of the asking user,
while the live reply names what runs; and the request that carries their results back.

:func:`bot.generation.generate` drives the loop (model → calls → results → model again); this
module holds what a step needs beside the stream: :class:`ToolUse` (the tools, the user, the step
limit and the reply's deadline), :func:`run_step`, the status line, and :func:`next_request`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bot.prompt import ToolStep
from bot.providers.base import ChatRequest, ToolCall, ToolResultPart, ToolSpec
from bot.render.split import fence_after
from bot.tools import ToolContext, ToolOutcome
from bot.types import Author, ConversationKey

_STATUS_CHARS = 120  # of one tool's status, before it is cut
# Markdown punctuation that could end the status line's emphasis early or start something else.
_MARKUP = re.compile(r"([\\`*_~\[\]<>|#])")
# A status line at the end of a live reply's text (see status_line), as a crash may leave it.
_TRAILING_STATUS = re.compile(r"(?:^|\n\n)_(?:[^\n]*?…)(?: · [^\n]*?…)*_\s*$")


class Tools(Protocol):
    """What the loop needs of :class:`bot.tools.ToolBox`."""

    def specs(self) -> tuple[ToolSpec, ...]: ...

    def status(self, call: ToolCall) -> str: ...

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutcome: ...


@dataclass(frozen=True, slots=True)
class ToolUse:
    """What one turn's tool loop may do: ``tools``, run for ``author`` in ``key``, at most
    ``max_steps`` model requests (``PARLEY_TOOL_STEPS``), all done by ``deadline`` (a
    ``time.monotonic()`` value: the reply's timeout; None for none)."""

    tools: Tools
    key: ConversationKey
    author: Author
    max_steps: int
    deadline: float | None = None

    def context(self) -> ToolContext:
        """A call's context: the asking user, and the time the reply has left (the tool box keeps
        the shorter of that and the tool's own limit)."""
        left = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        return ToolContext(self.key, self.author, timeout=left)


async def run_step(
    use: ToolUse,
    calls: Sequence[ToolCall],
    *,
    running: Callable[[tuple[str, ...]], None],
    done: Callable[[ToolOutcome], None],
) -> tuple[ToolResultPart, ...]:
    """Run one step's ``calls`` at once; their results, in call order.

    ``running`` is told the status of each call still running whenever that changes (ending
    with none), ``done`` each outcome as it comes, so a picture made before a Stop is kept.
    Cancelling this cancels every call still running.
    """
    statuses = {index: use.tools.status(call) for index, call in enumerate(calls)}
    running(tuple(statuses.values()))

    async def one(index: int, call: ToolCall) -> ToolResultPart:
        outcome = await use.tools.run(call, use.context())
        del statuses[index]
        done(outcome)
        running(tuple(statuses.values()))
        return outcome.result

    return tuple(await asyncio.gather(*(one(index, call) for index, call in enumerate(calls))))


def next_request(request: ChatRequest, step: ToolStep, *, last: bool) -> ChatRequest:
    """``request`` with ``step``'s calls and results added; on the ``last`` step the tools stay
    declared (the format may need them beside the tool history) but none may be called."""
    return replace(request, turns=(*request.turns, *step.turns()), tool_choice="none" if last else "auto")


def status_line(statuses: Sequence[str]) -> str:
    """The live reply's line naming what runs: ``_Reading example.com/news…_`` (several joined)."""
    shown = []
    for status in statuses:
        text = " ".join(status.split()).rstrip(".…")
        if len(text) > _STATUS_CHARS:
            text = text[: _STATUS_CHARS - 1]
        if text:
            shown.append(_MARKUP.sub(r"\\\1", text) + "…")
    return f"_{' · '.join(shown)}_" if shown else ""


def without_status(text: str) -> str:
    """``text`` without a status line at its end: what a reply interrupted while a tool ran
    (a crash) still shows is kept, the line saying a tool is running is not."""
    return _TRAILING_STATUS.sub("", text)


def with_status(text: str, statuses: Sequence[str]) -> str:
    """``text`` as the live reply shows it while tools run: the status line after it (after a
    code fence the text leaves open, closed first, so the line is not shown as code)."""
    line = status_line(statuses)
    if not line:
        return text
    if not text.strip():
        return line
    fence = fence_after(text)
    closing = f"\n{fence.marker}" if fence is not None else ""
    return f"{text.rstrip()}{closing}\n\n{line}"
