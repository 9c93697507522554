"""budget.py: sliding windows held until the answer, margins, reserve and spacing, pauses."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from bot.render.budget import BURST_MAX_GAP, BudgetBook, Window, free_at
from bot.render.surface import Budget


def window(capacity: int = 3, span: float = 1.0, *, margin: float = 0.0, smooth: bool = False) -> Window:
    return Window("k", capacity, span, margin=margin, smooth=smooth)


def test_capacity_then_wait_for_oldest_to_expire() -> None:
    w = window(3, 1.0)
    for t in (0.0, 0.1, 0.2):
        assert w.free_at(t, urgent=True) == t
        w.acquire(t)
        w.release(t)
    # full: the next slot opens when the first action leaves the window
    assert w.free_at(0.3, urgent=True) == pytest.approx(1.0)
    assert w.free_at(1.0, urgent=True) == 1.0
    assert w.used(1.05) == 2


def test_window_counts_from_the_answer_not_the_send() -> None:
    w = window(1, 1.0)
    w.acquire(0.0)
    # in flight: the platform may not have seen it yet, so no end is known
    assert w.free_at(0.5, urgent=True) == math.inf
    w.release(0.4)  # answer came back at 0.4: the platform saw it at the latest then
    assert w.free_at(0.5, urgent=True) == pytest.approx(1.4)


def test_margin_lengthens_every_window() -> None:
    w = window(1, 1.0, margin=0.25)
    w.acquire(0.0)
    w.release(0.0)
    assert w.free_at(0.0, urgent=True) == pytest.approx(1.25)


def test_pause_blocks_until_given_time() -> None:
    w = window(5, 1.0)
    w.pause(3.0)
    w.pause(2.0)  # a shorter pause never shortens a longer one
    assert w.free_at(0.0, urgent=True) == 3.0
    assert w.free_at(3.5, urgent=True) == 3.5


def test_smoothing_reserves_slots_and_spaces_intermediate_actions() -> None:
    w = window(5, 1.0, smooth=True)  # reserve 1, spacing 1/4 s
    t = 0.0
    for _ in range(4):
        t = w.free_at(t, urgent=False)
        w.acquire(t)
        w.release(t)
    assert t == pytest.approx(0.75)  # spread evenly, not burst
    # four used: intermediate actions must wait for the window, the reserved slot is for urgent ones
    assert w.free_at(0.8, urgent=False) == pytest.approx(1.0)
    assert w.free_at(0.8, urgent=True) == 0.8


def test_tighten_keeps_the_stricter_declaration() -> None:
    w = window(5, 1.0)
    w.tighten(10, 0.5)
    assert (w.capacity, w.window) == (5, 1.0)
    w.tighten(3, 2.0)
    assert (w.capacity, w.window) == (3, 2.0)


def test_book_shares_windows_by_key() -> None:
    book = BudgetBook(margin=0.0, smooth=False)
    a = book.resolve([Budget("chan:1", 5, 5.0), Budget("global", 50, 1.0)])
    b = book.resolve([Budget("chan:2", 5, 5.0), Budget("global", 50, 1.0)])
    assert a[1] is b[1] and a[0] is not b[0]
    assert len(book) == 3
    # the same key twice in one declaration counts once per action
    assert len(book.resolve([Budget("x", 1, 1.0), Budget("x", 1, 1.0)])) == 1


def test_free_at_over_several_windows_takes_the_latest() -> None:
    a, b = window(1, 1.0), window(1, 2.0)
    for w in (a, b):
        w.acquire(0.0)
        w.release(0.0)
    assert free_at((a, b), 0.5, urgent=True) == 2.0
    assert free_at((), 0.5, urgent=True) == 0.5
    assert free_at((), 0.5, urgent=True, not_before=0.7) == 0.7


@pytest.mark.parametrize(("capacity", "span"), [(0, 1.0), (1, 0.0), (1, -1.0), (1, math.inf)])
def test_invalid_budgets_are_refused(capacity: int, span: float) -> None:
    with pytest.raises(ValueError):
        window(capacity, span)


def test_reserve_is_a_rounded_down_share_and_never_the_whole_budget() -> None:
    def paced_slots(capacity: int, reserve: float) -> int:
        w = Window("k", capacity, 1.0, margin=0.0, smooth=True, reserve=reserve)
        n = 0
        # Spacing puts each next slot inside the window; the count limit pushes it to the window's end.
        while w.free_at(0.0, urgent=False) < 1.0:
            w.acquire(0.0)
            w.release(0.0)
            n += 1
        return n

    assert paced_slots(4, 0.1) == 4  # a small budget keeps every slot for the text
    assert paced_slots(5, 0.1) == 4  # from five slots on, at least one is kept
    assert paced_slots(15, 0.1) == 14
    assert paced_slots(45, 0.1) == 41
    assert paced_slots(50, 0.2) == 40
    assert paced_slots(1, 0.9) == 1  # an intermediate edit can always get through eventually
    assert paced_slots(5, 0.0) == 5  # no share asked for: no reserve
    with pytest.raises(ValueError):
        BudgetBook(reserve=1.0)


def _greedy_starts(w: Window, until: float, rtt: float = 0.05) -> list[float]:
    """Start an intermediate action whenever the window allows one, each answered after ``rtt``."""
    starts: list[float] = []
    t = 0.0
    while True:
        t = w.free_at(t, urgent=False)
        if t >= until:
            return starts
        w.acquire(t)
        starts.append(t)
        t += rtt
        w.release(t)


def test_a_fresh_long_window_bursts_then_never_leaves_a_gap_over_the_guard() -> None:
    # Slack's chat.update as Parley declares it: 45 a minute, 4 kept for first and final texts.
    w = Window("k", 45, 60.0, margin=0.1, smooth=True)
    even = 60.1 / 41
    starts = _greedy_starts(w, 300.0)
    # A short answer gets far more than one edit per even spacing: most of the idle budget...
    assert sum(s < 7.0 for s in starts) >= 24 > 5 * 7.0 / even
    # ...and however long the answer, no gap between two edits exceeds the guarded one.
    gaps = [b - a for a, b in pairwise(starts)]
    assert max(gaps) <= BURST_MAX_GAP * even + 0.06
    # Never more than the non-reserved slots in any window (the count limit still holds).
    for i, s in enumerate(starts):
        assert sum(s <= x < s + 60.1 for x in starts[i:]) <= 41
    # Over five minutes the whole rate is still used, bursts or not.
    assert len(starts) >= 0.95 * 41 * 300 / 60.1


def test_the_burst_leaves_the_reserve_and_a_sustainable_rate() -> None:
    w = Window("k", 45, 60.0, margin=0.1, smooth=True)
    starts = _greedy_starts(w, 10.0, rtt=0.0)
    # After the burst, the slots still free cover one edit per guarded gap until the first ends.
    gap = BURST_MAX_GAP * 60.1 / 41
    free = 41 - len(starts)
    assert free * gap >= starts[0] + 60.1 - 10.0 - gap
    assert w.free_at(10.0, urgent=True) == 10.0  # first and final texts still go at once


def test_a_spacing_shorter_than_a_round_trip_is_dropped() -> None:
    # Discord's global budget: 31 paced slots a second would space every reply's edits 35 ms
    # apart and queue twenty replies editing at once; the count alone paces it.
    w = Window("k", 34, 1.0, margin=0.1, smooth=True)
    assert w.spacing == 0.0
    starts = _greedy_starts(w, 0.5, rtt=0.0)
    assert len(starts) == 34 - w._reserve and set(starts) == {0.0}


@pytest.mark.parametrize(("capacity", "span"), [(4, 5.0), (5, 5.0), (3, 3.0)])
def test_windows_short_next_to_a_reply_keep_even_spacing(capacity: int, span: float) -> None:
    w = Window("k", capacity, span, margin=0.1, smooth=True)
    slots = capacity - w._reserve
    assert w.spacing == pytest.approx((span + 0.1) / slots)
    starts = _greedy_starts(w, 4 * span, rtt=0.0)
    assert [b - a for a, b in pairwise(starts)] == pytest.approx([(span + 0.1) / slots] * (len(starts) - 1))
