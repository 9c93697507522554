"""Hundreds of concurrent replies on one core: per-token cost stays flat and budgets still hold."""

from __future__ import annotations

import asyncio
import time

from bot.render import Budget, Pacer
from bot.render.pacer import ROUND_GAP
from tests.fakes.surface import RecordingSurface, Timeline
from tests.test_render_stream import VirtualTime, assert_budgets_respected, assert_final, let_loop_run, prose

REPLIES = 300
CHANNELS = 30
UPDATES = 100


async def test_300_replies_with_many_updates_each() -> None:
    pacer = Pacer(margin=0.01)
    tl = Timeline()
    everything = Budget("global", 300, 0.1)
    surfaces = [
        RecordingSurface(
            tl,
            max_chars=300,
            post_budgets=[Budget(f"chan:{i % CHANNELS}:posts", 5, 0.1), everything],
            edit_budgets=[Budget(f"chan:{i % CHANNELS}:edits", 5, 0.1), everything],
        )
        for i in range(REPLIES)
    ]
    replies = [pacer.reply(s) for s in surfaces]
    texts = [prose(UPDATES * 4, i) for i in range(REPLIES)]
    began = time.perf_counter()
    await asyncio.gather(*(r.start() for r in replies))
    in_update = 0.0
    for step in range(1, UPDATES + 1):
        t = time.perf_counter()
        for r, text in zip(replies, texts, strict=True):
            r.update(text[: step * 4])
        in_update += time.perf_counter() - t
        await asyncio.sleep(0.005)
    await asyncio.gather(*(r.finish(t) for r, t in zip(replies, texts, strict=True)))
    took = time.perf_counter() - began
    await pacer.aclose()

    for r, s, text in zip(replies, surfaces, texts, strict=True):
        assert_final(r, s, text)
    assert_budgets_respected(tl)
    updates = REPLIES * UPDATES
    assert in_update / updates < 20e-6, f"{in_update / updates * 1e6:.1f} µs per update()"
    actions = pacer.stats.posts + pacer.stats.edits
    # rounds follow actions, not tokens: 30,000 updates never mean 30,000 rounds
    assert pacer.stats.rounds < 2 * actions + 100, (pacer.stats.rounds, actions)
    assert took < 6.0, took


async def test_timer_rounds_come_further_apart_the_more_replies_wait() -> None:
    # 100 replies, each in a channel of its own (2 edits per 0.3 s), whose first texts went out a
    # millisecond apart: their next slots reopen at 100 different moments. A timer round for
    # each moment would scan every waiting reply each time; spaced by ROUND_GAP per waiting
    # reply, a round serves several slots, and no edit waits longer than that spacing.
    count = 100
    vt = VirtualTime()
    pacer = Pacer(clock=vt.clock, sleep=vt.sleep, margin=0.01)
    tl = Timeline(clock=vt.clock)
    surfaces = [RecordingSurface(tl, edit_budgets=[Budget(f"c{i}:edits", 2, 0.3)]) for i in range(count)]
    replies = [pacer.reply(s) for s in surfaces]
    for i, r in enumerate(replies):
        vt.now = i * 0.001
        await r.start()
        r.update("first")  # first text: at once
        await let_loop_run()
    rounds = pacer.stats.rounds
    for r in replies:
        r.update("first and more")  # an intermediate edit, half a window after the first text
    while any(len(s.edits) < 2 for s in surfaces) and vt.now < 1.0:
        await let_loop_run()

    assert pacer.stats.rounds - rounds <= 60  # 49 here; a round for every slot would be 100
    spacing = (0.3 + 0.01) / 2
    for s in surfaces:
        first, more = s.edits
        assert more.text == "first and more"
        assert 0 <= more.t0 - (first.t0 + spacing) <= ROUND_GAP * count + 1e-9
    for r in replies:
        await r.finish("first and more, the end")
    assert all(s.final == "first and more, the end" for s in surfaces)
    assert_budgets_respected(tl)
    await pacer.aclose()
