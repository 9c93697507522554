"""The renderer's own CPU per token: N replies through the real Pacer, nothing else.

Each reply has the scale scenario's in-memory surface (4 posts and 4 edits per 5 s of its own)
and gets the workload's answer a token at a time, all replies together at the workload's rate,
in this process with no gateway, HTTP or database: what is left is ``ReplyStream.update`` per
token plus the pacer's rounds, planning, splitting and rendering per action. The process's CPU
time over the run, divided by the tokens, is the figure (it hardly moves with the machine's
load, unlike the end-to-end scale figures).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.config import Config, Result
from bench.core import memory_surface
from bench.workload import make_answer
from bot.render import Pacer


def token_ends(answer: str) -> list[int]:
    """Where each token of the fake gateway's answer ends (a word and what follows it)."""
    ends = [
        i + 1
        for i, ch in enumerate(answer)
        if ch in " \n" and (i + 1 == len(answer) or answer[i + 1] not in " \n")
    ]
    if not ends or ends[-1] != len(answer):
        ends.append(len(answer))
    return ends


async def render_cost(n: int, tokens: int, rate: float) -> Result:
    pacer = Pacer()
    surfaces = [memory_surface(f"r{i}") for i in range(n)]
    replies = [pacer.reply(s) for s in surfaces]
    await asyncio.gather(*(r.start() for r in replies))
    answer = make_answer(tokens)
    ends = token_ends(answer)
    cpu, started = time.process_time(), time.perf_counter()
    for end in ends:
        text = answer[:end]
        for r in replies:
            r.update(text)
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*(r.finish(answer) for r in replies))
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - started
    stats = pacer.stats
    await pacer.aclose()
    updates = n * len(ends)
    return {
        "replies": n,
        "tokens_streamed": updates,
        "complete": sum(s.text == answer for s in surfaces),
        "render_us_per_token": round(cpu / updates * 1e6, 2),
        "posts": stats.posts,
        "edits": stats.edits,
        "rounds": stats.rounds,
        "wall_s": round(wall, 2),
        "rate_limited": stats.rate_limited,
    }


async def render_cost_scenario(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    out: Result = {"scenario": name, "platform": "memory", "tokens_per_reply": cfg.work.tokens}
    out["rate_tokens_per_s"] = cfg.work.rate
    out.update(await render_cost(n, cfg.work.tokens, cfg.work.rate))
    return out
