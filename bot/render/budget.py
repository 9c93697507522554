"""Sliding-window budgets, shared by every reply in the process that touches the same key.

The platform counts a request when it arrives, which is somewhere between our send and its
answer. A slot is therefore held from the moment we send until the answer is back, and only then
does its window start (lengthened by a safety margin): however the network delays individual
requests, the platform never sees more than ``capacity`` of them in any ``window``.

A platform that announces its own count (Discord's ``X-RateLimit-*`` headers: so many requests
left until the bucket resets) is followed instead, once it has answered: its figure is exact, and
its buckets refill all at once, which a sliding window cannot know (see :meth:`Window.observe`).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from bot.render.surface import Budget

log = logging.getLogger(__name__)

# Default share of each budget that intermediate edits leave free, so the first and the final
# text of a reply find a slot at once instead of queueing behind intermediate edits. Rounded
# down, but a budget of at least RESERVE_FROM slots keeps one: 5 keeps 1 (Discord's channel),
# 45 keeps 4 (Slack's chat.update), 90 keeps 9; 3 or 4 keep none (one slot would cost them a
# quarter of their rate or more).
RESERVE_FRACTION = 0.1
RESERVE_FROM = 5
# Resolves (one per reply) between two prunings of quiet windows.
PRUNE_EVERY = 256
# Intermediate actions may burst while a window is fresh, but never so far that a reply still
# streaming later would wait longer than this many even spacings (window / slots) for its next
# one; and a burst is spread over about this many seconds (a typical short answer), not spent on
# the first tokens. Chosen with ``python -m bench.pacesim`` and the bench (docs/performance.md):
# an idle Slack workspace spends about 27 of its 41 chat.update slots on a 7 s answer (an edit
# every 0.3 s), ten answers at once share them, and a longer answer then gets one at least every
# 4.4 s until the burst's slots come back a minute later.
BURST_MAX_GAP = 3.0
BURST_HORIZON = 8.0
# Even spacing shorter than this spreads nothing (it is under a round trip to the platform) and
# only queues replies that share a busy key: Discord's global budget would space every reply's
# intermediate edits 35 ms apart, so twenty replies editing at once wait up to 0.7 s.
MIN_SPACING = 0.1
# An announced bucket's held-back slot (the reserve) goes to an intermediate action once the
# bucket resets within this share of one even spacing: unused by then it would be lost, and the
# final text can wait no longer than that for the refill.
HOLD_RELEASE = 1.0


@dataclass(slots=True)
class _Bucket:
    """The platform's own count for a key, as its latest answer announced it."""

    left: int  # requests it still takes before ``reset``, ours sent since counted off
    reset: float  # when it refills to ``limit``; inf: unknown until the next answer
    limit: int


class Window:
    """The live state of one budget key.

    Intermediate (non-urgent) actions are paced so that a reply can never freeze: a budget like
    Slack's 50 edits a minute spent in the first seconds of a reply would leave it (final text
    included) frozen for the rest of the minute. They may burst while the window is fresh, a gap
    of ``window / burst`` seconds apart, but only as long as, after the action, one action every
    ``guard_gap`` seconds could still be kept up until the window refills (see :meth:`_guard`).
    Where the window is short next to a reply (Discord's 5 s) that leaves no burst, and the
    actions are spread evenly over the window.
    """

    __slots__ = (
        "__weakref__",
        "_bucket",
        "_bucket_spacing",
        "_ends",
        "_guard_at",
        "_guard_gap",
        "_guard_state",
        "_in_flight",
        "_last_start",
        "_margin",
        "_paused_until",
        "_reserve",
        "_reserve_fraction",
        "_smooth",
        "_spacing",
        "_span",
        "capacity",
        "key",
        "window",
    )

    def __init__(
        self,
        key: str,
        capacity: int,
        window: float,
        *,
        margin: float,
        smooth: bool,
        reserve: float = RESERVE_FRACTION,
    ) -> None:
        self.key = key
        self._margin = margin
        self._smooth = smooth
        self._reserve_fraction = reserve
        # When each finished action stops counting, oldest first: finishes are recorded in clock
        # order with the same span, so appending keeps the deque sorted.
        self._ends: deque[float] = deque()
        self._in_flight = 0
        self._last_start = -math.inf
        self._paused_until = -math.inf
        self.capacity = capacity
        self.window = window
        self._span = 0.0
        self._reserve = 0
        self._spacing = 0.0
        self._guard_gap = 0.0
        self._guard_state: tuple[int, int, float] = (-1, -1, 0.0)
        self._guard_at = -math.inf
        self._bucket: _Bucket | None = None
        self._bucket_spacing = 0.0
        self._configure(capacity, window)

    def _configure(self, capacity: int, window: float) -> None:
        _validate(self.key, capacity, window)
        self.capacity = capacity
        self.window = window
        self._span = window + self._margin
        share = self._reserve_fraction
        floor = 1 if capacity >= RESERVE_FROM and share > 0 else 0
        self._reserve = min(capacity - 1, max(floor, int(capacity * share))) if self._smooth else 0
        self._spacing = self._guard_gap = self._bucket_spacing = 0.0
        self._guard_state = (-1, -1, 0.0)
        if self._smooth:
            slots = capacity - self._reserve
            even = self._span / slots
            # Slots that can go in a burst while one every guard_gap stays possible for a window.
            burst = slots - math.ceil(self._span / (BURST_MAX_GAP * even))
            if burst > 0 and BURST_HORIZON / burst < even:
                self._spacing = BURST_HORIZON / burst
                self._guard_gap = BURST_MAX_GAP * even
            elif even >= MIN_SPACING:
                self._spacing = even
            # An announced bucket is exact and gives its held-back slot out before it refills:
            # intermediate actions may go at the platform's own rate.
            rate_gap = window / capacity
            if self._guard_gap:
                self._bucket_spacing = self._spacing
            elif rate_gap >= MIN_SPACING:
                self._bucket_spacing = rate_gap

    def tighten(self, capacity: int, window: float) -> None:
        """Two surfaces declared the same key differently: keep the stricter of each."""
        if capacity < self.capacity or window > self.window:
            log.warning(
                "budget %s declared as %d/%ss and %d/%ss; using the stricter",
                self.key,
                self.capacity,
                self.window,
                capacity,
                window,
            )
            self._configure(min(capacity, self.capacity), max(window, self.window))

    def used(self, now: float) -> int:
        """Actions that still count at ``now`` (in flight included)."""
        self._expire(now)
        return len(self._ends) + self._in_flight

    def free_at(self, now: float, *, urgent: bool) -> float:
        """Earliest time (≥ now) an action may start; ``inf`` while only in-flight actions block."""
        if self._bucket is not None:
            t = self._bucket_free_at(now, urgent=urgent)
            return t if t > self._paused_until else self._paused_until
        self._expire(now)
        limit = self.capacity if urgent else self.capacity - self._reserve
        n = len(self._ends) + self._in_flight
        if n < limit:
            t = now
        else:
            k = n - limit  # this many must expire before one more fits; in-flight ones sort last
            t = self._ends[k] if k < len(self._ends) else math.inf
        if not urgent:
            if self._last_start + self._spacing > t:
                t = self._last_start + self._spacing
            if self._guard_gap:
                guard = self._guard(limit, n)
                if guard > t:
                    t = guard
        return t if t > self._paused_until else self._paused_until

    def _guard(self, limit: int, n: int) -> float:
        """Earliest start after which one action every ``guard_gap`` s stays possible until the
        window refills.

        With ``f`` slots free after this action and the counting actions ending at ``e_0 <= e_1
        <= …``, the ``m``-th action after this one (at ``+ m·gap``) finds a slot if no more than
        ``f + j`` actions come before ``e_j``: ``start > e_j − (f + j + 1)·gap`` for every ``j``.
        Actions in flight end last and after a full window, so they never bind. Memoised: the
        answer changes only when an action starts, ends, or stops counting.
        """
        ends = self._ends
        state = (len(ends), self._in_flight, ends[0] if ends else 0.0)
        if state == self._guard_state:
            return self._guard_at
        gap = self._guard_gap
        at = -math.inf
        # Those that must expire before the count limit lets this action through at all are
        # skipped: by then they no longer count.
        for j in range(max(0, n - limit + 1), len(ends)):
            t = ends[j] - (limit - n + j) * gap
            if t > at:
                at = t
        self._guard_state, self._guard_at = state, at
        return at

    def _bucket_free_at(self, now: float, *, urgent: bool) -> float:
        """:meth:`free_at` by the platform's announced count.

        First and final text may take the last request the bucket has left; intermediate actions
        leave it (the reserve) until the bucket is about to refill, when unused it would be lost.
        """
        bucket = self._roll(now)
        left = bucket.left
        if urgent:
            return now if left > 0 else bucket.reset
        t = self._last_start + self._bucket_spacing
        if t < now:
            t = now
        if left > self._reserve:
            return t
        if left <= 0:
            return max(t, bucket.reset)
        release = bucket.reset - HOLD_RELEASE * self._bucket_spacing
        return t if t > release else release

    def _roll(self, now: float) -> _Bucket:
        bucket = self._bucket
        assert bucket is not None
        if now >= bucket.reset:
            # Refilled. Requests still in flight may land in the new count: counted there.
            bucket.left = bucket.limit - self._in_flight
            bucket.reset = math.inf
        return bucket

    def observe(self, now: float, remaining: int, reset_after: float, limit: int | None = None) -> None:
        """The platform's answer to an action on this key said how its bucket stands: ``remaining``
        more requests until it refills in ``reset_after`` seconds (to ``limit``, else capacity).

        From then on the key is paced by that count, not by the sliding window, though never past
        the declared capacity in one refill. The figure may leave out requests still in flight
        (they arrived after the answered one): they are counted off it. ``now + reset_after`` is
        never early, since the platform said it before ``now``; each answer replaces the count,
        so one request at a time per key keeps it exact.
        """
        top = self.capacity if limit is None else min(self.capacity, limit)
        left = min(max(0, remaining), top) - self._in_flight
        reset = now + max(0.0, reset_after)
        if self._bucket is None:
            self._bucket = _Bucket(left, reset, top)
        else:
            self._bucket.left, self._bucket.reset, self._bucket.limit = left, reset, top

    def acquire(self, now: float) -> None:
        if self._bucket is not None:
            self._roll(now).left -= 1
        self._in_flight += 1
        self._last_start = now

    def release(self, now: float) -> None:
        """The action acquired earlier has its answer: its window starts now."""
        self._in_flight -= 1
        self._ends.append(now + self._span)
        bucket = self._bucket
        if bucket is not None and bucket.reset == math.inf:
            # Sent after a refill and answered without a count (an error): the bucket has
            # refilled again a window after the answer at the latest, unless told otherwise.
            bucket.reset = now + self._span

    def pause(self, until: float) -> None:
        """The platform said 429: nothing may use this key before ``until``."""
        if until > self._paused_until:
            self._paused_until = until

    def _expire(self, now: float) -> None:
        ends = self._ends
        while ends and ends[0] <= now:
            ends.popleft()

    def quiet_after(self) -> float:
        """From this moment on the window holds nothing a fresh one would not: no action in flight
        or still counting, no pause, no spacing to keep."""
        if self._in_flight:
            return math.inf
        last_end = self._ends[-1] if self._ends else -math.inf
        if self._bucket is not None and self._bucket.reset > last_end:
            # Forgotten before its refill, the key would start afresh as if the bucket were full.
            last_end = self._bucket.reset
        return max(last_end, self._last_start + self._spacing, self._paused_until)

    @property
    def spacing(self) -> float:
        """Least gap between two intermediate actions (0 without smoothing)."""
        return self._spacing

    # -- shared with other processes (bot/render/shared.py) --------------------------------------

    @property
    def span(self) -> float:
        """How long an answered action keeps counting: the window plus the margin."""
        return self._span

    def limit(self, *, urgent: bool) -> int:
        """Actions that may count when one more starts: all of them for first and final text,
        the budget less its reserve for the others."""
        return self.capacity if urgent else self.capacity - self._reserve

    def mirror(self, ends: Iterable[float]) -> None:
        """The shared state's view of this key: when each action still counting ends, on this
        clock — other processes' and this one's answered actions alike (its actions in flight
        stay counted here). Replaces what this window knew."""
        self._ends = deque(sorted(ends))
        self._guard_state = (-1, -1, 0.0)

    def cancel(self) -> None:
        """An acquired action never went out (the shared budget refused it): it counts no more."""
        self._in_flight -= 1


def _validate(key: str, capacity: int, window: float) -> None:
    if capacity < 1 or not window > 0 or math.isinf(window):
        raise ValueError(f"budget {key!r}: need capacity >= 1 and a finite window > 0")


def free_at(windows: Iterable[Window], now: float, *, urgent: bool, not_before: float = -math.inf) -> float:
    """When an action touching all ``windows`` may start."""
    t = now if now > not_before else not_before
    for w in windows:
        f = w.free_at(now, urgent=urgent)
        if f > t:
            t = f
    return t


class BudgetBook:
    """Every budget key the process has seen, so that equal keys share one :class:`Window`."""

    def __init__(
        self, *, margin: float = 0.1, smooth: bool = True, reserve: float = RESERVE_FRACTION
    ) -> None:
        if margin < 0:
            raise ValueError("margin must be >= 0")
        if not 0.0 <= reserve < 1.0:
            raise ValueError("reserve must be in [0, 1)")
        self._margin = margin
        self._smooth = smooth
        self._reserve = reserve
        self._windows: dict[str, Window] = {}
        # Windows dropped from _windows while quiet that a reply still holds: it and any new
        # reply on the same key must share one window, so such a window is taken back.
        self._held: weakref.WeakValueDictionary[str, Window] = weakref.WeakValueDictionary()
        self._resolves = 0

    def resolve(self, budgets: Iterable[Budget]) -> tuple[Window, ...]:
        self._resolves += 1
        if self._resolves % PRUNE_EVERY == 0:
            self.prune()
        found: dict[str, Window] = {}
        for b in budgets:
            w = self._windows.get(b.key)
            if w is None:
                w = self._held.get(b.key)
                if w is not None:
                    self._windows[b.key] = w
            if w is None:
                w = self._windows[b.key] = Window(
                    b.key,
                    b.capacity,
                    b.window,
                    margin=self._margin,
                    smooth=self._smooth,
                    reserve=self._reserve,
                )
            else:
                w.tighten(b.capacity, b.window)
            found[b.key] = w
        return tuple(found.values())

    def get(self, key: str) -> Window | None:
        return self._windows.get(key)

    def prune(self) -> int:
        """Forget quiet windows (Discord has one per thread, so keys keep coming); returns how many.

        A window is quiet once nothing in it counts any more. The latest action start in the book
        stands in for "now": it is never later than now, whatever clock the Pacer uses, so a
        window is only ever forgotten too late, never too early.
        """
        if not self._windows:
            return 0
        now = max(w._last_start for w in self._windows.values())
        quiet = [key for key, w in self._windows.items() if w.quiet_after() <= now]
        for key in quiet:
            self._held[key] = self._windows.pop(key)
        return len(quiet)

    def __len__(self) -> int:
        return len(self._windows)
