"""Shared rate budgets: two renderers (two processes' pacers) booking through one PostgreSQL stay
inside one budget together, the first and final texts keep their reserve, and the single-process
path books nothing. Needs ``PARLEY_TEST_POSTGRES_URL``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.render import Pacer
from bot.render.budget import Window
from bot.render.surface import Budget
from bot.store import Store
from bot.store.budgets import PostgresBudgets
from tests.fakes.surface import RecordingSurface, Timeline
from tests.instances_harness import most_in_any_window, needs_postgres

pytestmark = needs_postgres

EDITS = Budget("test:T1:chat.update", 6, 1.0)
POSTS = Budget("test:T1:post", 20, 1.0)


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    store = await Store.open(pg_url)
    try:
        yield store
    finally:
        await store.close()


def _window(budget: Budget, margin: float = 0.1) -> Window:
    return Window(budget.key, budget.capacity, budget.window, margin=margin, smooth=True)


async def test_two_processes_book_one_budget_between_them(pg_store: Store) -> None:
    a = PostgresBudgets(pg_store.engine, "a")
    b = PostgresBudgets(pg_store.engine, "b")
    try:
        wa, wb = _window(EDITS), _window(EDITS)
        granted = []
        for booker, window in [(a, wa), (b, wb)] * 4:
            window.acquire(0.0)
            taken = await booker.take([window], urgent=True)
            granted.append(taken.ok)
            if not taken.ok:
                window.cancel()
        assert granted == [True] * 6 + [False] * 2
        # The refused one's window now counts every slot of both processes: none is free.
        now = time.monotonic()
        assert wb.free_at(now, urgent=True) > now + 0.5
        refused = await b.take([wb], urgent=True)
        assert not refused.ok and refused.retry_at > 0
        # Intermediate edits leave the reserve (1 of 6) to first and final text.
        wa.acquire(0.0)
        assert not (await a.take([wa], urgent=False)).ok
        wa.cancel()
        assert a.bookings + b.bookings == 10 and a.refusals + b.refusals == 4
    finally:
        await a.aclose()
        await b.aclose()


async def test_released_slots_count_a_window_from_their_answer(pg_store: Store) -> None:
    budget = Budget("test:short", 2, 0.3)
    a = PostgresBudgets(pg_store.engine, "a")
    try:
        window = _window(budget, margin=0.0)
        for _ in range(2):
            window.acquire(0.0)
            taken = await a.take([window], urgent=True)
            assert taken.ok
            await asyncio.sleep(0.2)  # the platform answers
            window.release(asyncio.get_running_loop().time())
            a.release(taken, window.span)
        window.acquire(0.0)
        assert not (await a.take([window], urgent=True)).ok  # the first still counts
        window.cancel()
        await asyncio.sleep(0.35)
        window.acquire(0.0)
        assert (await a.take([window], urgent=True)).ok
    finally:
        await a.aclose()


async def _stream_replies(pacer: Pacer, timeline: Timeline, n: int, name: str) -> list[RecordingSurface]:
    budgets = {"post_budgets": [POSTS], "edit_budgets": [EDITS]}
    surfaces = [RecordingSurface(timeline, **budgets, latency=0.01, name=f"{name}{i}") for i in range(n)]

    async def one(surface: RecordingSurface) -> None:
        stream = pacer.reply(surface)
        await stream.start()
        text = ""
        for word in range(40):
            text += f"w{word} "
            stream.update(text)
            await asyncio.sleep(0.05)
        await stream.finish(text + "end")

    await asyncio.gather(*(one(s) for s in surfaces))
    return surfaces


async def test_two_renderers_sharing_a_budget_never_pass_it_and_finish_every_reply(pg_store: Store) -> None:
    timeline = Timeline()
    a_budgets, b_budgets = PostgresBudgets(pg_store.engine, "a"), PostgresBudgets(pg_store.engine, "b")
    a, b = Pacer(shared=a_budgets), Pacer(shared=b_budgets)
    try:
        done = await asyncio.gather(
            _stream_replies(a, timeline, 5, "a"), _stream_replies(b, timeline, 5, "b")
        )
    finally:
        await a.aclose()
        await b.aclose()
        await a_budgets.aclose()
        await b_budgets.aclose()
    for surface in (*done[0], *done[1]):
        assert surface.final is not None and surface.final.endswith("w39 end")
    edits = [c for c in timeline.actions("edit")]
    # Together: never more than the budget in any window, counting from each edit's answer.
    assert most_in_any_window([c.t1 for c in edits], EDITS.window) <= EDITS.capacity
    assert most_in_any_window([c.t0 for c in edits], EDITS.window) <= EDITS.capacity
    # And both processes used it, about evenly.
    by = {p: sum(1 for c in edits if c.surface.startswith(p)) for p in "ab"}
    assert min(by.values()) >= 0.3 * sum(by.values())
    assert a_budgets.bookings and b_budgets.bookings


async def test_without_a_shared_state_nothing_is_booked() -> None:
    pacer = Pacer()
    assert pacer.shared is None
    timeline = Timeline()
    (surface,) = await _stream_replies(pacer, timeline, 1, "solo")
    await pacer.aclose()
    assert surface.final is not None
