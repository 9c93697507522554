"""One reply: its latest Markdown, the messages that show it, and the next action to bring them level.

A reply never queues work. It keeps the latest snapshot and what each of its messages shows;
whenever the scheduler offers it a slot it computes, from those two alone, the single post or
edit that helps most (the earliest message that differs). Snapshots it never got to send are
simply gone.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.render.budget import Window, free_at
from bot.render.split import MIN_MAX_CHARS, Fence, Part, cut_tail, whole_part
from bot.render.surface import ReplySurface, SurfaceError

if TYPE_CHECKING:
    from bot.render.scheduler import Pacer

log = logging.getLogger(__name__)

# When choosing who gets a slot, one second without an update weighs like this many unseen
# characters: a slowly streaming reply then still gets its turn beside fast ones.
AGING_CHARS_PER_SECOND = 200.0


class Kind(enum.Enum):
    POST = "post"
    EDIT = "edit"


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    index: int  # which message of the reply
    text: str  # rendered platform text
    live: bool
    md_end: int  # how far into the Markdown this text reaches, to measure what is still unseen
    urgent: bool  # first or final text: may use the budgets' reserve and skip the spacing


@dataclass(slots=True)
class _Message:
    ref: str
    text: str
    live: bool
    dead: bool = False  # edits kept failing: its part is posted again as a new message


@dataclass(frozen=True, slots=True)
class _Frozen:
    part: Part
    text: str
    md_end: int


class ReplyStream:
    """One streamed reply. Create it with :meth:`Pacer.reply`."""

    def __init__(self, pacer: Pacer, surface: ReplySurface, placeholder: str, *, platform: str = "") -> None:
        limits = surface.limits
        if limits.max_chars < MIN_MAX_CHARS:
            raise ValueError(f"max_chars {limits.max_chars} is below {MIN_MAX_CHARS}")
        self._pacer = pacer
        self._surface = surface
        self._max_chars = limits.max_chars
        self._limits = limits
        self._post_windows = pacer.budgets.resolve(limits.post_budgets)
        self._edit_windows = pacer.budgets.resolve(limits.edit_budgets)
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
        self._version = 0
        self._final = False
        self._active = False
        self._in_flight = False
        self._posted = asyncio.Event()  # the first message is up, or the reply gave up
        self._settled = asyncio.Event()  # final text fully shown, or the reply gave up

        # The plan: frozen parts never change; the tail is whatever follows them.
        self._plan_version = -1
        self._frozen: list[_Frozen] = []
        self._frozen_md = ""  # the Markdown the frozen parts cover
        self._fence: Fence | None = None  # fence open where the tail starts
        self._tail = Part("")
        self._tail_blank = True
        self._tail_text = placeholder
        self._render_memo = ("", "")
        self._render_broken = False

        self._messages: list[_Message] = []
        self._clean = 0  # messages before this index are frozen and show their final text
        self._visible_md = 0  # Markdown length the messages already show
        self._hint: Kind | None = Kind.POST  # predicted kind of the next action; None: nothing to do
        self._last_sent = pacer.clock()
        self._not_before = -math.inf
        self._errors = 0
        self._rate_limits = 0

    # -- what the core uses -------------------------------------------------------------------

    async def start(self) -> None:
        """Post the first message (placeholder, or text if some already arrived); return once it is up.

        Raises SurfaceError if the platform kept refusing the post.
        """
        self._activate()
        await self._posted.wait()
        if not self._messages:
            raise SurfaceError("could not post the reply") from self.error

    def update(self, markdown: str) -> None:
        """Replace the reply's text with this full snapshot.

        Cheap enough to call per token: it only wakes the scheduler when something could be sent.
        """
        if self._final or self.failed or markdown == self._md:
            return
        self._md = markdown
        self._version += 1
        if self._hint is None:
            self._hint = Kind.EDIT if self._messages else Kind.POST
        if self._active and not self._in_flight:
            self._pacer._notify(self)

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
                self._hint = self._hint or (Kind.EDIT if self._messages else Kind.POST)
                self._settled.clear()
            self._activate()
            if not self._in_flight:
                self._pacer._notify(self)
        await self._settled.wait()

    @property
    def refs(self) -> list[str]:
        """Platform refs of this reply's messages, in reading order."""
        return [m.ref for m in self._messages]

    @property
    def message_count(self) -> int:
        """``len(refs)`` without building the list (asked per token)."""
        return len(self._messages)

    @property
    def visible(self) -> list[str]:
        """What each message shows now (platform text)."""
        return [m.text for m in self._messages]

    @property
    def visible_text(self) -> str:
        return "".join(m.text for m in self._messages)

    @property
    def markdown(self) -> str:
        """The latest snapshot."""
        return self._md

    @property
    def parts(self) -> list[Part]:
        """The Markdown parts the latest snapshot is split into (frozen ones, then the tail)."""
        self._refresh()
        parts = [f.part for f in self._frozen]
        if not self._tail_blank or not parts:
            parts.append(self._tail)
        return parts

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
        return max(0, len(self._md) - self._visible_md)

    # -- the plan -----------------------------------------------------------------------------

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
        if self._plan_version == self._version:
            return
        md = self._md
        if not md.startswith(self._frozen_md):
            # The text was rewritten, not extended: frozen parts are void; split from scratch and
            # let the normal diffing edit whichever messages changed.
            log.debug("reply text changed before its frozen prefix; re-splitting")
            self._frozen = []
            self._frozen_md = ""
            self._fence = None
            self._clean = 0
            self._visible_md = 0
        start = len(self._frozen_md)
        tail = md[start:]
        froze = False
        while (cut := cut_tail(tail, self._fence, self._max_chars, self._render)) is not None:
            part, self._fence = cut
            start += len(part.body)
            self._frozen.append(_Frozen(part, self._render(part.markdown), start))
            tail = tail[len(part.body) :]
            froze = True
        if froze:
            self._frozen_md = md[:start]
        self._tail, _ = whole_part(tail, self._fence, self._max_chars)
        # A blank tail gets no message of its own (platforms refuse empty ones); before any text
        # the first message shows the placeholder.
        self._tail_blank = not tail.strip()
        self._tail_text = self.placeholder if self._tail_blank else self._render(self._tail.markdown)
        self._plan_version = self._version

    def _slots(self) -> int:
        return len(self._frozen) + (not self._tail_blank or not self._frozen)

    def _desired(self, i: int) -> tuple[str, bool, int]:
        """What message ``i`` should show: text, live, Markdown length covered."""
        n = len(self._frozen)
        if i < n:
            f = self._frozen[i]
            return f.text, False, f.md_end
        if i == n and (not self._tail_blank or n == 0):
            return self._tail_text, not self._final, len(self._md)
        # A message left over after the text shrank: nothing can be deleted through the surface.
        return self.placeholder, False, self._visible_md

    def _urgent(self) -> bool:
        return self._final or self._visible_md == 0

    def _next_action(self) -> Action | None:
        """The one post or edit that brings the earliest differing message level, or None."""
        self._refresh()
        msgs = self._messages
        total = max(self._slots(), len(msgs))
        urgent = self._urgent()
        i = self._clean
        while i < total:
            text, live, end = self._desired(i)
            if i >= len(msgs) or msgs[i].dead:
                self._hint = Kind.POST
                return Action(Kind.POST, i, text, live, end, urgent or i == 0)
            m = msgs[i]
            if m.text != text or m.live != live:
                self._hint = Kind.EDIT
                return Action(Kind.EDIT, i, text, live, end, urgent)
            if i == self._clean and i < len(self._frozen):
                self._clean += 1
            i += 1
        self._hint = None
        return None

    # -- what the scheduler uses ----------------------------------------------------------------

    def _windows(self, kind: Kind) -> tuple[Window, ...]:
        limits = self._surface.limits
        if limits is not self._limits:
            # The surface changed how it reaches the platform mid-reply (Slack: a native stream
            # fell back to chat.update): pace the next actions by what they now cost. The split
            # plan keeps the first max_chars.
            self._limits = limits
            self._post_windows = self._pacer.budgets.resolve(limits.post_budgets)
            self._edit_windows = self._pacer.budgets.resolve(limits.edit_budgets)
        return self._post_windows if kind is Kind.POST else self._edit_windows

    def _ready_at(self, now: float) -> float | None:
        """When the predicted next action could start; None if there is nothing to do."""
        if self._hint is None:
            return None
        return free_at(self._windows(self._hint), now, urgent=self._urgent(), not_before=self._not_before)

    def _priority(self, now: float) -> tuple[int, float]:
        # A reply that shows nothing yet comes first: its user has no sign Parley is on it, while a
        # finishing reply's user is already reading.
        tier = 2 if self._visible_md == 0 else 1 if self._final else 0
        return tier, len(self._md) - self._visible_md + AGING_CHARS_PER_SECOND * (now - self._last_sent)

    def _activate(self) -> None:
        if self._pacer.closed:
            self._fail(SurfaceError("the renderer is closed"))
            return
        if not self._active:
            self._active = True
            self._pacer._register(self)
            if not self._in_flight:
                self._pacer._notify(self)

    def _on_success(self, action: Action, ref: str | None, now: float) -> None:
        self._errors = self._rate_limits = 0
        self._not_before = -math.inf
        if action.kind is Kind.POST:
            msg = _Message(str(ref), action.text, action.live)
            if action.index < len(self._messages):
                self.abandoned_refs.append(self._messages[action.index].ref)
                self._messages[action.index] = msg
            else:
                self._messages.append(msg)
            self._posted.set()
        else:
            m = self._messages[action.index]
            m.text, m.live = action.text, action.live
        self._visible_md = max(self._visible_md, action.md_end)
        if self.first_text_at is None and action.md_end > 0:
            self.first_text_at = now
        self._last_sent = now

    def _on_rate_limited(self, action: Action, exc: BaseException, now: float, pause_until: float) -> None:
        self._not_before = pause_until  # also covers surfaces that declare no budget at all
        self._rate_limits += 1
        if self._rate_limits > self._pacer.max_rate_limited:
            self._rate_limits = 0
            self._on_error(action, exc, now)

    def _on_error(self, action: Action, exc: BaseException, now: float) -> None:
        self._errors += 1
        pacer = self._pacer
        if self._errors < pacer.max_attempts:
            self._not_before = max(self._not_before, now + pacer.retry_backoff * 2 ** (self._errors - 1))
            return
        self._errors = 0
        if action.kind is Kind.EDIT:
            # Keep the text rather than the message: post this part again as a new message.
            log.warning(
                "edits of %s keep failing (%r); posting a new message", self._messages[action.index].ref, exc
            )
            self._messages[action.index].dead = True
            pacer.stats.fallbacks += 1
        else:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.failed:
            return
        self.failed = True
        self.error = exc
        self._hint = None
        if not self._pacer.closed:
            self._pacer.stats.failed_replies += 1
            log.error("reply failed after %d messages: %r", len(self._messages), exc)
        self._posted.set()
        self._settle()

    def _idle(self) -> None:
        """Called when there is nothing to send: a final reply is then done."""
        if self._final and not self._in_flight:
            self._settle()

    def _settle(self) -> None:
        self._posted.set()
        self._settled.set()
        self._pacer._unregister(self)
