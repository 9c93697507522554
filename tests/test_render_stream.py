"""The Pacer and ReplyStream against the kit's recording surface, every call on a timeline.

Real time with short windows (a few per 0.1-0.4 s): the budgets checked here are the ones the
fake's timeline shows, so they hold for whatever the event loop actually did.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import statistics
from collections import defaultdict

import pytest

from bot.render import Budget, Pacer, RateLimited, ReplyStream, SurfaceError, SurfaceLimits, split_markdown
from bot.render.surface import Shown
from tests.fakes.surface import Call, RecordingSurface, Timeline

# -- checks and helpers ----------------------------------------------------------------------------


def assert_budgets_respected(timeline: Timeline) -> None:
    """For every budget key and every call: fewer than ``capacity`` other calls may have reached the
    platform in the ``window`` before it. A call reached it somewhere between its send and its
    answer, so the worst case counts each earlier call at its answer time."""
    by_key: dict[str, list[Call]] = defaultdict(list)
    spec: dict[str, Budget] = {}
    for c in timeline.calls:
        for b in c.budgets:
            by_key[b.key].append(c)
            spec[b.key] = b
    assert by_key or not timeline.calls or all(not c.budgets for c in timeline.calls)
    for key, calls in by_key.items():
        b = spec[key]
        calls.sort(key=lambda c: c.t0)
        starts = [c.t0 for c in calls]
        for i in range(len(starts) - b.capacity):
            assert starts[i + b.capacity] - starts[i] >= b.window, (
                f"{key}: {b.capacity + 1} sends within {b.window}s"
            )
        longest = max(c.t1 - c.t0 for c in calls)
        for j, c in enumerate(calls):
            lo = bisect.bisect_left(starts, c.t0 - b.window - longest)
            seen = [o for o in calls[lo:j] if o.t1 > c.t0 - b.window]
            assert len(seen) < b.capacity, f"{key}: {len(seen) + 1} calls may share one window at {c.t0}"


def assert_final(stream: ReplyStream, surface: RecordingSurface, final: str) -> None:
    """Every message shows exactly its part of the final text, with live=False; parts rejoin to it."""
    parts = split_markdown(final, surface.limits.max_chars, surface.render)
    assert stream.done and not stream.failed
    assert "".join(p.body for p in stream.parts) == "".join(p.body for p in parts)
    assert final.startswith("".join(p.body for p in stream.parts))
    expected = [surface.render(p.markdown) for p in stream.parts]
    assert stream.visible == expected
    assert [surface.shown[r] for r in stream.refs] == [Shown(t, False) for t in expected]
    for ref in stream.refs:
        calls = [c for c in surface.timeline.of(ref) if c.outcome == "ok"]
        assert calls[-1].live is False
        # once a message got live=False it never changes again (frozen parts are final)
        first_done = next(i for i, c in enumerate(calls) if not c.live)
        assert all(c.text == calls[first_done].text for c in calls[first_done:])


async def stream_text(stream: ReplyStream, text: str, *, step: int = 4, interval: float = 0.004) -> None:
    for end in range(step, len(text) + step, step):
        stream.update(text[:end])
        await asyncio.sleep(interval)


WORDS = "the quick brown fox jumps over a lazy dog and keeps running far away ".split()


def prose(n_chars: int, seed: int = 0) -> str:
    words = itertools.cycle(WORDS[seed % len(WORDS) :] + WORDS[: seed % len(WORDS)])
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = next(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n_chars]


@pytest.fixture
async def pacer():
    p = Pacer(margin=0.01, retry_backoff=0.01)
    yield p
    await p.aclose()


def edit_budget(key: str = "edits", capacity: int = 5, window: float = 0.3) -> Budget:
    return Budget(key, capacity, window)


# -- one reply -------------------------------------------------------------------------------------


async def test_placeholder_first_then_text_then_exact_final(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(
        tl, post_budgets=[Budget("posts", 2, 0.3)], edit_budgets=[edit_budget()], latency=0.005
    )
    r = pacer.reply(s, placeholder="thinking…")
    await r.start()
    assert [(c.action, c.text, c.live) for c in tl.calls] == [("post", "thinking…", True)]
    assert r.refs == [f"{s.name}:1"]
    text = prose(400)
    await stream_text(r, text)
    await r.finish(text + " END")
    assert_final(r, s, text + " END")
    assert all(c.live for c in tl.calls[:-1])
    assert tl.calls[-1].text == text + " END"
    assert s.max_in_flight == 1
    assert_budgets_respected(tl)
    assert pacer.stats.posts == 1 and pacer.stats.edits == len(tl.calls) - 1
    assert pacer.active == 0


async def test_first_text_goes_out_at_once(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, post_budgets=[Budget("posts", 1, 0.3)], edit_budgets=[edit_budget(capacity=1)])
    r = pacer.reply(s)
    await r.start()
    await asyncio.sleep(0.05)
    sent = tl.clock()
    r.update("Hello")
    await asyncio.sleep(0.05)
    assert tl.calls[1].text == "Hello"
    assert tl.calls[1].t0 - sent < 0.02
    await r.finish("Hello")


async def test_final_uses_the_reserve_while_intermediate_edits_are_paced(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, edit_budgets=[edit_budget(capacity=5, window=0.4)])  # 4 paced + 1 reserved
    r = pacer.reply(s)
    await r.start()
    text = prose(300)
    await stream_text(r, text, step=2, interval=0.002)  # ~0.3 s, far more updates than slots
    edits = [c for c in tl.calls if c.action == "edit"]
    gaps = [b.t0 - a.t0 for a, b in itertools.pairwise(edits[1:])]
    assert gaps and min(gaps) >= 0.4 / 4 - 0.005, "intermediate edits spread over the window"
    called = tl.clock()
    await r.finish(text)
    final = tl.calls[-1]
    assert final.text == text and not final.live
    assert final.t0 - called < 0.02, "the final does not wait for the window"
    assert_budgets_respected(tl)


async def test_final_waits_exactly_until_the_budget_reopens(pacer: Pacer) -> None:
    tl = Timeline()
    second_edit = asyncio.Event()

    def watch(call: Call) -> None:
        if len(tl.calls) == 3:
            second_edit.set()

    s = RecordingSurface(tl, edit_budgets=[edit_budget(capacity=2, window=0.3)], fault=watch)
    r = pacer.reply(s)
    await r.start()
    r.update("a")  # first text: urgent
    await asyncio.sleep(0.01)
    r.update("ab")  # paced: 0.31/2 s after the first
    await asyncio.wait_for(second_edit.wait(), 1)
    await r.finish("abc")
    first, _, final = tl.calls[1], tl.calls[2], tl.calls[3]
    assert final.text == "abc" and not final.live
    reopen = first.t1 + 0.3 + 0.01
    assert reopen - 0.001 <= final.t0 <= reopen + 0.03
    assert_budgets_respected(tl)


async def test_only_latest_snapshot_is_sent_and_one_action_at_a_time(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, latency=0.03)  # no budget at all: only the one-in-flight rule paces
    r = pacer.reply(s)
    await r.start()
    text = prose(1000)
    t = tl.clock()
    for end in range(1, len(text) + 1):
        r.update(text[:end])
        if end % 4 == 0:
            await asyncio.sleep(0.001)
    elapsed = tl.clock() - t
    await r.finish(text)
    edits = [c for c in tl.calls if c.action == "edit"]
    assert s.max_in_flight == 1
    # about one edit per latency period: superseded snapshots were dropped, not queued
    assert len(edits) <= elapsed / 0.03 + 3
    lengths = [len(c.text) for c in edits]
    assert lengths == sorted(lengths) and all(text.startswith(c.text) for c in edits)
    assert_final(r, s, text)


async def test_finish_goes_right_after_the_edit_in_flight(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, latency=0.1)
    r = pacer.reply(s)
    await r.start()
    text = prose(200)
    for end in range(1, 100):
        r.update(text[:end])
    await asyncio.sleep(0.02)  # an intermediate edit is now in flight
    assert tl.calls[-1].outcome == "pending"
    n = len(tl.calls)
    called = tl.clock()
    for end in range(100, 201):
        r.update(text[:end])  # superseded before it can be sent
    await r.finish(text)
    took = tl.clock() - called
    assert len(tl.calls) == n + 1, "only the final follows the in-flight edit"
    assert tl.calls[-1].text == text and tl.calls[-1].t0 - tl.calls[-2].t1 < 0.02
    assert took < 0.25


async def test_update_does_not_wake_the_loop_when_nothing_can_be_sent(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, edit_budgets=[edit_budget(capacity=1, window=0.3)])
    r = pacer.reply(s)
    await r.start()
    r.update("x")
    await asyncio.sleep(0.01)
    rounds = pacer.stats.rounds
    text = prose(3000)
    for end in range(2, 3000):
        r.update(text[:end])
        if end % 100 == 0:
            await asyncio.sleep(0.001)
    assert pacer.stats.rounds - rounds <= 3
    await r.finish(text[:2999])
    assert_budgets_respected(tl)


async def test_blank_text_keeps_the_placeholder(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl)
    r = pacer.reply(s)
    await r.start()
    r.update("  \n")
    await asyncio.sleep(0.02)
    assert len(tl.calls) == 1
    await r.finish("")
    assert [(c.text, c.live) for c in tl.calls] == [("…", True), ("…", False)]


async def test_finish_without_start_posts_the_final_text_directly(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl)
    r = pacer.reply(s)
    r.update("ignored draft")
    await r.finish("All done.")
    assert [(c.action, c.text, c.live) for c in tl.calls] == [("post", "All done.", False)]


# -- splitting while streaming -----------------------------------------------------------------------


def long_reply_with_code() -> str:
    intro = "".join(f"Step {i}: " + prose(180, i) + ".\n\n" for i in range(6))
    code = "```python\n" + "".join(
        f"def handler_{i}(event):\n    return event.value * {i}\n\n" for i in range(70)
    )
    return intro + code + "```\n\n" + "".join(prose(150, i) + ".\n\n" for i in range(4))


async def test_long_reply_is_frozen_into_parts_with_fences_reopened(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(
        tl, edit_budgets=[edit_budget(capacity=20, window=0.1)], post_budgets=[Budget("p", 5, 0.1)]
    )
    r = pacer.reply(s)
    await r.start()
    text = long_reply_with_code()
    assert len(text) > 5000
    await stream_text(r, text, step=40, interval=0.002)
    await r.finish(text)
    assert len(r.refs) == 3
    assert all(len(c.text) <= 2000 for c in tl.calls)
    assert any(p.reopen == "```python\n" for p in r.parts)
    assert any(p.close == "```" for p in r.parts)
    assert_final(r, s, text)
    # parts were frozen while streaming: earlier messages got live=False before the reply ended
    frozen_at = [next(c.t0 for c in tl.of(ref) if not c.live) for ref in r.refs]
    assert frozen_at == sorted(frozen_at) and frozen_at[0] < frozen_at[-1] - 0.05
    # while streaming, an open code block was shown closed (rendered as code, not raw backticks)
    assert any(c.live and c.text.count("```") % 2 == 0 and "```python" in c.text for c in tl.calls)
    assert_budgets_respected(tl)


async def test_render_expansion_is_respected_when_splitting(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, max_chars=300, render=lambda md: md.replace("*", "\\*"))
    r = pacer.reply(s)
    await r.start()
    text = "".join(f"**item {i}** is *fine*\n" for i in range(60))
    await stream_text(r, text, step=10, interval=0.001)
    await r.finish(text)
    assert len(r.refs) > 2
    assert all(len(c.text) <= 300 for c in tl.calls)
    assert_final(r, s, text)


async def test_text_rewritten_before_a_frozen_part_is_resplit(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, max_chars=200)
    r = pacer.reply(s)
    await r.start()
    first = "\n\n".join(prose(150, i) for i in range(4))
    r.update(first)
    await asyncio.sleep(0.05)
    assert len(r.refs) == 4
    final = "Sorry, let me start over.\n\n" + prose(150, 9)
    await r.finish(final)
    assert [p.body for p in r.parts] == [p.body for p in split_markdown(final, 200)]
    assert r.visible[: len(r.parts)] == [p.markdown for p in r.parts]
    # messages left over show the placeholder and no Stop button (nothing can be deleted)
    assert r.visible[len(r.parts) :] == ["…"] * (4 - len(r.parts))
    assert all(not s.shown[ref].live for ref in r.refs)


# -- many replies ------------------------------------------------------------------------------------


def edit_times(tl: Timeline, surface: RecordingSurface) -> list[float]:
    return [c.t0 for c in tl.calls if c.surface == surface.name and c.action == "edit" and c.outcome == "ok"]


async def test_ten_concurrent_replies_share_one_budget_fairly(pacer: Pacer) -> None:
    tl = Timeline()
    shared_edits = Budget("chan:edits", 10, 0.2)  # 8 paced per window, 2 kept for first/final text
    shared_posts = Budget("chan:posts", 10, 0.2)
    surfaces = [
        RecordingSurface(tl, edit_budgets=[shared_edits], post_budgets=[shared_posts]) for _ in range(10)
    ]
    replies = [pacer.reply(s) for s in surfaces]
    await asyncio.gather(*(r.start() for r in replies))
    texts = [prose(330, i) for i in range(10)]

    async def run(r: ReplyStream, text: str) -> float:
        await stream_text(r, text, step=3, interval=0.01)  # ~1.1 s each, 300 chars/s
        called = tl.clock()
        await r.finish(text)
        return tl.clock() - called

    finish_waits = await asyncio.gather(*(run(r, t) for r, t in zip(replies, texts, strict=True)))
    for r, s, t in zip(replies, surfaces, texts, strict=True):
        assert_final(r, s, t)
    assert_budgets_respected(tl)
    counts = [len(edit_times(tl, s)) for s in surfaces]
    assert max(counts) - min(counts) <= 3, counts
    assert min(counts) >= 0.7 * statistics.mean(counts)
    # nobody waits much longer between updates than the others (~10 replies / 40 slots a second)
    worst_gaps = [max(b - a for a, b in itertools.pairwise(edit_times(tl, s))) for s in surfaces]
    assert max(worst_gaps) < 0.6, worst_gaps
    assert max(worst_gaps) < 2.5 * statistics.median(worst_gaps)
    assert max(finish_waits) < 0.35, finish_waits


async def test_a_slow_reply_is_not_starved_by_fast_ones(pacer: Pacer) -> None:
    tl = Timeline()
    shared = Budget("chan:edits", 10, 0.2)
    surfaces = [RecordingSurface(tl, edit_budgets=[shared]) for _ in range(10)]
    replies = [pacer.reply(s) for s in surfaces]
    await asyncio.gather(*(r.start() for r in replies))
    # 20 chars/s vs 300 chars/s. The window's even spacing would be under 0.1 s, so it has none:
    # freed slots go out in bursts by priority, and the slow reply wins one every ~0.6 s.
    fast = [stream_text(r, prose(660, i), step=3, interval=0.01) for i, r in enumerate(replies[1:])]
    slow = stream_text(replies[0], prose(44), step=1, interval=0.05)
    await asyncio.gather(slow, *fast)
    slow_edits = edit_times(tl, surfaces[0])
    assert len(slow_edits) >= 3
    assert max(b - a for a, b in itertools.pairwise(slow_edits)) < 0.9
    await asyncio.gather(*(r.finish(r.markdown) for r in replies))
    assert_budgets_respected(tl)


async def test_several_budgets_per_channel_and_global(pacer: Pacer) -> None:
    tl = Timeline()
    everything = Budget("global", 8, 0.2)  # posts and edits of every channel
    surfaces = []
    for ch in range(3):
        for _ in range(2):
            surfaces.append(
                RecordingSurface(
                    tl,
                    max_chars=300,
                    post_budgets=[Budget(f"chan:{ch}:posts", 2, 0.2), everything],
                    edit_budgets=[Budget(f"chan:{ch}:edits", 3, 0.2), everything],
                    latency=0.003,
                )
            )
    replies = [pacer.reply(s) for s in surfaces]
    texts = ["\n\n".join(prose(120, i + k) for k in range(4)) for i in range(6)]

    async def run(r: ReplyStream, text: str) -> None:
        await r.start()
        await stream_text(r, text, step=6, interval=0.01)
        await r.finish(text)

    await asyncio.gather(*(run(r, t) for r, t in zip(replies, texts, strict=True)))
    for r, s, t in zip(replies, surfaces, texts, strict=True):
        assert_final(r, s, t)
        assert len(r.refs) >= 2
    assert_budgets_respected(tl)
    assert pacer.stats.rate_limited == 0


# -- errors ------------------------------------------------------------------------------------------


async def test_rate_limited_pauses_the_budget_then_sends_the_latest(pacer: Pacer) -> None:
    tl = Timeline()
    seen = itertools.count()

    def fault(call: Call) -> BaseException | None:
        return RateLimited(0.3) if call.action == "edit" and next(seen) == 2 else None

    s = RecordingSurface(tl, edit_budgets=[edit_budget(capacity=10, window=0.2)], fault=fault)
    r = pacer.reply(s)
    await r.start()
    text = prose(300)
    await stream_text(r, text, step=3, interval=0.005)
    await r.finish(text)
    assert pacer.stats.rate_limited == 1
    limited = next(c for c in tl.calls if c.outcome == "429")
    after = [c for c in tl.calls if c.t0 > limited.t0]
    assert after and after[0].t0 >= limited.t1 + 0.3
    assert len(after[0].text) > len(limited.text), "the retry carries the newest snapshot"
    assert_final(r, s, text)


async def test_rate_limited_pauses_other_replies_on_the_same_budget(pacer: Pacer) -> None:
    tl = Timeline()
    once = itertools.count()

    def fault(call: Call) -> BaseException | None:
        return RateLimited(0.25) if call.action == "edit" and next(once) == 0 else None

    shared = edit_budget("shared", capacity=10, window=0.2)
    a = RecordingSurface(tl, edit_budgets=[shared], fault=fault)
    b = RecordingSurface(tl, edit_budgets=[shared])
    ra, rb = pacer.reply(a), pacer.reply(b)
    await asyncio.gather(ra.start(), rb.start())
    ra.update("hello")
    await asyncio.sleep(0.01)
    rb.update("world")
    await asyncio.gather(ra.finish("hello"), rb.finish("world"))
    limited = next(c for c in tl.calls if c.outcome == "429")
    b_edit = next(c for c in tl.calls if c.surface == b.name and c.action == "edit")
    assert b_edit.t0 >= limited.t1 + 0.25


async def test_edit_failures_fall_back_to_a_new_message() -> None:
    pacer = Pacer(margin=0.01, retry_backoff=0.01, max_attempts=3)
    tl = Timeline()
    s = RecordingSurface(
        tl, name="d", fault=lambda c: SurfaceError("unknown message") if c.ref == "d:1" else None
    )
    r = pacer.reply(s)
    await r.start()
    r.update("Some text")
    await r.finish("Some text, finished.")
    assert r.refs == ["d:2"] and r.abandoned_refs == ["d:1"]
    assert s.shown["d:2"] == Shown("Some text, finished.", False)
    assert pacer.stats.failures == 3 and pacer.stats.fallbacks == 1
    assert not r.failed
    await pacer.aclose()


async def test_adapter_bug_is_retried_like_a_refusal(pacer: Pacer) -> None:
    tl = Timeline()
    boom = iter([ValueError("adapter bug")])
    s = RecordingSurface(tl, fault=lambda c: next(boom, None) if c.action == "edit" else None)
    r = pacer.reply(s)
    await r.start()
    await r.finish("fine in the end")
    assert pacer.stats.failures == 1
    assert_final(r, s, "fine in the end")


async def test_placeholder_that_cannot_be_posted_fails_start_and_finish_returns(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, fault=lambda c: SurfaceError("missing access"))
    r = pacer.reply(s)
    with pytest.raises(SurfaceError):
        await r.start()
    assert r.failed and isinstance(r.error, SurfaceError)
    assert len(tl.calls) == pacer.max_attempts
    await asyncio.wait_for(r.finish("text"), 1)
    assert pacer.stats.failed_replies == 1


async def test_continuation_post_failure_ends_the_reply_as_failed(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(
        tl,
        max_chars=100,
        fault=lambda c: SurfaceError("no") if c.action == "post" and c.text != "…" else None,
    )
    r = pacer.reply(s)
    await r.start()
    await asyncio.wait_for(r.finish(prose(250)), 2)
    assert r.failed and r.done
    assert len(r.refs) == 1 and not s.shown[r.refs[0]].live, "the frozen first part is still complete"


async def test_render_failure_falls_back_to_raw_markdown(pacer: Pacer) -> None:
    def broken(md: str) -> str:
        raise RuntimeError("bug")

    tl = Timeline()
    s = RecordingSurface(tl, render=broken)
    r = pacer.reply(s)
    await r.start()
    await r.finish("**raw** but readable")
    assert s.shown[r.refs[0]] == Shown("**raw** but readable", False)


async def test_aclose_cancels_everything_and_unblocks_waiters() -> None:
    pacer = Pacer()
    tl = Timeline()
    s = RecordingSurface(tl, latency=30)
    r = pacer.reply(s)
    start = asyncio.create_task(r.start())
    await asyncio.sleep(0.01)
    assert tl.calls and tl.calls[0].outcome == "pending"
    await asyncio.wait_for(pacer.aclose(), 1)
    with pytest.raises(SurfaceError):
        await start
    await asyncio.wait_for(r.finish("late"), 1)
    assert r.failed
    with pytest.raises(RuntimeError):
        pacer.reply(s)


# -- injected clock ----------------------------------------------------------------------------------


class VirtualTime:
    """A clock that only moves when the Pacer sleeps: schedules come out exact and repeatable."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)
        await asyncio.sleep(0)


async def let_loop_run() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_schedule_is_exact_with_an_injected_clock() -> None:
    vt = VirtualTime()
    pacer = Pacer(clock=vt.clock, sleep=vt.sleep, margin=0.01)
    tl = Timeline(clock=vt.clock)
    s = RecordingSurface(tl, edit_budgets=[edit_budget(capacity=2, window=0.3)])
    r = pacer.reply(s)
    await r.start()
    r.update("a")  # first text: at once
    await let_loop_run()
    r.update("ab")  # intermediate: spaced half a (window + margin) after the last send
    await let_loop_run()
    await r.finish("abc")  # final: as soon as the first edit leaves the window
    assert [(c.action, c.text, c.live) for c in tl.calls] == [
        ("post", "…", True),
        ("edit", "a", True),
        ("edit", "ab", True),
        ("edit", "abc", False),
    ]
    assert [c.t0 for c in tl.calls] == pytest.approx([0.0, 0.0, 0.155, 0.31])
    await pacer.aclose()


async def test_a_surface_that_changes_its_budgets_is_paced_by_the_new_ones(pacer: Pacer) -> None:
    tl = Timeline()
    fast, slow = edit_budget("fast", capacity=50, window=0.3), edit_budget("slow", capacity=2, window=0.3)
    s = RecordingSurface(tl, edit_budgets=[fast])
    r = pacer.reply(s)
    await r.start()
    text = prose(400)
    await stream_text(r, text[:200], step=2, interval=0.002)
    # Like a Slack native stream falling back to chat.update: later edits cost another budget.
    s._limits = SurfaceLimits(s._limits.max_chars, s._limits.post_budgets, (slow,))
    switched = tl.clock()
    await stream_text(r, text, step=2, interval=0.002)
    await r.finish(text)
    assert_final(r, s, text)
    before = [c for c in tl.calls if c.action == "edit" and c.t0 < switched]
    after = [c for c in tl.calls if c.action == "edit" and c.t0 >= switched]
    assert len(before) > 4  # the generous budget was used while it applied
    assert after and all(c.budgets == (slow,) for c in after)
    assert pacer.budgets.get("slow") is not None
    # At most 2 edits in any 0.3 s window after the switch, the final text included.
    starts = [c.t0 for c in after]
    assert all(b - a >= 0.3 for a, b in zip(starts, starts[2:], strict=False))


async def test_a_reply_showing_nothing_yet_goes_before_another_replys_final_text(pacer: Pacer) -> None:
    tl = Timeline()
    one = Budget("channel", 1, 0.2)  # posts and edits of both replies share one slot
    a = RecordingSurface(tl, name="a", post_budgets=[one], edit_budgets=[one])
    b = RecordingSurface(tl, name="b", post_budgets=[one], edit_budgets=[one])
    ra = pacer.reply(a)
    ra.update("the")
    await ra.start()  # a's first post already shows text
    finishing = asyncio.create_task(ra.finish("the whole answer"))  # waits for the slot
    rb = pacer.reply(b)
    await asyncio.gather(rb.start(), finishing)
    await rb.finish("b's answer")
    order = [(c.surface, c.action, c.text) for c in tl.calls]
    assert order == [
        ("a", "post", "the"),
        ("b", "post", "…"),
        ("a", "edit", "the whole answer"),
        ("b", "edit", "b's answer"),
    ]
    assert_budgets_respected(tl)


async def test_new_final_text_after_settling_is_shown_and_the_reply_settles_again(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl)
    r = pacer.reply(s)
    await r.start()
    await r.finish("first answer")
    assert r.done and pacer.active == 0
    await asyncio.wait_for(r.finish("first answer, corrected"), 1)
    assert r.done and not r.failed and pacer.active == 0
    assert s.shown[r.refs[0]] == Shown("first answer, corrected", False)
    await asyncio.wait_for(r.finish("first answer, corrected"), 1)  # the same text: nothing to send
    assert len(tl.calls) == 3 and pacer.active == 0


async def test_a_failed_reply_started_again_stays_failed_and_is_not_counted_as_active(pacer: Pacer) -> None:
    tl = Timeline()
    s = RecordingSurface(tl, fault=lambda c: SurfaceError("missing access"))
    r = pacer.reply(s)
    with pytest.raises(SurfaceError):
        await r.start()
    calls = len(tl.calls)
    with pytest.raises(SurfaceError):
        await asyncio.wait_for(r.start(), 1)
    assert r.failed and pacer.active == 0 and len(tl.calls) == calls
    assert pacer.stats.failed_replies == 1
