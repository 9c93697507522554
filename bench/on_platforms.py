"""Scenarios through the real adapters and the platform fakes: what a person in the channel sees."""

from __future__ import annotations

import gc
import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

from bench.config import Config, Result, rounded
from bench.ideal import ideal
from bench.metrics import ReplyFigures, Trace, figures, summarise
from bench.platforms import DiscordStack, SlackStack, discord_stack, slack_stack
from bench.probes import LoopLag, Meter
from bench.workload import WARMUP
from bot.runtime import Runtime
from tests.fakes.slack import DEFAULT_CHANNEL, OTHER_CHANNEL

# -- platform scenarios -----------------------------------------------------------------------


def pacing(figs: Sequence[ReplyFigures], traces: Sequence[Trace]) -> Result:
    """Efficiency against the budgets Parley declares and against the platform's own limits."""
    actual = [f.staleness for f in figs]
    declared = ideal([(f.growth, t.declared) for f, t in zip(figs, traces, strict=True)])
    platform = ideal([(f.growth, t.platform) for f, t in zip(figs, traces, strict=True)])
    total = sum(actual)

    def ratio(best: Sequence[float]) -> float | None:
        return round(sum(best) / total, 3) if total > 0 else None

    # A scheduler that never bursts: each budget as evenly spaced edits at its average rate.
    steady = ideal(
        [
            (f.growth, [replace(b, capacity=1, window=b.window / b.capacity) for b in t.declared])
            for f, t in zip(figs, traces, strict=True)
        ]
    )
    per = [i / a for i, a in zip(declared.per_reply, actual, strict=True) if a > 0]
    return {
        "pacing_eff": ratio(declared.per_reply),
        "pacing_eff_min": round(min(per), 3) if per else None,
        "pacing_eff_platform": ratio(platform.per_reply),
        "pacing_eff_steady": ratio(steady.per_reply),
        "staleness_char_s": round(statistics.mean(actual), 1) if actual else None,
        "ideal_staleness_char_s": round(statistics.mean(declared.per_reply), 1) if actual else None,
        "ideal_edits_per_reply": round(statistics.mean(declared.edits), 1) if actual else None,
        "ideal_budgets": declared.shared_summary(),
    }


async def _measure(
    stack: DiscordStack | SlackStack,
    runtime: Runtime,
    ask_all: Callable[[], Awaitable[None]],
    n: int,
    within: float,
) -> tuple[Result, list[Trace]]:
    """Ask ``n`` questions at once and measure the process while they are answered."""
    gc.collect()
    meter, lag = Meter(), LoopLag()
    stats = runtime.pacer.stats
    before = (runtime.store.statements, stats.posts, stats.edits, stats.rate_limited, stack.rate_limited)
    meter.start()
    lag.start()
    await ask_all()
    await stack.settle(n, within)
    await lag.stop()
    meter.stop()
    traces = await stack.traces()
    tokens = sum(len(t.tokens) for t in traces)
    out: Result = {
        "wall_s": round(meter.wall, 2),
        "rate_limited": stack.rate_limited - before[4],
        "pacer_429s": stats.rate_limited - before[3],
        "posts": stats.posts - before[1],
        "edits": stats.edits - before[2],
        "cpu_s_per_1k_tokens": round(meter.cpu / tokens * 1000, 3) if tokens else None,
        "loop_lag_p99_ms": rounded(lag.p99_ms()),
        "loop_lag_max_ms": rounded(lag.max_ms()),
        "peak_rss_mb": round(meter.peak / 2**20, 1),
        "rss_per_reply_kb": round(max(0, meter.peak - meter.rss0) / n / 1024, 1),
        "db_statements_per_reply": round((runtime.store.statements - before[0]) / n, 1),
        "tokens_streamed": tokens,
        "cpu_note": "in-process fakes included",
    }
    return out, traces


def _platform_result(
    name: str, platform: str, n: int, cfg: Config, measured: Result, traces: list[Trace]
) -> Result:
    figs = [figures(t) for t in traces]
    out: Result = {"scenario": name, "platform": platform, "replies": n, "tokens_per_reply": cfg.work.tokens}
    out["rate_tokens_per_s"] = cfg.work.rate
    out.update(summarise(figs, traces))
    out.update(pacing(figs, traces))
    out.update(measured)
    return out


async def discord_scenario(
    cfg: Config, tmp: Path, name: str, n: int, channels: int, *, threads: bool = True
) -> Result:
    async with discord_stack(tmp, cfg.work, channels=channels + 1, threads=threads) as st:
        warm = st.channels[-1]
        await st.ask(WARMUP, warm)
        await st.settle(1, 60)
        st.asked.clear()

        async def ask_all() -> None:
            for i in range(n):
                await st.ask(i, st.channels[i % channels])

        measured, traces = await _measure(st, st.runtime, ask_all, n, within=120 + n)
        measured["dpy_waits"] = st.dpy_waits
        return _platform_result(name, "discord", n, cfg, measured, traces)


async def slack_scenario(cfg: Config, tmp: Path, name: str, n: int, *, native: bool = False) -> Result:
    async with slack_stack(tmp, cfg.work, native=native) as st:
        channels = [DEFAULT_CHANNEL] if n == 1 else [f"C0BENCH{i:04d}" for i in range(n)]
        for ch in channels:
            if ch not in st.fs.channels:
                st.fs.add_channel(ch, f"bench-{ch[-4:].lower()}")
        await st.ask(WARMUP, OTHER_CHANNEL)
        await st.settle(1, 60)
        st.asked.clear()

        async def ask_all() -> None:
            for i in range(n):
                await st.ask(i, channels[i % len(channels)])

        measured, traces = await _measure(st, st.runtime, ask_all, n, within=120 + n)
        return _platform_result(name, "slack", n, cfg, measured, traces)
