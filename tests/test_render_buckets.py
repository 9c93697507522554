"""budget.Window following a bucket the platform announces (Discord's X-RateLimit-* headers):
the whole bucket used, the held-back slot given out before the refill, never one request over."""

from __future__ import annotations

import asyncio
import math
import time
from itertools import pairwise

import pytest

from bench.pacesim import FixedBucket
from bot.render import Pacer
from bot.render.budget import HOLD_RELEASE, BudgetBook
from bot.render.plan import Kind
from bot.render.surface import Announced, Budget
from tests.fakes.surface import RecordingSurface

CAPACITY, WINDOW, RTT = 5, 5.0, 0.04


def run(final_at: float, until: float, bucket: FixedBucket) -> tuple[list[float], float]:
    """Intermediate edits whenever the window allows, the final (urgent) one once ``final_at`` has
    come; each request lands at the platform half a round trip after it is sent. Returns the
    intermediate start times and the final's."""
    (w,) = BudgetBook(margin=0.1).resolve([Budget("discord:channel:1:edit", CAPACITY, WINDOW)])
    starts: list[float] = []
    t = 0.0
    final = math.inf
    while t < until:
        urgent = t >= final_at
        t = max(t, w.free_at(t, urgent=urgent))
        urgent = t >= final_at
        w.acquire(t)
        remaining, reset_after = bucket.hit(t + RTT / 2)
        w.release(t + RTT)
        w.observe(t + RTT, remaining, reset_after)
        if urgent:
            final = t
            break
        starts.append(t)
        t += RTT
    return starts, final


def test_the_whole_bucket_is_used_without_one_request_over() -> None:
    bucket = FixedBucket(CAPACITY, WINDOW)
    starts, _ = run(math.inf, 60.0, bucket)
    assert bucket.refused == 0
    # One edit a second, Discord's own rate (a sliding window held from each answer would
    # manage 5 per 5.1 s plus the round trip, and only 4 with a slot kept for the final text).
    assert len(starts) >= 59
    gaps = [b - a for a, b in pairwise(starts)]
    assert max(gaps) <= WINDOW / CAPACITY + RTT + 1e-9


@pytest.mark.parametrize("final_at", [k * 0.137 for k in range(8, 60)])
def test_the_final_text_waits_at_most_one_spacing_and_never_meets_a_429(final_at: float) -> None:
    bucket = FixedBucket(CAPACITY, WINDOW)
    _, final = run(final_at, 30.0, bucket)
    assert bucket.refused == 0
    assert final - final_at <= HOLD_RELEASE * WINDOW / CAPACITY + RTT + 1e-9


def test_the_last_request_of_a_bucket_is_held_for_first_or_final_text() -> None:
    (w,) = BudgetBook(margin=0.1).resolve([Budget("k", CAPACITY, WINDOW)])
    w.observe(0.0, remaining=1, reset_after=4.0)  # one left, refilling at 4.0
    assert w.free_at(0.5, urgent=True) == 0.5  # a final text takes it at once
    # an intermediate edit leaves it until the bucket is about to refill (unused, it is lost)
    assert w.free_at(0.5, urgent=False) == pytest.approx(4.0 - HOLD_RELEASE * WINDOW / CAPACITY)
    w.acquire(0.5)
    w.release(0.55)
    w.observe(0.55, remaining=0, reset_after=3.45)
    assert w.free_at(0.6, urgent=True) == pytest.approx(4.0)  # empty: everyone waits for the refill
    assert w.free_at(4.0, urgent=False) == 4.0  # refilled: five again
    for t in (4.0, 4.0, 4.0, 4.0):
        w.acquire(t)  # in flight, unanswered: counted off the fresh bucket
    assert w.free_at(4.0, urgent=True) == 4.0
    w.acquire(4.0)
    assert w.free_at(4.0, urgent=True) == math.inf  # only an answer can say more


def test_requests_in_flight_are_counted_off_an_older_answer() -> None:
    (w,) = BudgetBook(margin=0.1).resolve([Budget("k", CAPACITY, WINDOW)])
    w.acquire(0.0)
    w.acquire(0.0)
    w.release(0.1)  # the first answer says 3 left; the second request may not be in that figure
    w.observe(0.1, remaining=3, reset_after=4.9)
    for _ in range(2):
        assert w.free_at(0.1, urgent=True) == 0.1
        w.acquire(0.1)
    assert w.free_at(0.1, urgent=True) == pytest.approx(5.0)


def test_an_announced_bucket_never_gives_more_than_the_declared_capacity() -> None:
    (w,) = BudgetBook(margin=0.1).resolve([Budget("k", CAPACITY, WINDOW)])
    w.observe(0.0, remaining=9, reset_after=5.0, limit=10)  # Discord says ten: Parley said five
    for _ in range(CAPACITY):
        assert w.free_at(0.0, urgent=True) == 0.0
        w.acquire(0.0)
    assert w.free_at(0.0, urgent=True) == 5.0  # the sixth waits for the refill


def test_an_action_answered_without_a_count_cannot_stall_the_key() -> None:
    (w,) = BudgetBook(margin=0.1).resolve([Budget("k", CAPACITY, WINDOW)])
    w.observe(0.0, remaining=0, reset_after=1.0)
    for _ in range(CAPACITY):
        w.acquire(1.0)  # after the refill, all five sent...
        w.release(1.1)  # ...and answered by a refusal with no headers
    assert w.free_at(1.2, urgent=True) == pytest.approx(1.1 + WINDOW + 0.1)
    assert w.quiet_after() == pytest.approx(1.1 + WINDOW + 0.1)


def test_a_quiet_key_is_kept_until_its_bucket_refills() -> None:
    book = BudgetBook(margin=0.1)
    (w,) = book.resolve([Budget("k", CAPACITY, WINDOW)])
    w.acquire(0.0)
    w.release(0.1)
    w.observe(0.1, remaining=0, reset_after=20.0)  # an announced window longer than declared
    assert w.quiet_after() == pytest.approx(20.1)


class AnnouncingSurface(RecordingSurface):
    """The kit's surface on a platform that announces fixed-window buckets for posts and edits
    (5 per second here), as Discord's ``X-RateLimit-*`` headers do: the ``Announces`` capability."""

    def __init__(self) -> None:
        super().__init__(
            post_budgets=[Budget("posts", 5, 1.0)], edit_budgets=[Budget("edits", 5, 1.0)], latency=0.005
        )
        self.post_bucket = FixedBucket(5, 1.0)
        self.edit_bucket = FixedBucket(5, 1.0)
        self.said: Announced | None = None

    async def post(self, text: str, *, live: bool) -> str:
        ref = await super().post(text, live=live)
        left, reset = self.post_bucket.hit(time.monotonic())
        self.said = Announced("posts", left, reset)
        return ref

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        await super().edit(ref, text, live=live)
        left, reset = self.edit_bucket.hit(time.monotonic())
        self.said = Announced("edits", left, reset, 5)

    def announced(self) -> Announced | None:
        return self.said


async def test_the_pacer_follows_what_the_surface_announces() -> None:
    pacer = Pacer()
    surface = AnnouncingSurface()
    reply = pacer.reply(surface)
    await reply.start()
    text = ""
    for i in range(120):  # about 2.4 s of tokens
        text += f"word{i} "
        reply.update(text)
        await asyncio.sleep(0.02)
    await reply.finish(text)
    await pacer.aclose()
    assert surface.messages == [text]
    assert surface.edit_bucket.refused == 0 and surface.post_bucket.refused == 0
    assert pacer.stats.rate_limited == 0
    (window,) = reply.windows(Kind.EDIT)
    assert window._bucket is not None  # paced by the platform's count from its first answer on
    # Some one-second bucket took five edits before the final text: the slot a sliding window
    # keeps for the final text was given out before the refill.
    starts = [c.t1 for c in surface.edits][:-1]  # when the platform took each edit
    assert any(sum(t <= x < t + 1.0 for x in starts) == 5 for t in starts)
