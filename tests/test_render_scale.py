"""Hundreds of concurrent replies on one core: per-token cost stays flat and budgets still hold."""

from __future__ import annotations

import asyncio
import time

from bot.render import Budget, Pacer
from tests.fakes.surface import RecordingSurface, Timeline
from tests.test_render_stream import assert_budgets_respected, assert_final, prose

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
