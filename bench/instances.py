"""Several instances on one PostgreSQL: what a shared budget costs, and how three instances pace.

- ``slack-instances-N``: N replies in one Slack workspace, asked at once and spread over three
  runtimes (the real Slack adapter each, Socket Mode, the fake handing envelopes round-robin)
  that share one PostgreSQL and so the workspace's ``chat.update`` budget. Compare with
  ``slack-workspace-N``: the same replies through one instance.
- ``shared-budget``: the booking each post or edit makes in ``parley_take_budget`` — its latency
  one at a time, and how many bookings a second one PostgreSQL carries from several clients.

Both need a PostgreSQL server: ``PARLEY_BENCH_POSTGRES_URL`` (or ``PARLEY_TEST_POSTGRES_URL``),
e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``; each run makes a database of
its own and drops it afterwards. Without one they report that they were skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.slack.app import SlackAdapter
from bench.config import Config, Result, rounded
from bench.metrics import dist, figures, summarise
from bench.on_platforms import pacing
from bench.platforms import SlackStack, wait_until
from bench.probes import LoopLag, Meter
from bench.workload import WARMUP
from bot.render.budget import Window
from bot.runtime import Runtime
from bot.store import Store
from bot.store.budgets import PostgresBudgets
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack import OTHER_CHANNEL, FakeSlack
from tests.stack import open_runtime, parley_env, shut_down, slack_env, start_socket_mode

INSTANCES = 3


def postgres_url() -> str | None:
    return os.environ.get("PARLEY_BENCH_POSTGRES_URL") or os.environ.get("PARLEY_TEST_POSTGRES_URL") or None


def _skipped(name: str) -> Result:
    # Nothing was sent to a platform, so no 429 either.
    return {
        "scenario": name,
        "skipped": "needs PARLEY_BENCH_POSTGRES_URL (a PostgreSQL server)",
        "rate_limited": 0,
    }


@asynccontextmanager
async def fresh_database(server: str) -> AsyncIterator[str]:
    """A database of its own on ``server``, dropped afterwards; its URL."""
    name = f"parley_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(make_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


# -- three instances, one Slack workspace --------------------------------------------------------


@dataclass
class SlackInstances(SlackStack):
    """Several instances answering one fake Slack. Asking and the traces are the one-instance
    stack's: the fake holds every reply, and the first instance's adapter declares the same
    budgets as the others."""

    runtimes: list[Runtime] = field(default_factory=list)
    adapters: list[SlackAdapter] = field(default_factory=list)

    async def settle(self, n: int, within: float) -> None:
        await wait_until(lambda: sum(a.ws.stats.answered for a in self.adapters) >= n, within, f"{n} answers")
        await asyncio.sleep(0.05)

        def idle() -> bool:
            busy = [a.ws.busy for a in self.adapters] + [r.pacer.active for r in self.runtimes]
            return not any(busy) and not any(r.service.in_flight for r in self.runtimes)

        await wait_until(idle, within, "idle instances")


@asynccontextmanager
async def slack_instances(tmp: Path, cfg: Config, url: str, n: int) -> AsyncIterator[SlackInstances]:
    async with FakeGateway(default=cfg.work.reply()) as gw, FakeSlack() as fs:
        fs.hub.spread = "round_robin"
        runtimes: list[Runtime] = []
        adapters: list[SlackAdapter] = []
        try:
            for i in range(n):
                cwd = tmp / f"instance-{i}"
                cwd.mkdir()
                env = parley_env(gw, cwd, slack_env(fs, "socket"), {"DATABASE_URL": url})
                runtimes.append(await open_runtime(env, cwd))
                adapters.append(SlackAdapter(runtimes[-1].adapter_context()))
                await start_socket_mode(adapters[-1], fs)
            team = (await adapters[0].ws.identity()).team_id
            yield SlackInstances(fs, gw, runtimes[0], adapters[0], team, runtimes=runtimes, adapters=adapters)
        finally:
            for runtime, adapter in zip(runtimes, adapters, strict=False):

                async def stop(adapter: SlackAdapter = adapter) -> None:
                    with contextlib.suppress(Exception):
                        await adapter.stop()

                await shut_down(runtime, stop)


async def slack_instances_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    server = postgres_url()
    if server is None:
        return _skipped(name)
    async with fresh_database(server) as url, slack_instances(tmp, cfg, url, INSTANCES) as st:
        channels = [f"C0BENCH{i:04d}" for i in range(n)]
        for ch in channels:
            st.fs.add_channel(ch, f"bench-{ch[-4:].lower()}")
        for _ in range(INSTANCES):  # a warm-up answer on each instance
            await st.ask(WARMUP, OTHER_CHANNEL)
        await st.settle(INSTANCES, 60)
        st.asked.clear()
        return await _measure_instances(st, cfg, name, n, channels)


async def _measure_instances(
    st: SlackInstances, cfg: Config, name: str, n: int, channels: list[str]
) -> Result:
    gc.collect()
    meter, lag = Meter(), LoopLag()
    before = st.rate_limited
    books = [(r.budgets.bookings, r.budgets.refusals) if r.budgets else (0, 0) for r in st.runtimes]
    stats = [(r.pacer.stats.posts, r.pacer.stats.edits) for r in st.runtimes]
    meter.start()
    lag.start()
    for i in range(n):
        await st.ask(i, channels[i % len(channels)])
    await st.settle(n + INSTANCES, 120 + n)
    await lag.stop()
    meter.stop()
    traces = await st.traces()
    figs = [figures(t) for t in traces]
    posts = sum(r.pacer.stats.posts - s[0] for r, s in zip(st.runtimes, stats, strict=True))
    edits = sum(r.pacer.stats.edits - s[1] for r, s in zip(st.runtimes, stats, strict=True))
    bookings = sum(
        (r.budgets.bookings if r.budgets else 0) - b[0] for r, b in zip(st.runtimes, books, strict=True)
    )
    refusals = sum(
        (r.budgets.refusals if r.budgets else 0) - b[1] for r, b in zip(st.runtimes, books, strict=True)
    )
    out: Result = {"scenario": name, "platform": "slack", "replies": n, "instances": INSTANCES}
    out.update({"tokens_per_reply": cfg.work.tokens, "rate_tokens_per_s": cfg.work.rate})
    out.update(summarise(figs, traces))
    out.update(pacing(figs, traces))
    answered = [a.ws.stats.answered for a in st.adapters]
    out.update(
        {
            "wall_s": round(meter.wall, 2),
            "rate_limited": st.rate_limited - before,
            "posts": posts,
            "edits": edits,
            "budget_bookings": bookings,
            "budget_refusals": refusals,
            "bookings_per_action": round(bookings / max(1, posts + edits), 2),
            "answered_per_instance": answered,
            "loop_lag_p99_ms": rounded(lag.p99_ms()),
            "cpu_s_per_1k_tokens": round(meter.cpu / max(1, sum(len(t.tokens) for t in traces)) * 1000, 3),
            "cpu_note": "three instances and the fakes in one process",
        }
    )
    return out


# -- what a booking costs ------------------------------------------------------------------------


async def shared_budget_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    server = postgres_url()
    if server is None:
        return _skipped(name)
    async with fresh_database(server) as url:
        store = await Store.open(url)
        try:
            latency = await _latency(store, n)
            seconds = 1.0 if cfg.quick else 5.0
            hot = await _throughput(store, clients=8, seconds=seconds, same_key=True)
            spread = await _throughput(store, clients=8, seconds=seconds, same_key=False)
        finally:
            await store.close()
    return {
        "scenario": name,
        "bookings": n,
        "take_ms": latency,
        "bookings_per_s_one_key": hot,
        "bookings_per_s_eight_keys": spread,
        "note": "8 clients in this one Python process, on the same machine as PostgreSQL",
        "rate_limited": 0,  # no platform involved
    }


async def _latency(store: Store, n: int) -> dict[str, float | None]:
    """One booking after another, as a lone reply's edits would make them (released at once)."""
    budgets = PostgresBudgets(store.engine, "bench")
    window = Window("bench:discord:global", 50, 1.0, margin=0.1, smooth=True)
    times: list[float] = []
    try:
        for _ in range(n):
            window.acquire(0.0)
            started = time.perf_counter()
            taken = await budgets.take([window], urgent=True)
            times.append(time.perf_counter() - started)
            if taken.ok:
                window.release(time.monotonic())
                budgets.release(taken, time.monotonic())
            else:
                window.cancel()
            await asyncio.sleep(0.02)  # a reply's pace (50 a second), not a tight loop
    finally:
        await budgets.aclose()
    return dist(times)


async def _throughput(store: Store, *, clients: int, seconds: float, same_key: bool) -> float:
    """Bookings a second, ``clients`` booking as fast as they can (a limit none reaches)."""
    stop = time.monotonic() + seconds
    counts: list[int] = []

    async def client(k: int) -> None:
        budgets = PostgresBudgets(store.engine, f"client-{k}")
        key = "bench:hot" if same_key else f"bench:key-{k}"
        window = Window(key, 10**6, 0.25, margin=0.0, smooth=False)
        done = 0
        try:
            while time.monotonic() < stop:
                window.acquire(0.0)
                taken = await budgets.take([window], urgent=True)
                window.release(time.monotonic())
                budgets.release(taken, time.monotonic())
                done += 1
        finally:
            await budgets.aclose()
        counts.append(done)

    started = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return round(sum(counts) / (time.monotonic() - started), 0)
