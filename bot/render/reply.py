"""One reply: what the core talks to while an answer streams.

A reply never queues work. It keeps the latest Markdown and what each of its messages shows;
whenever the pacer offers it a slot it asks the planning step (``plan.py``) for the single post
or edit that helps most. Snapshots it never got to send are simply gone.

The core uses :meth:`ReplyStream.start`, :meth:`~ReplyStream.update`,
:meth:`~ReplyStream.finish` and the read-only properties. The pacer uses the methods under
"what the pacer uses" (listed as :class:`bot.render.pacer.Paced`); the reply reaches the pacer
only through :class:`Scheduler`, so neither module imports the other's internals.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Protocol

from bot.render import plan
from bot.render.budget import BudgetBook, Window, free_at
from bot.render.plan import Action, Display, Kind, Snapshot
from bot.render.split import MIN_MAX_CHARS, Part
from bot.render.surface import ReplySurface, SurfaceError

log = logging.getLogger(__name__)


class Scheduler(Protocol):
    """What a reply needs from the loop that paces it (the :class:`~bot.render.pacer.Pacer`)."""

    def attach(self, reply: ReplyStream) -> bool:
        """The reply starts (or has new final text after settling): pace it. False once closed."""
        ...

    def wake(self, reply: ReplyStream, *, text_only: bool = False) -> None:
        """The reply may have something to send (``text_only``: only its text changed)."""
        ...

    def detach(self, reply: ReplyStream) -> None:
        """The reply has settled: its final text is shown, or it failed."""
        ...


class ReplyStream:
    """One streamed reply. Create it with :meth:`Pacer.reply <bot.render.pacer.Pacer.reply>`."""

    def __init__(
        self,
        scheduler: Scheduler,
        book: BudgetBook,
        surface: ReplySurface,
        placeholder: str,
        *,
        platform: str = "",
        now: float,
    ) -> None:
        limits = surface.limits
        if limits.max_chars < MIN_MAX_CHARS:
            raise ValueError(f"max_chars {limits.max_chars} is below {MIN_MAX_CHARS}")
        self._scheduler = scheduler
        self._book = book
        self._surface = surface
        self._max_chars = limits.max_chars
        self._limits = limits
        self._post_windows = book.resolve(limits.post_budgets)
        self._edit_windows = book.resolve(limits.edit_budgets)
        self.placeholder = placeholder
        self.platform = platform
        self.failed = False
        self.error: BaseException | None = None
        # Messages replaced by a fresh post after their edits kept failing; they still show
        # stale text, and the core may want to delete them.
        self.abandoned_refs: list[str] = []
        # Pacer clock time at which the platform confirmed the first real text (for metrics).
        self.first_text_at: float | None = None

        self._md = ""
        self._version = 0  # bumped by every new snapshot; the plan is refreshed lazily
        self._final = False
        self._attached = False
        self._posted = asyncio.Event()  # the first message is up, or the reply gave up
        self._settled = asyncio.Event()  # final text fully shown, or the reply gave up

        self._snapshot = Snapshot.blank(placeholder)
        self._snapshot_version = -1
        self._display = Display()
        self._render_memo = ("", "")
        self._render_broken = False
        self._next_kind: Kind | None = Kind.POST  # predicted kind of the next action; None: nothing
        self._last_sent = now

    # -- what the core uses -------------------------------------------------------------------

    async def start(self) -> None:
        """Post the first message (placeholder, or text if some already arrived); return once it is up.

        Raises SurfaceError if the platform kept refusing the post.
        """
        self._activate()
        await self._posted.wait()
        if not self._display.messages:
            raise SurfaceError("could not post the reply") from self.error

    def update(self, markdown: str) -> None:
        """Replace the reply's text with this full snapshot.

        Cheap enough to call per token: it only wakes the pacer when something could be sent.
        """
        if self._final or self.failed or markdown == self._md:
            return
        self._md = markdown
        self._version += 1
        display = self._display
        if self._next_kind is None:
            self._next_kind = Kind.EDIT if display.messages else Kind.POST
        if self._attached and not display.in_flight:
            self._scheduler.wake(self, text_only=True)

    async def finish(self, markdown: str) -> None:
        """Set the final text; return once every message shows it with ``live=False``.

        Never raises for platform trouble: if the platform kept refusing, it returns with
        :attr:`failed` set.
        """
        if not self.failed:
            if not self._final or markdown != self._md:
                self._final = True
                self._md = markdown
                self._version += 1
                self._next_kind = self._next_kind or (Kind.EDIT if self._display.messages else Kind.POST)
                self._settled.clear()
            self._activate()
            if not self._display.in_flight:
                self._scheduler.wake(self)
        await self._settled.wait()

    @property
    def refs(self) -> list[str]:
        """Platform refs of this reply's messages, in reading order."""
        return [m.ref for m in self._display.messages]

    @property
    def message_count(self) -> int:
        """``len(refs)`` without building the list (asked per token)."""
        return len(self._display.messages)

    @property
    def visible(self) -> list[str]:
        """What each message shows now (platform text)."""
        return [m.text for m in self._display.messages]

    @property
    def visible_text(self) -> str:
        return "".join(m.text for m in self._display.messages)

    @property
    def markdown(self) -> str:
        """The latest snapshot."""
        return self._md

    @property
    def parts(self) -> list[Part]:
        """The Markdown parts the latest snapshot is split into (frozen ones, then the tail)."""
        self._refresh()
        return self._snapshot.parts

    @property
    def final(self) -> bool:
        return self._final

    @property
    def done(self) -> bool:
        """The final text is fully shown, or the reply failed."""
        return self._settled.is_set()

    @property
    def unseen(self) -> int:
        """Characters of the latest Markdown not yet shown."""
        return max(0, len(self._md) - self._display.visible_md)

    # -- what the pacer uses ------------------------------------------------------------------

    @property
    def surface(self) -> ReplySurface:
        return self._surface

    def ready_at(self, now: float, not_before: float) -> float | None:
        """When the next action could start by its budgets (and not before ``not_before``); None if
        there is nothing to send. A prediction without planning: cheap enough for every token."""
        kind = self._next_kind
        if kind is None:
            return None
        is_urgent = plan.urgent(self._final, self._display.visible_md)
        return free_at(self.windows(kind), now, urgent=is_urgent, not_before=not_before)

    def priority(self, now: float) -> tuple[int, float]:
        """Higher goes first when replies wait for the same slots (see :func:`plan.priority`)."""
        return plan.priority(
            md_len=len(self._md),
            visible_md=self._display.visible_md,
            final=self._final,
            waited=now - self._last_sent,
        )

    def windows(self, kind: Kind) -> tuple[Window, ...]:
        """The budget windows an action of ``kind`` draws from."""
        limits = self._surface.limits
        if limits is not self._limits:
            # The surface changed how it reaches the platform mid-reply (Slack: a native stream
            # fell back to chat.update): pace the next actions by what they now cost. The split
            # plan keeps the first max_chars.
            self._limits = limits
            self._post_windows = self._book.resolve(limits.post_budgets)
            self._edit_windows = self._book.resolve(limits.edit_budgets)
        return self._post_windows if kind is Kind.POST else self._edit_windows

    def next_action(self) -> Action | None:
        """Plan: the one post or edit that brings the earliest differing message level, or None."""
        self._refresh()
        step = plan.next_action(self._snapshot, self._display)
        if step.clean != self._display.clean:
            self._display = replace(self._display, clean=step.clean)
        self._next_kind = None if step.action is None else step.action.kind
        return step.action

    def begin(self) -> None:
        """An action is being sent."""
        self._set_in_flight(True)

    def end(self) -> None:
        """The action being sent has its answer (whatever it was)."""
        self._set_in_flight(False)

    def sent(self, action: Action, ref: str | None, now: float) -> None:
        """The platform confirmed ``action``; ``ref`` names the message a post created."""
        display = self._display
        if action.kind is Kind.POST and action.index < len(display.messages):
            self.abandoned_refs.append(display.messages[action.index].ref)
        self._display = display.sent(action, str(ref))
        if action.kind is Kind.POST:
            self._posted.set()
        if self.first_text_at is None and action.md_end > 0:
            self.first_text_at = now
        self._last_sent = now

    def abandon(self, index: int) -> None:
        """Edits of message ``index`` keep failing: keep the text rather than the message, and post
        its part again as a new message."""
        self._display = self._display.abandoned(index)

    def fail(self, exc: BaseException) -> None:
        """Give up: nothing more is sent, and whoever waits on the reply is released."""
        if self.failed:
            return
        self.failed = True
        self.error = exc
        self._next_kind = None
        self._settle()

    def idle(self) -> None:
        """There is nothing to send: a final reply is then done."""
        if self._final and not self._display.in_flight:
            self._settle()

    # -- inside ---------------------------------------------------------------------------------

    def _set_in_flight(self, value: bool) -> None:
        self._display = replace(self._display, in_flight=value)

    def _render(self, markdown: str) -> str:
        memo_in, memo_out = self._render_memo
        if markdown == memo_in:
            return memo_out
        try:
            out = self._surface.render(markdown)
        except Exception:  # an adapter bug: raw Markdown still beats losing the text
            if not self._render_broken:
                self._render_broken = True
                log.exception("render() failed; sending raw Markdown")
            out = markdown
        self._render_memo = (markdown, out)
        return out

    def _refresh(self) -> None:
        if self._snapshot_version == self._version:
            return
        if not self._snapshot.extended_by(self._md):
            # The text was rewritten, not extended: frozen parts are void; split from scratch and
            # let the normal diffing edit whichever messages changed.
            log.debug("reply text changed before its frozen prefix; re-splitting")
            self._display = self._display.resplit()
        self._snapshot = plan.cut(
            self._snapshot, self._md, final=self._final, max_chars=self._max_chars, render=self._render
        )
        self._snapshot_version = self._version

    def _activate(self) -> None:
        if self._attached or self._settled.is_set():  # pacing already, or nothing left to send
            return
        if not self._scheduler.attach(self):
            self.fail(SurfaceError("the renderer is closed"))
            return
        self._attached = True
        if not self._display.in_flight:
            self._scheduler.wake(self)

    def _settle(self) -> None:
        self._posted.set()
        self._settled.set()
        self._attached = False
        self._scheduler.detach(self)
