"""Scenarios of the core alone, with a surface that costs nothing: scale, a long thread, a big PDF."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import insert

import bot.request as request_module
from bench.config import Config, Result, rounded
from bench.gateway_proc import StreamTiming, gateway_process
from bench.metrics import dist
from bench.probes import LoopLag, Meter
from bench.workload import Workload, make_answer, question
from bot.providers.base import Turn
from bot.render import Budget
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.store import Store
from bot.store.models import Message
from bot.types import Author, ConversationKey, IncomingMessage, Outcome
from tests.fakes.gateway import FakeGateway, Reply
from tests.fakes.surface import RecordingSurface

SLOW_RATE = 8.0  # tokens/s per reply at which 500 replies fit one core (see scale_scenario)
TARGET_REPLIES = 250  # issue 19: one core carries this many at 60 tokens/s, loop lag p99 < 50 ms


# -- a surface that costs nothing -----------------------------------------------------------------


def memory_surface(channel: str, *, budgets: bool = True, max_chars: int = 2000) -> RecordingSurface:
    """A console-like surface from the test kit that keeps only what it shows and when it first
    showed it, so it costs nothing that grows with the edits.

    It declares a Discord-like budget of its own channel (4 edits and 4 posts per 5 s), so the
    renderer paces as it would in production; there is no shared global budget.
    """
    edits = (Budget(f"memory:{channel}:edit", 4, 5.0),) if budgets else ()
    posts = (Budget(f"memory:{channel}:post", 4, 5.0),) if budgets else ()
    return RecordingSurface(
        name=f"memory:{channel}",
        max_chars=max_chars,
        post_budgets=posts,
        edit_budgets=edits,
        keep_history=False,
    )


def _turn(surface: RecordingSurface, key: ConversationKey, text: str) -> IncomingMessage:
    return IncomingMessage(
        key=key,
        event_id=uuid.uuid4().hex,
        author=Author("U1", "Alice"),
        text=text,
        surface=surface,
        platform_message_id=uuid.uuid4().hex,
    )


def settings_for(tmp: Path, gateway_url: str, **extra: str) -> Settings:
    env = {
        "APICORE_API_KEY": "test-key",
        "APICORE_BASE_URL": gateway_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'parley.db'}",
        **extra,
    }
    return load_settings(env, cwd=tmp)


def keeping_pace(surfaces: list[RecordingSurface], streams: list[StreamTiming]) -> Result:
    """How the replies kept up with the model, each set beside the gateway's own times for the
    answer it streamed (same clock: the system's monotonic one): when the question reached the
    gateway, how long the model's stream took, and how long after its last token the final text
    showed. A core that carries the load shows the final text within a few pacing steps; one
    that falls behind reads the socket late, and end→final grows with the run."""
    by_question = {s.question: s for s in streams if s.question is not None}
    asked, took, end_to_final = [], [], []
    for i, surface in enumerate(surfaces):
        stream = by_question.get(i)
        if stream is None or surface.last_shown_at is None:
            continue
        asked.append(stream.received - surface.started)
        took.append(stream.last_token - stream.first_token)
        end_to_final.append(surface.last_shown_at - stream.last_token)
    return {
        "request_sent_ms": dist(asked),
        "model_stream_s": dist(took, scale=1.0),
        "end_to_final_ms": dist(end_to_final),
    }


async def scale_run(work: Workload, tmp: Path, n: int) -> Result:
    with gateway_process(work.tokens, work.rate, work.first_delay) as gateway:
        runtime = await Runtime.create(settings_for(tmp, gateway.url))
        try:
            service = runtime.service
            await service.handle(
                _turn(memory_surface("warm-up"), ConversationKey("bench", "", "w", ""), "hi")
            )
            peak_in_flight = 0

            async def watch() -> None:
                nonlocal peak_in_flight
                while True:
                    peak_in_flight = max(peak_in_flight, service.in_flight)
                    await asyncio.sleep(0.05)

            surfaces = [memory_surface(f"c{i}") for i in range(n)]
            turns = [
                _turn(s, ConversationKey("bench", "", f"c{i}", ""), question(i))
                for i, s in enumerate(surfaces)
            ]
            gc.collect()
            stmts = runtime.store.statements
            meter, lag = Meter(), LoopLag()
            meter.start()
            lag.start()
            watcher = asyncio.create_task(watch())
            asked = time.monotonic()
            for s in surfaces:
                s.started = asked  # the questions arrive now, not when their surfaces were made
            results = await asyncio.gather(*(service.handle(t) for t in turns))
            watcher.cancel()
            await lag.stop()
            meter.stop()
            done = [r for r in results if r is not None and r.outcome is Outcome.COMPLETE]
            tokens = sum(r.usage.output_tokens for r in done)
            expected = make_answer(work.tokens)
            exact = sum(1 for s in surfaces if s.text == expected)
            return {
                "replies": n,
                "complete": len(done),
                "exact_text": exact,
                "peak_in_flight": peak_in_flight,
                "wall_s": round(meter.wall, 2),
                "tokens_streamed": tokens,
                "cpu_s_per_1k_tokens": round(meter.cpu / tokens * 1000, 3) if tokens else None,
                "cpu_busy_pct": round(100 * meter.cpu / meter.wall, 1) if meter.wall else None,
                "loop_lag_p99_ms": rounded(lag.p99_ms()),
                "loop_lag_max_ms": rounded(lag.max_ms()),
                "peak_rss_mb": round(meter.peak / 2**20, 1),
                "start_rss_mb": round(meter.rss0 / 2**20, 1),
                "rss_per_reply_kb": round(max(0, meter.peak - meter.rss0) / n / 1024, 1),
                "db_statements_per_reply": round((runtime.store.statements - stmts) / n, 1),
                "placeholder_ms": dist([s.first_post_at - s.started for s in surfaces if s.first_post_at]),
                "first_text_ms": dist([s.first_text_at - s.started for s in surfaces if s.first_text_at]),
                "pacer_429s": runtime.pacer.stats.rate_limited,
                "rate_limited": runtime.pacer.stats.rate_limited,  # the surface never refuses: stays 0
                **keeping_pace(surfaces, gateway.streams()),
            }
        finally:
            await runtime.aclose()


def _event_loop() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The loop ``parley run`` would use here (uvloop when installed), unless
    ``PARLEY_BENCH_LOOP=asyncio`` asks for asyncio's own, to compare the two."""
    from bot.cli import event_loop_factory

    factory = None if os.environ.get("PARLEY_BENCH_LOOP") == "asyncio" else event_loop_factory()
    return ("asyncio" if factory is None else "uvloop"), factory


def _scale_in_child(work: Workload, tmp: str, n: int) -> Result:
    """One scale run in a fresh process set up as ``parley run`` with both platforms configured:
    both adapters loaded (``parley run`` imports only the configured ones) and the same event
    loop, so its resident set and CPU start where a deployed Parley's do and no earlier run
    colours them."""
    import adapters.discord.client
    import adapters.slack.app  # noqa: F401

    name, factory = _event_loop()
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(scale_run(work, Path(tmp), n))
    result["event_loop"] = name
    return result


async def _fresh(work: Workload, tmp: Path, n: int) -> Result:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(child, _scale_in_child, work, str(tmp), n)


async def scale_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    """N replies at once through the core with a surface that costs nothing.

    First at the workload's rate, as shipped. That is CPU-bound long before 500 replies (one
    core reads about 1000 / (CPU s per 1000 tokens) tokens a second), so the full run also
    streams issue 19's target (250 replies at the workload's rate: is the loop still prompt?)
    and the same N at a rate one core can carry, to see loop lag and memory with every reply
    truly in flight.
    """
    work = cfg.work
    out: Result = {"scenario": name, "platform": "memory", "tokens_per_reply": work.tokens}
    out["rate_tokens_per_s"] = work.rate
    out.update(await _fresh(work, tmp / "shipped", n))
    out["surface"] = "in-memory (console-like), Discord-like 4/5 s per reply; gateway in a child process"
    if out["cpu_s_per_1k_tokens"]:
        out["replies_per_core_at_rate"] = int(1000 / (out["cpu_s_per_1k_tokens"] * work.rate))
    if not cfg.quick:
        # The target itself, measured rather than derived: that many at the workload's rate.
        if n > TARGET_REPLIES:
            target = await _fresh(work, tmp / "target", TARGET_REPLIES)
            target["rate_tokens_per_s"] = work.rate
            out["at_target"] = target
        slow = Workload(tokens=work.tokens // 2, rate=SLOW_RATE, first_delay=work.first_delay)
        carried = await _fresh(slow, tmp / "slow", n)
        carried["rate_tokens_per_s"] = slow.rate
        carried["tokens_per_reply"] = slow.tokens
        out["one_core_rate"] = carried
    return out


# -- the long thread ------------------------------------------------------------------------------


async def _fill(store: Store, conversation_id: int, count: int) -> None:
    """``count`` stored messages, alternating question and answer, in one transaction."""
    long = make_answer(120)
    rows = [
        {
            "conversation_id": conversation_id,
            "role": "user" if i % 2 == 0 else "assistant",
            "author_id": "U1" if i % 2 == 0 else "",
            "author_name": "Alice" if i % 2 == 0 else "",
            "text": f"question {i} about the rate limits" if i % 2 == 0 else long,
            "status": Outcome.COMPLETE.value,
            "platform_message_id": f"p{i}" if i % 2 == 0 else "",
        }
        for i in range(count)
    ]
    async with store.engine.begin() as conn:
        for start in range(0, count, 2000):
            await conn.execute(insert(Message), rows[start : start + 2000])


async def long_thread_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    sizes = sorted({100, 1000, n})
    turns = 3 if cfg.quick else 7
    reply = Reply(text=make_answer(20))
    async with FakeGateway(default=reply) as gw:
        runtime = await Runtime.create(settings_for(tmp, gw.url))
        store = runtime.store
        timings: dict[str, list[float]] = {"load": [], "build": []}
        original_load = store.history.load
        original_build = request_module.build_turns

        async def timed_load(conversation_id: int, limit: int) -> Any:
            t = time.perf_counter()
            try:
                return await original_load(conversation_id, limit)
            finally:
                timings["load"].append(time.perf_counter() - t)

        def timed_build(*args: Any, **kwargs: Any) -> list[Turn]:
            t = time.perf_counter()
            try:
                return original_build(*args, **kwargs)
            finally:
                timings["build"].append(time.perf_counter() - t)

        store.history.load = timed_load  # type: ignore[method-assign]
        request_module.build_turns = timed_build
        per_size: dict[str, Result] = {}
        try:
            await runtime.service.handle(
                _turn(memory_surface("w", budgets=False), ConversationKey("bench", "", "w", ""), "hi")
            )
            for size in sizes:
                key = ConversationKey("bench", "", "long", f"t{size}")
                conv = await store.conversations.find_or_create(key)
                await _fill(store, conv.id, size)
                timings["load"].clear()
                timings["build"].clear()
                stmts = store.statements
                asked: list[float] = []
                for i in range(turns):
                    sent = len(gw.stream_requests)
                    t0 = time.monotonic()
                    await runtime.service.handle(
                        _turn(memory_surface("long", budgets=False), key, question(i))
                    )
                    asked.append(gw.stream_requests[sent].t_received - t0)
                build = [a + b for a, b in zip(timings["load"], timings["build"], strict=True)]
                body = gw.stream_requests[-1].json or {}
                per_size[str(size)] = {
                    "stored_messages": size,
                    "context_build_ms": dist(build),
                    "load_context_ms": dist(timings["load"]),
                    "build_turns_ms": dist(timings["build"]),
                    "request_sent_ms": dist(asked),
                    "messages_in_request": len(body.get("messages", [])),
                    "db_statements_per_reply": round((store.statements - stmts) / turns, 1),
                }
        finally:
            request_module.build_turns = original_build
            await runtime.aclose()
    biggest = per_size[str(max(sizes))]
    small = per_size[str(min(sizes))]
    return {
        "scenario": name,
        "platform": "memory",
        "replies": turns * len(sizes),
        "context_build_ms": biggest["context_build_ms"],
        "context_build_ms_smallest": small["context_build_ms"],
        "db_statements_per_reply": biggest["db_statements_per_reply"],
        "rate_limited": 0,
        "sizes": per_size,
    }


# -- a big PDF ----------------------------------------------------------------------------------


async def pdf_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    from bench.pdf_memory import make_pdf, run_case

    megabytes = n
    pdf = tmp / "big.pdf"
    started = time.perf_counter()
    await asyncio.to_thread(make_pdf, pdf, megabytes)
    made = time.perf_counter() - started
    cases = ("text",) if cfg.quick else ("text", "document-openai")
    runs: dict[str, Result] = {}
    with gateway_process(20, 0.0) as gateway:
        for case in cases:
            runs[case] = await asyncio.to_thread(run_case, case, pdf, gateway.url, tmp / case)
    main = runs["text"]
    return {
        "scenario": name,
        "platform": "memory",
        "replies": len(cases),
        "file_mb": main["file_mb"],
        "pdf_seconds": main["seconds"],
        "peak_above_idle_mb": main["peak_above_idle_mb"],
        "peak_ratio_to_file": main["ratio"],
        "idle_mb": main["idle_mb"],
        "rate_limited": 0,
        "make_pdf_s": round(made, 1),
        "cases": {k: {f: v for f, v in r.items() if f != "reply"} for k, r in runs.items()},
    }
