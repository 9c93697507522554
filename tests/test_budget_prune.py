"""Budget windows are forgotten once quiet (Discord has a key per thread, so keys keep coming),
and never while they still count something or a reply still holds them."""

from __future__ import annotations

import gc

from bot.render import Budget, BudgetBook
from bot.render.budget import PRUNE_EVERY


def test_quiet_windows_are_forgotten_and_busy_or_held_ones_are_not() -> None:
    book = BudgetBook(margin=0.0)
    (busy,) = book.resolve([Budget("busy", 5, 10.0)])
    (held,) = book.resolve([Budget("held", 5, 10.0)])
    held.acquire(0.0)
    held.release(0.5)  # counts until 10.5
    busy.acquire(0.0)  # in flight throughout: never quiet
    for i in range(PRUNE_EVERY * 4):  # one thread each, used once at time i / 50
        (w,) = book.resolve([Budget(f"thread-{i}", 5, 1.0)])
        w.acquire(i / 50)
        w.release(i / 50)
    assert book.prune() > 0
    assert len(book) < 150  # the threads of the last second or so, the busy window, the held one
    assert book.get("busy") is busy
    # "held" went quiet and was dropped from the book, but a reply holds it: the next reply on that
    # key gets the same window, so the two never count apart.
    assert book.get("held") is None
    (again,) = book.resolve([Budget("held", 5, 10.0)])
    assert again is held
    del held, again, w
    gc.collect()
    book.prune()
    (fresh,) = book.resolve([Budget("thread-0", 5, 1.0)])
    assert fresh.used(30.0) == 0
