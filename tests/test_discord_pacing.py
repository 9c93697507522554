"""Discord replies at the platform's limit: all five requests of a channel's bucket used, discord.py
never made to sleep, no 429, and the final text out at once when the bucket has room."""

from __future__ import annotations

from pathlib import Path

from tests.discord_harness import discord_bench, is_live, quick_limits
from tests.fakes.gateway import Reply

LONG = " ".join(f"word{i}" for i in range(90))  # 3 s at 30 tokens a second, under 2,000 characters
SHORT = " ".join(f"word{i}" for i in range(40))


async def test_all_five_edits_of_a_bucket_are_used_without_a_sleep_or_a_429(tmp_path: Path) -> None:
    limits, budgets = quick_limits()  # Discord's 5 per 5 s scaled to 5 per second
    async with discord_bench(
        tmp_path, limits=limits, budgets=budgets, default=Reply.paced(LONG, tokens_per_s=30)
    ) as bench:
        question = await bench.mention(bench.channel, bench.alice, "a long one")
        await bench.settle(answered=1, within=30)
        (reply,) = bench.replies(bench.thread_of(question))
        assert reply.content == LONG and not is_live(reply)
        edits = [state.t for state in reply.history[1:-1]]  # the final text aside
        # Some one-second bucket took five edits: the fifth, which discord.py would have answered
        # by putting the reply to sleep until the refill, went out too.
        assert any(sum(t <= x < t + 1.0 for x in edits) == 5 for t in edits)
        assert bench.fd.rate_limited_count == 0, bench.fd.rate_limit_log[:3]
        assert bench.dpy_waits == 0
        stats = bench.runtime.pacer.stats
        assert stats.rate_limited == stats.failures == 0


async def test_the_final_text_goes_out_at_once_when_the_bucket_has_room(tmp_path: Path) -> None:
    # Discord's real limits: the answer ends 1.3 s in, after the first text and an intermediate
    # edit, with requests left in the bucket (the held-back one at least).
    async with discord_bench(tmp_path, default=Reply.paced(SHORT, tokens_per_s=30)) as bench:
        question = await bench.mention(bench.channel, bench.alice, "a short one")
        await bench.settle(answered=1, within=30)
        (reply,) = bench.replies(bench.thread_of(question))
        assert reply.content == SHORT and not is_live(reply)
        last_token = bench.gw.stream_requests[-1].timeline[-1][0]
        whole = next(s.t for s in reply.history if s.content == SHORT)
        assert whole - last_token < 0.25
        assert bench.fd.rate_limited_count == 0 and bench.dpy_waits == 0
