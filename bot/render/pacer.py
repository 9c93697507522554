"""The Pacer: one loop that hands every reply in the process its posts and edits.

Replies with something to send wait in ``_pending``. The loop runs a round when woken (a reply
that could act now, an action that finished, or the timer set for the earliest moment a waiting
reply's budgets reopen). A round hands free slots to the waiting replies in priority order
(``plan.priority``: replies that show nothing yet first, then final texts, then by how much
text each has not shown yet, plus a little for how long it has waited), asks each for its next
action (``plan.py`` decides it), and sends it. When the platform answers, the action is settled:
success, a 429 (pause the budgets), or a refusal (back off, fall back to a new message, or give
the reply up). A round costs O(waiting replies), and rounds happen about as often as actions
are sent, not as often as tokens arrive; timer rounds come ``ROUND_GAP`` per waiting reply apart.

The pacer talks to replies only through :class:`Paced`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.render.budget import RESERVE_FRACTION, BudgetBook, Window, free_at
from bot.render.plan import Action, Kind
from bot.render.reply import ReplyStream
from bot.render.shared import SharedBudgets, Taken
from bot.render.surface import PLACEHOLDER, Announced, RateLimited, ReplySurface, SurfaceError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# A round at each of 250 replies' slots cost 13% of a core; this apart: ≤ 3%, edits ≤ 14 ms later
ROUND_GAP = 55e-6


class Paced(Protocol):
    """What the pacer uses of a reply (implemented by :class:`~bot.render.reply.ReplyStream`)."""

    @property
    def platform(self) -> str: ...
    @property
    def surface(self) -> ReplySurface: ...
    @property
    def failed(self) -> bool: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def message_count(self) -> int: ...

    def ready_at(self, now: float, not_before: float) -> float | None: ...
    def priority(self, now: float) -> tuple[int, float]: ...
    def windows(self, kind: Kind) -> tuple[Window, ...]: ...
    def next_action(self) -> Action | None: ...
    def begin(self) -> None: ...
    def end(self) -> None: ...
    def sent(self, action: Action, ref: str | None, now: float) -> None: ...
    def abandon(self, index: int) -> None: ...
    def fail(self, exc: BaseException) -> None: ...
    def idle(self) -> None: ...


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


@dataclass(slots=True)
class _Backoff:
    """How a started reply stands with the platform: when it may act next, refusals in a row."""

    not_before: float = -math.inf  # a 429 pause or a retry backoff
    errors: int = 0
    rate_limits: int = 0


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
        shared: SharedBudgets | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.clock = clock
        # Several instances on one database: each action's slot is booked there too.
        self.shared = shared
        self._sleep = sleep
        self.budgets = BudgetBook(margin=margin, smooth=smooth, reserve=reserve)
        self.margin = margin
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_rate_limited = max_rate_limited
        self.stats = PacerStats()
        self.closed = False

        self._pending: dict[Paced, _Backoff] = {}  # waiting for a slot (ordered, for ties)
        self._live: dict[Paced, _Backoff] = {}  # started and not settled
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
        return ReplyStream(self, self.budgets, surface, placeholder, platform=platform, now=self.clock())

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
            reply.fail(SurfaceError("the renderer closed"))

    # -- the Scheduler a reply sees ----------------------------------------------------------------

    def attach(self, reply: Paced) -> bool:
        if self.closed:
            return False
        self._live[reply] = _Backoff()
        return True

    def detach(self, reply: Paced) -> None:
        was_live = self._live.pop(reply, None) is not None
        self._pending.pop(reply, None)
        if was_live and reply.failed and not self.closed:
            self.stats.failed_replies += 1
            log.error("reply failed after %d messages: %r", reply.message_count, reply.error)

    def wake(self, reply: Paced, *, text_only: bool = False) -> None:
        """``reply`` may have something to send: queue it, and wake the loop only if it could act now.

        ``text_only``: only the reply's text changed (a token). A reply already waiting for a slot
        keeps its place: when it may act depends on its budgets, not on its text, and a round or
        a timer is already due then. This is the per-token path, so it returns at once.
        """
        if text_only and reply in self._pending:
            return
        backoff = self._live.get(reply)
        if self.closed or reply.failed or backoff is None:
            return
        self._pending[reply] = backoff
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="parley-pacer")
        if self._wake.is_set():
            return
        now = self.clock()
        t = reply.ready_at(now, backoff.not_before)
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
        at = max(at, self.clock() + ROUND_GAP * len(self._pending))
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
        self._stalled = False
        ready, next_at = self._ready(now)
        for _, reply, backoff in ready:
            # Check the prediction again before planning: a better-placed reply may just have
            # taken the last slot, and planning (splitting, rendering) is the costly part.
            t = reply.ready_at(now, backoff.not_before)
            if t is None or t <= now:
                t = self._offer(reply, backoff, now)
            if t is not None:
                next_at = min(next_at, t)
                self._stalled = self._stalled or t == math.inf
        return next_at

    def _ready(self, now: float) -> tuple[list[tuple[tuple[int, float], Paced, _Backoff]], float]:
        """The waiting replies that could act now, most needy first; and when the next of the
        others could."""
        pending = self._pending
        next_at = math.inf
        ready: list[tuple[tuple[int, float], Paced, _Backoff]] = []
        for reply, backoff in list(pending.items()):
            if reply.failed:  # cannot happen; cheap insurance
                del pending[reply]
                continue
            t = reply.ready_at(now, backoff.not_before)
            if t is None:
                del pending[reply]
                reply.idle()
            elif t <= now:
                ready.append((reply.priority(now), reply, backoff))
            elif t < next_at:
                next_at = t
            if t == math.inf:
                self._stalled = True
        ready.sort(key=lambda e: e[0], reverse=True)
        return ready, next_at

    def _offer(self, reply: Paced, backoff: _Backoff, now: float) -> float | None:
        """Plan ``reply``'s next action and send it if its budgets allow; else when they will.

        A reply with an action in flight plans none (``plan.next_action``), so it can never send
        two at once: it leaves the queue until its action is answered.
        """
        action = self._plan(reply)
        if action is None:
            self._pending.pop(reply, None)
            if not reply.failed:
                reply.idle()
            return None
        windows = reply.windows(action.kind)
        t = free_at(windows, now, urgent=action.urgent, not_before=backoff.not_before)
        if t > now:
            return t
        del self._pending[reply]
        self._dispatch(reply, backoff, action, windows, now)
        return None

    def _plan(self, reply: Paced) -> Action | None:
        """``reply``'s next action; a reply whose planning breaks (e.g. a broken render()) fails."""
        try:
            return reply.next_action()
        except Exception as exc:
            log.exception("planning a reply failed")
            reply.fail(exc)
            return None

    def _dispatch(
        self, reply: Paced, backoff: _Backoff, action: Action, windows: tuple[Window, ...], now: float
    ) -> None:
        for w in windows:
            w.acquire(now)
        reply.begin()
        task = asyncio.get_running_loop().create_task(self._perform(reply, backoff, action, windows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _perform(
        self, reply: Paced, backoff: _Backoff, action: Action, windows: tuple[Window, ...]
    ) -> None:
        surface = reply.surface
        ref: str | None = None
        error: Exception | None = None
        taken = await self._take_shared(reply, backoff, action, windows) if self.shared else None
        if taken is not None and not taken.ok:
            return
        try:
            if action.kind is Kind.POST:
                ref = await surface.post(action.text, live=action.live)
            else:
                await surface.edit(action.ref, action.text, live=action.live)
        except asyncio.CancelledError:
            self._release(reply, windows)
            raise
        except Exception as exc:  # any adapter exception is a refusal: a bug must not hang a reply
            error = exc
        now = self._release(reply, windows)
        if taken is not None and self.shared is not None:
            self.shared.release(taken, now)
        _observe(surface, windows, now)
        try:
            self._settle(reply, backoff, action, windows, ref, error, now)
        except Exception as exc:  # a bug in our own bookkeeping: end this reply, never hang it
            log.exception("after a %s", action.kind.value)
            reply.fail(exc)
        if self._stalled and self._pending:
            self._wake.set()  # the slots just released may be what other replies wait for

    async def _take_shared(
        self, reply: Paced, backoff: _Backoff, action: Action, windows: tuple[Window, ...]
    ) -> Taken:
        """Book the action's slot in the budgets shared with other processes. Refused, it never
        went out: its windows let it go and the reply waits until a slot should be free."""
        assert self.shared is not None
        try:
            taken = await self.shared.take(windows, urgent=action.urgent)
        except BaseException:
            for w in windows:
                w.cancel()
            reply.end()
            raise
        if not taken.ok:
            for w in windows:
                w.cancel()
            reply.end()
            backoff.not_before = max(backoff.not_before, taken.retry_at)
            self.wake(reply)
            if self._stalled and self._pending:
                self._wake.set()  # other replies may have waited on this one's slot
        return taken

    def _release(self, reply: Paced, windows: tuple[Window, ...]) -> float:
        now = self.clock()
        for w in windows:
            w.release(now)
        reply.end()
        return now

    # -- settling an action ----------------------------------------------------------------------

    def _settle(
        self,
        reply: Paced,
        backoff: _Backoff,
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
            backoff.errors = backoff.rate_limits = 0
            backoff.not_before = -math.inf
            reply.sent(action, ref, now)
        elif isinstance(error, RateLimited):
            self.stats.rate_limited += 1
            counts.rate_limited += 1
            self._rate_limited(reply, backoff, action, windows, error, now)
        else:
            self.stats.failures += 1
            counts.failures += 1
            log.warning("%s failed: %r", action.kind.value, error)
            self._refused(reply, backoff, action, error, now)
        self._after(reply)

    def _rate_limited(
        self,
        reply: Paced,
        backoff: _Backoff,
        action: Action,
        windows: tuple[Window, ...],
        error: RateLimited,
        now: float,
    ) -> None:
        until = now + _seconds(error.retry_after) + self.margin
        for w in windows:
            w.pause(until)
        log.warning(
            "429 on %s: pausing %s for %.2fs",
            action.kind.value,
            ", ".join(w.key for w in windows) or "the reply",
            until - now,
        )
        backoff.not_before = until  # also covers surfaces that declare no budget at all
        backoff.rate_limits += 1
        if backoff.rate_limits > self.max_rate_limited:
            backoff.rate_limits = 0
            self._refused(reply, backoff, action, error, now)

    def _refused(self, reply: Paced, backoff: _Backoff, action: Action, error: Exception, now: float) -> None:
        """Back off and try again; after ``max_attempts`` refusals in a row, post an edited part
        anew as a new message, or give the reply up if a post keeps being refused."""
        backoff.errors += 1
        if backoff.errors < self.max_attempts:
            retry_at = now + self.retry_backoff * 2 ** (backoff.errors - 1)
            backoff.not_before = max(backoff.not_before, retry_at)
            return
        backoff.errors = 0
        if action.kind is Kind.EDIT:
            log.warning("edits of %s keep failing (%r); posting a new message", action.ref, error)
            reply.abandon(action.index)
            self.stats.fallbacks += 1
        else:
            reply.fail(error)

    def _after(self, reply: Paced) -> None:
        """An action of ``reply`` finished: plan the next one now, so a finished reply settles at once."""
        if self.closed or reply.failed:
            return
        action = self._plan(reply)
        if reply.failed:
            return
        if action is None:
            reply.idle()
        else:
            self.wake(reply)


def _observe(surface: ReplySurface, windows: tuple[Window, ...], now: float) -> None:
    """Hand what the platform announced about a budget (if anything) to that key's window."""
    announced = getattr(surface, "announced", None)
    if announced is None:
        return
    try:
        said = announced()
    except Exception:  # an adapter bug: pace by the sliding window as before
        log.exception("reading a surface's announced budget failed")
        return
    if not isinstance(said, Announced):
        return
    for w in windows:
        if w.key == said.key:
            w.observe(now, said.remaining, _seconds(said.reset_after), said.limit)


def _seconds(value: object) -> float:
    """A usable pause from whatever a surface put in ``retry_after``."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1.0
    if math.isnan(seconds):
        return 1.0
    return min(max(seconds, 0.0), 3600.0)
