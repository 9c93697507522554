"""Generation: the model's stream of events turned into an answer, its thinking, its usage and how
it ended, shown live as it grows.

::

    generation = await generate(provider, request, sink, show_thinking=False)

The turn runs this as a task it may cancel (Stop, shutdown, the reply timeout); it then reads what
came so far from the same :class:`Generation`, passed in as ``into``. This is where the tool loop
will go (model → tool calls → results → model again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from bot.providers.base import (
    ChatRequest,
    Finish,
    Provider,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    UsageReport,
)
from bot.providers.errors import ProviderError
from bot.render.surface import THINKING_PLACEHOLDER
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

    def shown(self, show_thinking: bool) -> str:
        """The answer as the live reply shows it: after the thinking, quoted, if it is shown."""
        if not (show_thinking and self.thinking):
            return self.answer
        quoted = "\n".join(f"> {line}" if line else ">" for line in self.thinking.strip().splitlines())
        return f"{quoted}\n\n{self.answer}" if self.answer else quoted


async def generate(
    provider: Provider,
    request: ChatRequest,
    sink: Sink,
    *,
    show_thinking: bool = False,
    into: Generation | None = None,
) -> Generation:
    """Stream ``request`` to the end, showing the answer in ``sink``; never raises but for
    cancellation (a failure is the outcome ERROR with its ``error``)."""
    state = into if into is not None else Generation()
    # A model keeps to max_tokens; a gateway that streams on regardless is cut off here.
    cap = max(MIN_ANSWER_CAP, request.max_tokens * CHARS_PER_TOKEN_CAP)
    events = provider.stream(request)
    try:
        async for event in events:
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
        close = getattr(events, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()  # a cut-off answer closes its connection now, not when collected
    return state


def _take(state: Generation, event: StreamEvent, sink: Sink, cap: int, show_thinking: bool) -> bool:
    """Add one event to ``state`` and show the result; False once the answer passed ``cap``."""
    if isinstance(event, TextDelta):
        if state.first_token_at is None:
            state.first_token_at = time.monotonic()
        state.answer += event.text
        over = len(state.answer) + len(state.thinking) > cap
        if over:
            _cut(state, cap)
        sink.show(state.shown(show_thinking))
        return not over
    if isinstance(event, ThinkingDelta):
        state.thinking += event.text
        if len(state.answer) + len(state.thinking) > cap:
            _cut(state, cap)
            return False
        if show_thinking:
            sink.show(state.shown(show_thinking))
        elif not state.answer:
            sink.show(THINKING_PLACEHOLDER)
    elif isinstance(event, UsageReport):
        state.usage = event.usage
    elif isinstance(event, Finish):
        state.outcome = event.outcome
        state.usage = event.usage
        state.error = event.error
    return True


def _cut(state: Generation, cap: int) -> None:
    log.warning("the gateway passed %d characters for one answer; cutting it off", cap)
    state.thinking = state.thinking[:cap]
    state.answer = state.answer[: max(0, cap - len(state.thinking))]
    state.outcome = Outcome.LENGTH
