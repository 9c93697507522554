"""The Pacer: one scheduling loop for every reply in the process.

Replies with something to send wait in ``_pending``. The loop runs a round when woken (a reply
that could act now, an action that finished, or the timer set for the earliest moment a waiting
reply's budgets reopen). A round hands free slots to the waiting replies in priority order:
replies that show nothing yet (no message, or only the placeholder) first, then final texts, then
by how much text each has not shown yet (plus a little for how long it has waited). A round
costs O(waiting replies), and rounds happen about as often as actions are sent, not as often as
tokens arrive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.render.budget import RESERVE_FRACTION, BudgetBook, Window, free_at
from bot.render.stream import Action, Kind, ReplyStream
from bot.render.surface import PLACEHOLDER, RateLimited, ReplySurface, SurfaceError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class ActionCounts:
    posts: int = 0  # successful posts
    edits: int = 0  # successful edits
    rate_limited: int = 0  # 429s: each one means a declared budget is wrong
    failures: int = 0  # other refused or crashed posts/edits


@dataclass(slots=True)
class PacerStats(ActionCounts):
    """The counts of every action, and per platform in :attr:`by_platform`."""

    fallbacks: int = 0  # messages re-posted because their edits kept failing
    failed_replies: int = 0
    rounds: int = 0  # scheduling rounds, to check the loop is not woken needlessly
    # The same action counts per platform (each reply's ``platform``), for /metrics.
    by_platform: dict[str, ActionCounts] = field(default_factory=dict)

    def platform(self, name: str) -> ActionCounts:
        counts = self.by_platform.get(name)
        if counts is None:
            counts = self.by_platform[name] = ActionCounts()
        return counts


class Pacer:
    """Owns the shared budgets and the scheduling loop. One per process.

    ``margin`` lengthens every budget window (seconds). With ``smooth``, intermediate edits leave
    ``reserve`` (a fraction, rounded down) of each budget to first/final text and are spread
    evenly over the window; first and final text may use the whole budget at once.

    A failing post/edit is tried ``max_attempts`` times in all, ``retry_backoff`` seconds apart
    (doubling); after ``max_rate_limited`` 429s in a row a 429 counts as a failed attempt.
    """

    def __init__(
        self,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        *,
        margin: float = 0.1,
        smooth: bool = True,
        reserve: float = RESERVE_FRACTION,
        max_attempts: int = 3,
        retry_backoff: float = 0.25,
        max_rate_limited: int = 10,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.clock = clock
        self._sleep = sleep
        self.budgets = BudgetBook(margin=margin, smooth=smooth, reserve=reserve)
        self.margin = margin
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_rate_limited = max_rate_limited
        self.stats = PacerStats()
        self.closed = False

        self._pending: dict[ReplyStream, None] = {}  # waiting for a slot (ordered, for ties)
        self._live: dict[ReplyStream, None] = {}  # started and not settled, for aclose()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf
        self._stalled = False  # a waiting reply is blocked only by in-flight actions

    def reply(
        self, surface: ReplySurface, placeholder: str = PLACEHOLDER, *, platform: str = ""
    ) -> ReplyStream:
        """A new reply on ``surface``; ``platform`` labels its actions in :attr:`stats`."""
        if self.closed:
            raise RuntimeError("the Pacer is closed")
        return ReplyStream(self, surface, placeholder, platform=platform)

    @property
    def active(self) -> int:
        """Replies started and not yet settled."""
        return len(self._live)

    async def aclose(self) -> None:
        """Stop the loop and every action in flight; replies still running end as failed."""
        if self.closed:
            return
        self.closed = True
        tasks = [t for t in (self._loop_task, self._timer, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        for reply in list(self._live):
            reply._fail(SurfaceError("the renderer closed"))

    # -- called by ReplyStream -------------------------------------------------------------------

    def _register(self, reply: ReplyStream) -> None:
        self._live[reply] = None

    def _unregister(self, reply: ReplyStream) -> None:
        self._live.pop(reply, None)
        self._pending.pop(reply, None)

    def _notify(self, reply: ReplyStream) -> None:
        """``reply`` may have something to send: queue it, and wake the loop only if it could act now."""
        if self.closed or reply.failed:
            return
        self._pending[reply] = None
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="parley-pacer")
        if self._wake.is_set():
            return
        now = self.clock()
        t = reply._ready_at(now)
        if t is None:
            return
        if t <= now:
            self._wake.set()
        elif t == math.inf:
            self._stalled = True  # only a finishing action can unblock it; _after() wakes us
        else:
            self._arm(t)

    # -- the loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                next_at = self._round()
            except Exception:  # a bug here must not stop every reply for good
                log.exception("pacer round failed")
                next_at = self.clock() + 0.1
            self._arm(next_at)

    def _arm(self, at: float) -> None:
        """Make sure a round runs at ``at``. An earlier timer already does (its round re-arms)."""
        if at == math.inf or (self._timer is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().create_task(self._fire(at))

    async def _fire(self, at: float) -> None:
        delay = at - self.clock()
        if delay > 0:
            await self._sleep(delay)
        self._timer = None
        self._timer_at = math.inf
        self._wake.set()

    def _round(self) -> float:
        """Give every free slot to the waiting reply that needs it most; return when to look again."""
        self.stats.rounds += 1
        now = self.clock()
        next_at = math.inf
        self._stalled = False
        pending = self._pending
        ready: list[tuple[tuple[int, float], ReplyStream]] = []
        for reply in list(pending):
            if reply._in_flight or reply.failed:  # cannot happen; cheap insurance against a double send
                del pending[reply]
                continue
            t = reply._ready_at(now)
            if t is None:
                del pending[reply]
                reply._idle()
            elif t <= now:
                ready.append((reply._priority(now), reply))
            elif t < next_at:
                next_at = t
            if t == math.inf:
                self._stalled = True
        ready.sort(key=lambda e: e[0], reverse=True)
        for _, reply in ready:
            # Check the prediction again before planning: a better-placed reply may just have
            # taken the last slot, and planning (splitting, rendering) is the costly part.
            t = reply._ready_at(now)
            if t is not None and t > now:
                next_at = min(next_at, t)
                self._stalled = self._stalled or t == math.inf
                continue
            try:
                action = reply._next_action()
            except Exception as exc:  # e.g. a broken render(): fail this reply, not the loop
                log.exception("planning a reply failed")
                reply._fail(exc)
                continue
            if action is None:
                del pending[reply]
                reply._idle()
                continue
            windows = reply._windows(action.kind)
            t = free_at(windows, now, urgent=action.urgent, not_before=reply._not_before)
            if t > now:
                next_at = min(next_at, t)
                self._stalled = self._stalled or t == math.inf
                continue
            del pending[reply]
            self._dispatch(reply, action, windows, now)
        return next_at

    def _dispatch(self, reply: ReplyStream, action: Action, windows: tuple[Window, ...], now: float) -> None:
        for w in windows:
            w.acquire(now)
        reply._in_flight = True
        task = asyncio.get_running_loop().create_task(self._perform(reply, action, windows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _perform(self, reply: ReplyStream, action: Action, windows: tuple[Window, ...]) -> None:
        surface = reply._surface
        ref: str | None = None
        error: Exception | None = None
        try:
            if action.kind is Kind.POST:
                ref = await surface.post(action.text, live=action.live)
            else:
                await surface.edit(reply._messages[action.index].ref, action.text, live=action.live)
        except asyncio.CancelledError:
            now = self.clock()
            for w in windows:
                w.release(now)
            reply._in_flight = False
            raise
        except Exception as exc:  # any adapter exception is a refusal: a bug must not hang a reply
            error = exc
        now = self.clock()
        for w in windows:
            w.release(now)
        reply._in_flight = False
        try:
            self._settle_action(reply, action, windows, ref, error, now)
        except Exception as exc:  # a bug in our own bookkeeping: end this reply, never hang it
            log.exception("after a %s", action.kind.value)
            reply._fail(exc)
        if self._stalled and self._pending:
            self._wake.set()  # the slots just released may be what other replies wait for

    def _settle_action(
        self,
        reply: ReplyStream,
        action: Action,
        windows: tuple[Window, ...],
        ref: str | None,
        error: Exception | None,
        now: float,
    ) -> None:
        counts = self.stats.platform(reply.platform)
        if error is None:
            if action.kind is Kind.POST:
                self.stats.posts += 1
                counts.posts += 1
            else:
                self.stats.edits += 1
                counts.edits += 1
            reply._on_success(action, ref, now)
        elif isinstance(error, RateLimited):
            self.stats.rate_limited += 1
            counts.rate_limited += 1
            until = now + _seconds(error.retry_after) + self.margin
            for w in windows:
                w.pause(until)
            log.warning(
                "429 on %s: pausing %s for %.2fs",
                action.kind.value,
                ", ".join(w.key for w in windows) or "the reply",
                until - now,
            )
            reply._on_rate_limited(action, error, now, until)
        else:
            self.stats.failures += 1
            counts.failures += 1
            log.warning("%s failed: %r", action.kind.value, error)
            reply._on_error(action, error, now)
        self._after(reply)

    def _after(self, reply: ReplyStream) -> None:
        """An action of ``reply`` finished: plan the next one now, so a finished reply settles at once."""
        if self.closed or reply.failed:
            return
        try:
            action = reply._next_action()
        except Exception as exc:
            log.exception("planning a reply failed")
            reply._fail(exc)
            return
        if action is None:
            reply._idle()
        else:
            self._notify(reply)


def _seconds(value: object) -> float:
    """A usable pause from whatever a surface put in ``retry_after``."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1.0
    if math.isnan(seconds):
        return 1.0
    return min(max(seconds, 0.0), 3600.0)
