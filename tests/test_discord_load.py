"""Many replies at once within Discord's rate limits: zero 429s, discord.py never made to wait,
every final text exact. Discord's default limits here (5 creates and 5 edits per 5 s per channel,
50 requests a second in all), except where a test says it scales them down to save time.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

from tests.discord_harness import DiscordBench, discord_bench, is_live, quick_limits
from tests.fakes.discord import Channel, Overwrite, Perm, StoredMessage
from tests.fakes.gateway import Reply

ANSWER = " ".join(f"token{i}" for i in range(60))  # about 2 s at 30 tokens a second


def check_answers(bench: DiscordBench, messages: list[StoredMessage]) -> None:
    for m in messages:
        assert m.content == ANSWER and not is_live(m)
        # Each reply's first message showed the placeholder, or (the model being asked while the
        # post waited for its slot) the start of the answer, and only ever grew towards it.
        first = m.history[0].content
        assert first == "…" or ANSWER.startswith(first.rstrip())
        assert all(ANSWER.startswith(h.content.rstrip()) for h in m.history[1:])
    assert bench.fd.rate_limited_count == 0, bench.fd.rate_limit_log[:5]
    assert bench.dpy_waits == 0  # discord.py never slept on a bucket: the budgets kept it clear
    assert bench.runtime.pacer.stats.rate_limited == 0 and bench.runtime.pacer.stats.failures == 0


async def burst(bench: DiscordBench, channels: list[Channel], n: int) -> list[StoredMessage]:
    questions = [
        await bench.mention(channels[i % len(channels)], bench.alice, f"question {i}") for i in range(n)
    ]
    await bench.settle(answered=n, within=60)
    answers = []
    for q in questions:
        (answer,) = bench.replies(bench.thread_of(q))
        answers.append(answer)
    placeholder = [a.history[0].t - q.created_t for a, q in zip(answers, questions, strict=True)]
    final = [a.history[-1].t - q.created_t for a, q in zip(answers, questions, strict=True)]
    print(
        f"\n{n} replies: placeholder median {statistics.median(placeholder):.2f}s "
        f"max {max(placeholder):.2f}s; "
        f"final median {statistics.median(final):.2f}s max {max(final):.2f}s; "
        f"edits per reply {statistics.mean(a.edit_count for a in answers):.1f}"
    )
    return answers


async def test_twenty_mentions_in_one_channel(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, 30)) as bench:
        answers = await burst(bench, [bench.channel], 20)
        assert len({a.channel_id for a in answers}) == 20  # a thread each
        check_answers(bench, answers)


async def test_fifty_mentions_across_fifty_channels(tmp_path: Path) -> None:
    async with discord_bench(tmp_path, default=Reply.paced(ANSWER, 30)) as bench:
        channels = [bench.fd.create_channel(bench.guild, f"room-{i}") for i in range(50)]
        await bench.fd.flush()
        await asyncio.sleep(0.1)  # let discord.py see the new channels
        answers = await burst(bench, channels, 50)
        check_answers(bench, answers)
        # the thread openings went through the adapter's share of the global limit
        assert bench.adapter.hub.throttle.waited > 0


async def test_replies_sharing_one_channel_share_its_budget(tmp_path: Path) -> None:
    # Without thread permission every answer goes into the channel itself: twelve replies draw
    # on one create and one edit bucket. Limits scaled to 5 per second (budgets likewise) to keep
    # the test short; the mechanism is the one used at 5 per 5 s.
    limits, budgets = quick_limits()
    async with discord_bench(
        tmp_path, default=Reply.paced(ANSWER, 30), limits=limits, budgets=budgets
    ) as bench:
        fd = bench.fd
        no_threads = Overwrite(bench.guild.id, 0, deny=Perm.CREATE_PUBLIC_THREADS)
        channel = fd.create_channel(bench.guild, "no-threads", overwrites=[no_threads])
        await fd.flush()
        await asyncio.sleep(0.1)
        for i in range(12):
            await bench.mention(channel, bench.alice, f"question {i}")
        await bench.settle(answered=12, within=60)
        answers = bench.replies(channel)
        assert len(answers) == 12
        check_answers(bench, answers)
        # The model is asked while a reply waits for a create slot, not after: every question
        # reached the gateway before the last reply's first message could be posted.
        last_post = max(a.history[0].t for a in answers)
        asked = [r.t_received for r in bench.gw.stream_requests]
        assert len(asked) == 12 and max(asked) < last_post - 0.5
